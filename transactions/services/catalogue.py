"""The integration catalogue: owners, criticality, style, environment, data objects and notes of discovered systems
and interfaces, edited by people (audited, with a version check) or loaded from a spreadsheet inventory as CSV.

An import is all or nothing: every row is checked first, and one bad row (an unknown or repeated name, a value
outside its choices) leaves everything as it was, with the problem of each row reported.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from console.lib.audit import audited_update
from console.lib.errors import DomainError, StaleVersion
from transactions.choices import Criticality, InterfaceStyle
from transactions.durations import duration_label, duration_parse
from transactions.models import Interface, System

# The columns of the CSV export, which the import reads back (a spreadsheet inventory is loaded with these headers).
CATALOGUE_COLUMNS = [
    "type",
    "name",
    "owner_team",
    "owner_queue",
    "criticality",
    "style",
    "environment",
    "data_objects",
    "notes",
    "expected_every",
]
REQUIRED_COLUMNS = {"type", "name"}
ARROW = "->"


@dataclass(frozen=True)
class CatalogueInput:
    owner_team: str = ""
    owner_queue: str = ""
    criticality: str = ""
    style: str = ""
    environment: str = ""
    data_objects: tuple[str, ...] = ()
    notes: str = ""
    expected_every: timedelta | None = None  # interfaces only: silence past it raises a case


class CatalogueImportError(DomainError):
    """Rows that cannot be imported; nothing was."""

    status_code = 400

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} row(s) cannot be imported; nothing was imported")


def catalogue_snapshot(obj: System | Interface) -> dict[str, Any]:
    every = getattr(obj, "expected_every", None)
    return {
        "expected_every": duration_label(every),
        "owner_team": obj.owner_team,
        "owner_queue": obj.owner_queue,
        "criticality": obj.criticality,
        "style": obj.style,
        "environment": obj.environment,
        "data_objects": list(obj.data_objects),
        "notes": obj.notes,
    }


def catalogue_problems(entry: CatalogueInput) -> list[str]:
    """What is wrong with an entry, in words a person can act on (empty: nothing)."""
    problems = []
    if entry.criticality and entry.criticality not in Criticality.values:
        problems.append(f"criticality {entry.criticality!r} is not one of {', '.join(Criticality.values)}")
    if entry.style and entry.style not in InterfaceStyle.values:
        problems.append(f"style {entry.style!r} is not one of {', '.join(InterfaceStyle.values)}")
    if entry.owner_queue and slugify(entry.owner_queue) != entry.owner_queue:
        problems.append(f"owner_queue {entry.owner_queue!r} is not a queue slug (e.g. accounts-receivable)")
    for name, limit in (("owner_team", 100), ("owner_queue", 60), ("environment", 40)):
        if len(getattr(entry, name)) > limit:
            problems.append(f"{name} is longer than {limit} characters")
    return problems


def _apply(obj: System | Interface, entry: CatalogueInput) -> None:
    obj.owner_team = entry.owner_team
    obj.owner_queue = entry.owner_queue
    obj.criticality = entry.criticality
    obj.style = entry.style
    obj.environment = entry.environment
    obj.data_objects = list(entry.data_objects)
    obj.notes = entry.notes
    if isinstance(obj, Interface):
        obj.expected_every = entry.expected_every


def _object_type(obj: System | Interface) -> str:
    return "system" if isinstance(obj, System) else "interface"


@transaction.atomic
def catalogue_entry_update(
    *, obj: System | Interface, entry: CatalogueInput, actor: str, version: int | None
) -> System | Interface:
    """Set the catalogue facts of one system or interface; a stale `version` is refused (409), nothing is written."""
    problems = catalogue_problems(entry)
    if entry.expected_every and not isinstance(obj, Interface):
        problems.append("an expected frequency belongs to an interface, not a system")
    if problems:
        raise DomainError("; ".join(problems))

    def apply(locked: System | Interface) -> None:
        if version is not None and locked.version != version:
            raise StaleVersion(f"this {_object_type(locked)} was changed by someone else; reload and try again")
        _apply(locked, entry)
        locked.version += 1

    return audited_update(
        obj, actor=actor, action=f"{_object_type(obj)}.catalogued", snapshot=catalogue_snapshot, apply=apply
    )


def _row_entry(row: dict[str, str]) -> CatalogueInput:
    every = (row.get("expected_every") or "").strip()
    objects = [o.strip() for o in (row.get("data_objects") or "").replace(",", ";").split(";")]
    return CatalogueInput(
        owner_team=(row.get("owner_team") or "").strip(),
        owner_queue=(row.get("owner_queue") or "").strip(),
        criticality=(row.get("criticality") or "").strip().lower(),
        style=(row.get("style") or "").strip().lower(),
        environment=(row.get("environment") or "").strip(),
        data_objects=tuple(dict.fromkeys(o for o in objects if o)),
        notes=(row.get("notes") or "").strip(),
        expected_every=duration_parse(every) if every else None,
    )


def _interface_key(name: str) -> tuple[str, str] | None:
    # "crm -> erp" as exported; "crm>erp" and "crm → erp" as people type them in spreadsheets.
    for arrow in (ARROW, "→", ">"):
        if arrow in name:
            source, _, target = name.partition(arrow)
            return source.strip(), target.strip()
    return None


@transaction.atomic
def catalogue_import(*, header: list[str], rows: list[dict[str, str]], actor: str) -> dict[str, int]:
    """Load catalogue rows (a CSV's, numbered from 2 as a spreadsheet shows them) onto discovered systems and
    interfaces, matched by name. Any problem: CatalogueImportError listing every bad row, nothing written."""
    missing = REQUIRED_COLUMNS - {h.strip() for h in header}
    if missing:
        raise CatalogueImportError([f"the header lacks the column(s) {', '.join(sorted(missing))}"])
    systems = {s.name: s for s in System.objects.all()}
    interfaces = {(i.source.name, i.target.name): i for i in Interface.objects.select_related("source", "target")}
    problems: list[str] = []
    staged: list[tuple[System | Interface, CatalogueInput]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=2):
        kind = (row.get("type") or "").strip().lower()
        name = (row.get("name") or "").strip()
        target: System | Interface | None = None
        if kind == "system":
            key = ("system", name)
            target = systems.get(name)
            unknown = f"row {number}: no discovered system is named {name!r}"
        elif kind == "interface":
            pair = _interface_key(name)
            key = ("interface", f"{pair[0]} {ARROW} {pair[1]}" if pair else name)
            target = interfaces.get(pair) if pair else None
            unknown = (
                f"row {number}: no discovered interface {name!r}"
                if pair
                else f"row {number}: an interface is named 'source {ARROW} target', not {name!r}"
            )
        else:
            problems.append(f"row {number}: type must be system or interface, not {kind!r}")
            continue
        if key in seen:
            problems.append(f"row {number}: {kind} {name!r} is already on row {seen[key]}")
            continue
        seen[key] = number
        if target is None:
            problems.append(unknown)
            continue
        try:
            entry = _row_entry(row)
        except DomainError as exc:
            problems.append(f"row {number}: expected_every: {exc}")
            continue
        if entry.expected_every and kind == "system":
            problems.append(f"row {number}: an expected frequency belongs to an interface, not a system")
        problems += [f"row {number}: {p}" for p in catalogue_problems(entry)]
        staged.append((target, entry))
    if problems:
        raise CatalogueImportError(problems)
    changed = 0
    for obj, entry in staged:
        before = obj.version
        updated = catalogue_entry_update(obj=obj, entry=entry, actor=actor, version=None)
        changed += int(updated.version != before)
    return {"rows": len(staged), "changed": changed}
