"""Panels: a lower app's page shows what a higher app owns (the cases of a transaction) without importing it."""

from collections.abc import Callable

from django.http import HttpRequest

PanelRenderer = Callable[..., str | None]
_panels: dict[str, list[tuple[int, PanelRenderer]]] = {}


def register_panel(slot: str, render: PanelRenderer, *, order: int = 50) -> None:
    """`render(request=..., **context)` returns HTML (already escaped) or None to show nothing."""
    entries = _panels.setdefault(slot, [])
    if all(existing is not render for _, existing in entries):
        entries.append((order, render))
        entries.sort(key=lambda entry: entry[0])


def render_panels(slot: str, *, request: HttpRequest, **context: object) -> list[str]:
    rendered = (render(request=request, **context) for _, render in _panels.get(slot, []))
    return [html for html in rendered if html]
