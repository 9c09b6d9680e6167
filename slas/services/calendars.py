"""Managers' writes to business calendars and their holidays; each audited before/after."""

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from console.lib.audit import audit_record, audited_create, audited_update
from console.lib.errors import DomainError, StaleVersion
from slas.models import BusinessCalendar, Holiday
from slas.services.definitions import validation_text

EDITABLE_FIELDS = ("slug", "name", "time_zone", "working_hours", "description")


def calendar_snapshot(calendar: BusinessCalendar) -> dict[str, Any]:
    return {
        "slug": calendar.slug,
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "working_hours": calendar.working_hours,
        "description": calendar.description,
    }


def _validate(calendar: BusinessCalendar) -> None:
    try:
        calendar.full_clean()
    except ValidationError as exc:
        raise DomainError(validation_text(exc)) from exc


def calendar_create(*, actor: str, **fields: Any) -> BusinessCalendar:
    """A new calendar; refused (nothing saved) without a working interval, with overlaps or an unknown time zone."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise DomainError(f"not editable: {', '.join(sorted(unknown))}")
    calendar = BusinessCalendar(**fields)
    _validate(calendar)
    return audited_create(calendar, actor=actor, action="calendar.created", snapshot=calendar_snapshot)


def calendar_update(
    *, calendar: BusinessCalendar, actor: str, expected_version: int | None = None, **fields: Any
) -> BusinessCalendar:
    """Change the given fields; running clocks follow the new hours on their next evaluation (every minute)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise DomainError(f"not editable: {', '.join(sorted(unknown))}")

    def apply(locked: BusinessCalendar) -> None:
        if expected_version is not None and locked.version != expected_version:
            raise StaleVersion(f"this calendar changed since version {expected_version} (now {locked.version})")
        for name, value in fields.items():
            setattr(locked, name, value)
        _validate(locked)
        locked.version += 1

    return audited_update(calendar, actor=actor, action="calendar.updated", snapshot=calendar_snapshot, apply=apply)


@transaction.atomic
def holidays_import(*, calendar: BusinessCalendar, rows: list[tuple[date, str]], actor: str) -> dict[str, int]:
    """Add the dated holidays (a date already present gets the new name); one audit entry for the whole import.

    `rows` are already validated (see slas.forms.HolidayImportForm): this only writes, all or nothing.
    """
    dates = [day for day, _ in rows]
    if len(dates) != len(set(dates)):
        raise DomainError("a date is listed twice")
    existing = {h.date: h for h in Holiday.objects.select_for_update().filter(calendar=calendar, date__in=dates)}
    created = [Holiday(calendar=calendar, date=day, name=name) for day, name in rows if day not in existing]
    renamed = [existing[day] for day, name in rows if day in existing and existing[day].name != name]
    names = dict(rows)
    for holiday in renamed:
        holiday.name = names[holiday.date]
    Holiday.objects.bulk_create(created)
    Holiday.objects.bulk_update(renamed, ["name"])
    result = {"created": len(created), "renamed": len(renamed), "unchanged": len(rows) - len(created) - len(renamed)}
    if created or renamed:
        audit_record(
            actor=actor,
            action="calendar.holidays_imported",
            obj=calendar,
            after={
                **result,
                "dates": [{"date": h.date.isoformat(), "name": h.name} for h in (*created, *renamed)][:500],
            },
        )
    return result


@transaction.atomic
def holiday_delete(*, holiday: Holiday, actor: str) -> None:
    """Remove one holiday date (audited on its calendar, which the entry outlives the row of)."""
    calendar = holiday.calendar
    before = {"date": holiday.date.isoformat(), "name": holiday.name}
    holiday.delete()
    audit_record(actor=actor, action="calendar.holiday_deleted", obj=calendar, before=before)


__all__ = ["calendar_create", "calendar_snapshot", "calendar_update", "holiday_delete", "holidays_import"]
