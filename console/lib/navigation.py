"""The console's navigation, as an extension point: each app registers the sections it has built."""

from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

# Organised for the three kinds of user (operations, managers, compliance), plus the technical roles.
SECTION_ORDER = ("Overview", "Operations", "Management", "Compliance", "Integration", "Administration")


@dataclass(frozen=True)
class NavItem:
    section: str
    label: str
    url_name: str
    permission: str | tuple[str, ...] | None
    order: int

    def shown_to(self, user: Any) -> bool:
        """None: every signed-in user; a tuple: whoever holds any one of its permissions."""
        if self.permission is None:
            return True
        wanted = self.permission if isinstance(self.permission, tuple) else (self.permission,)
        return any(user.has_perm(p) for p in wanted)

    @property
    def url(self) -> str:
        return reverse(self.url_name)


_items: dict[str, NavItem] = {}


def register_nav_item(
    section: str, label: str, url_name: str, permission: str | tuple[str, ...] | None, order: int = 50
) -> None:
    """Show `label` under `section` to users holding `permission` (a tuple: any of them; None: every signed-in user)."""
    if section not in SECTION_ORDER:
        raise ValueError(f"unknown navigation section {section!r}")
    _items[url_name] = NavItem(section, label, url_name, permission, order)


def navigation_for(user: Any) -> list[tuple[str, list[NavItem]]]:
    """Sections with the items this user may use, in display order; empty sections are left out."""
    if not getattr(user, "is_authenticated", False):
        return []
    sections: list[tuple[str, list[NavItem]]] = []
    for section in SECTION_ORDER:
        items = sorted(
            (i for i in _items.values() if i.section == section and i.shown_to(user)),
            key=lambda i: (i.order, i.label),
        )
        visible = []
        for item in items:
            try:
                item.url  # noqa: B018 - an item whose page is not wired yet must not break every page
            except NoReverseMatch:
                continue
            visible.append(item)
        if visible:
            sections.append((section, visible))
    return sections
