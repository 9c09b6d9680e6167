"""Writes of ROI assumptions: each change is audited with before and after, in the same atomic block."""

from decimal import Decimal

from django.db import transaction

from console.lib.audit import audited_create, audited_update
from console.lib.errors import DomainError, StaleVersion
from slas.kpis import ROI_DEFAULTS
from slas.models import RoiAssumption

MAX_VALUE = Decimal("100000")


def _snapshot(a: RoiAssumption) -> dict:
    return {"key": a.key, "value": str(a.value), "unit": a.unit}


@transaction.atomic
def roi_assumption_set(*, key: str, value: Decimal, actor: str, version: int) -> RoiAssumption:
    """Set one assumption; `version` is the one the editor saw (0: the default, never stored). Stale: 409."""
    if key not in ROI_DEFAULTS:
        raise DomainError(f"unknown ROI assumption {key!r}")
    if value < 0 or value > MAX_VALUE:
        raise DomainError(f"the value must be between 0 and {MAX_VALUE}")
    label, _, unit, drives = ROI_DEFAULTS[key]
    current = RoiAssumption.objects.select_for_update().filter(key=key).first()
    if current is None:
        if version != 0:
            raise StaleVersion("this assumption changed since you opened the page; reload and try again")
        obj = RoiAssumption(key=key, label=label, value=value, unit=unit, help_text=drives)
        return audited_create(obj, actor=actor, action="roi_assumption.created", snapshot=_snapshot)
    if current.version != version:
        raise StaleVersion("this assumption changed since you opened the page; reload and try again")

    def apply(locked: RoiAssumption) -> None:
        locked.value = value
        locked.version += 1

    return audited_update(current, actor=actor, action="roi_assumption.updated", snapshot=_snapshot, apply=apply)
