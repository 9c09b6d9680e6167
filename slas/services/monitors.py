"""Volume and control-evidence monitors: audited edits, and the passes that turn silence into cases.

Volume monitors are evaluated together, once a minute: ONE aggregate query counts the events of every active
monitor's window (see transactions.selectors.event_counts_by_window), and only monitors whose verdict changes write
anything. A violation opens (or adds an occurrence to) the monitor's case through `exceptions.services.signal_record`;
traffic coming back resolves it through `signal_resolve`.

The evidence monitors' passes live in `slas.services.evidence`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from console.lib.audit import audit_record, audited_create, audited_update
from console.lib.errors import StaleVersion
from exceptions import services as case_services
from exceptions.models import Category
from slas.calendars import BusinessTimeline
from slas.choices import EvidenceDirection, VolumeMode
from slas.models import EvidenceMonitor, VolumeMonitor
from slas.monitoring import (
    Period,
    TripleMatcher,
    VolumeSpec,
    volume_period,
    volume_verdict,
)
from slas.selectors import work_calendars
from transactions import selectors as txn_selectors

logger = logging.getLogger(__name__)

ACTOR = "system:slas"
M = TypeVar("M", VolumeMonitor, EvidenceMonitor)
# Timelines of a pass reach this far beyond the instants it asks about (weekends, holidays, long windows).
TIMELINE_PAD = timedelta(days=21)


# ---- Edits (managers, through the console and the API) -------------------------------------------------------------

VOLUME_FIELDS = (
    "slug",
    "name",
    "system",
    "kind",
    "entity",
    "calendar",
    "mode",
    "window",
    "deadline_time",
    "min_count",
    "max_count",
    "working_hours_only",
    "queue",
    "category_slug",
    "is_active",
)
EVIDENCE_FIELDS = (
    "slug",
    "name",
    "process",
    "trigger_system",
    "trigger_kind",
    "trigger_status",
    "evidence_system",
    "evidence_kind",
    "evidence_approval_step",
    "direction",
    "window",
    "calendar",
    "queue",
    "category_slug",
    "is_active",
)


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def volume_monitor_snapshot(monitor: VolumeMonitor) -> dict[str, Any]:
    return {name: _plain(getattr(monitor, name)) for name in VOLUME_FIELDS}


def evidence_monitor_snapshot(monitor: EvidenceMonitor) -> dict[str, Any]:
    return {name: _plain(getattr(monitor, name)) for name in EVIDENCE_FIELDS}


def _category_problem(slug: str) -> str | None:
    if not Category.objects.filter(slug=slug).exists():
        return f"unknown category {slug!r}; use the slug of a taxonomy category (e.g. control, platform)"
    return None


def volume_monitor_problems(monitor: VolumeMonitor) -> dict[str, str]:
    """Field -> message for what makes a volume monitor unusable; empty when it can be saved."""
    problems: dict[str, str] = {}
    if not monitor.system.strip():
        problems["system"] = "name the system (a glob such as sap-s4 or stripe-*)"
    if not monitor.kind.strip():
        problems["kind"] = "name the event kind (a glob; * for any)"
    if monitor.mode == VolumeMode.WINDOW:
        if monitor.window is None or monitor.window <= timedelta(0):
            problems["window"] = "a window monitor needs a window longer than zero"
    elif monitor.mode == VolumeMode.DAILY_DEADLINE:
        if monitor.deadline_time is None:
            problems["deadline_time"] = "a daily monitor needs the local time by which the events are due"
    else:
        problems["mode"] = f"unknown mode {monitor.mode!r}"
    if monitor.max_count is not None and monitor.max_count < monitor.min_count:
        problems["max_count"] = "the maximum must not be below the minimum"
    if monitor.min_count == 0 and monitor.max_count is None:
        problems["min_count"] = "with no maximum, a minimum of 0 can never be violated"
    category = _category_problem(monitor.category_slug)
    if category:
        problems["category_slug"] = category
    return problems


def evidence_monitor_problems(monitor: EvidenceMonitor) -> dict[str, str]:
    """Field -> message for what makes an evidence monitor unusable; empty when it can be saved."""
    problems: dict[str, str] = {}
    if not monitor.trigger_kind.strip():
        problems["trigger_kind"] = "name the trigger event's kind (a glob)"
    if not monitor.evidence_kind.strip() and not monitor.evidence_approval_step.strip():
        problems["evidence_kind"] = "name the evidence: an event kind, or an approval step"
    elif (
        monitor.evidence_kind.strip().lower() == monitor.trigger_kind.strip().lower()
        and monitor.evidence_system.strip().lower() == monitor.trigger_system.strip().lower()
    ):
        problems["evidence_kind"] = "the evidence matches the same events as the trigger: it would prove itself"
    if monitor.window is None or monitor.window <= timedelta(0):
        problems["window"] = "the window must be longer than zero"
    if monitor.direction not in EvidenceDirection.values:
        problems["direction"] = f"unknown direction {monitor.direction!r}"
    if monitor.trigger_status not in ("", "ok", "error"):
        problems["trigger_status"] = "ok, error, or empty for any"
    category = _category_problem(monitor.category_slug)
    if category:
        problems["category_slug"] = category
    return problems


def _validate(obj: models.Model, problems: Callable[[Any], dict[str, str]]) -> None:
    """Our clear messages first, then the model's own field checks; ValidationError leaves nothing written."""
    found = problems(obj)
    if found:
        raise ValidationError(found)
    obj.full_clean(validate_constraints=False)


def _create(model: type[M], *, actor: str, action: str, snapshot: Callable[[M], dict], problems, fields: dict) -> M:
    obj = model(**fields)
    _validate(obj, problems)
    with transaction.atomic():
        return audited_create(obj, actor=actor, action=action, snapshot=snapshot)


def _update(
    obj: M,
    *,
    actor: str,
    action: str,
    expected_version: int | None,
    snapshot: Callable[[M], dict],
    problems,
    fields: dict,
) -> M:
    def apply(locked: M) -> None:
        if expected_version is not None and locked.version != expected_version:
            raise StaleVersion(
                f"{locked} changed since version {expected_version} (now {locked.version}): reload and try again"
            )
        for name, value in fields.items():
            setattr(locked, name, value)
        _validate(locked, problems)
        if snapshot(locked) != before_fields:
            locked.version += 1

    before_fields = snapshot(obj)
    return audited_update(obj, actor=actor, action=action, snapshot=snapshot, apply=apply)


def volume_monitor_create(*, actor: str, **fields: Any) -> VolumeMonitor:
    """A new volume monitor; ValidationError (field -> message) and nothing saved when it is not usable."""
    return _create(
        VolumeMonitor,
        actor=actor,
        action="volume_monitor.created",
        snapshot=volume_monitor_snapshot,
        problems=volume_monitor_problems,
        fields=fields,
    )


def volume_monitor_update(
    *, monitor: VolumeMonitor, actor: str, expected_version: int | None, **fields: Any
) -> VolumeMonitor:
    """Change a monitor's definition; StaleVersion (409) when it changed since `expected_version`."""
    return _update(
        monitor,
        actor=actor,
        action="volume_monitor.updated",
        expected_version=expected_version,
        snapshot=volume_monitor_snapshot,
        problems=volume_monitor_problems,
        fields=fields,
    )


def evidence_monitor_create(*, actor: str, **fields: Any) -> EvidenceMonitor:
    return _create(
        EvidenceMonitor,
        actor=actor,
        action="evidence_monitor.created",
        snapshot=evidence_monitor_snapshot,
        problems=evidence_monitor_problems,
        fields=fields,
    )


def evidence_monitor_update(
    *, monitor: EvidenceMonitor, actor: str, expected_version: int | None, **fields: Any
) -> EvidenceMonitor:
    return _update(
        monitor,
        actor=actor,
        action="evidence_monitor.updated",
        expected_version=expected_version,
        snapshot=evidence_monitor_snapshot,
        problems=evidence_monitor_problems,
        fields=fields,
    )


# ---- Volume pass ----------------------------------------------------------------------------------------------------


def _volume_spec(monitor: VolumeMonitor) -> VolumeSpec:
    return VolumeSpec(
        monitor_id=monitor.pk,
        system=monitor.system,
        kind=monitor.kind,
        entity=monitor.entity,
        mode=monitor.mode,
        window=monitor.window,
        deadline_time=monitor.deadline_time,
        min_count=monitor.min_count,
        max_count=monitor.max_count,
        working_hours_only=monitor.working_hours_only,
    )


def volume_fingerprint_parts(monitor: VolumeMonitor) -> tuple[str, ...]:
    return ("volume", monitor.slug)


@dataclass
class VolumePassResult:
    monitors: int = 0
    violated: int = 0
    opened: int = 0
    resolved: int = 0
    skipped: int = 0  # monitors whose calendar could not be used


def volume_monitors_evaluate(*, now: datetime | None = None) -> VolumePassResult:
    """Evaluate every active volume monitor with one aggregate query; open or resolve cases where verdicts change."""
    now = now or timezone.now()
    result = VolumePassResult()
    monitors = list(VolumeMonitor.objects.filter(is_active=True).order_by("id"))
    if not monitors:
        return result
    calendars = work_calendars(calendar_ids=[m.calendar_id for m in monitors])
    # One timeline per calendar, reaching back past the longest working-time window any of its monitors uses.
    reach: dict[int, timedelta] = {}
    for m in monitors:
        if m.mode == VolumeMode.WINDOW and m.working_hours_only and m.window:
            reach[m.calendar_id] = max(reach.get(m.calendar_id, timedelta(0)), m.window)
    timelines = {
        cal_id: BusinessTimeline(calendars[cal_id], now - max(span * 4, TIMELINE_PAD), now)
        for cal_id, span in reach.items()
        if cal_id in calendars
    }
    periods: dict[int, Period] = {}
    for m in monitors:
        cal = calendars.get(m.calendar_id)
        if cal is None:
            result.skipped += 1
            continue
        periods[m.pk] = volume_period(_volume_spec(m), cal, now, timelines.get(m.calendar_id))
    # c(x) = events that occurred in [x, now); a period [s, e) counts c(s) - c(e).
    bounds = sorted({p.start for p in periods.values()} | {p.end for p in periods.values() if p.end < now})
    column = {moment: i for i, moment in enumerate(bounds)}
    rows = txn_selectors.event_counts_by_window(starts=bounds, until=now) if bounds else []
    matcher = TripleMatcher((r["system"], r["kind"], r["entity"]) for r in rows)
    counts_of = {(r["system"], r["kind"], r["entity"]): r["counts"] for r in rows}
    opened: list[dict] = []
    resolved: list[dict] = []
    for m in monitors:
        period = periods.get(m.pk)
        if period is None:
            continue
        spec = _volume_spec(m)
        count = 0
        for triple in matcher.matching(spec):
            counts = counts_of[triple]
            count += counts[column[period.start]] - (counts[column[period.end]] if period.end < now else 0)
        verdict = volume_verdict(spec, count, period)
        result.monitors += 1
        result.violated += verdict.violated
        change = None
        if verdict.violated and not m.currently_violated:
            change, outcomes = _volume_open, opened
        elif m.currently_violated and not verdict.violated:
            change, outcomes = _volume_resolve, resolved
        if change is not None:
            try:
                change(m, verdict.reason, count=count, now=now)
                outcomes.append({"monitor": m.slug, "count": count, "reason": verdict.reason})
            except Exception:
                # The monitor keeps its state, so the next pass tries again; the other monitors go on.
                logger.exception("slas.volume_case_failed", extra={"monitor": m.pk})
        m.last_count, m.last_evaluated_at = count, now
    _store_counts(monitors, now)
    result.opened, result.resolved = len(opened), len(resolved)
    if opened or resolved:
        # One audit link per pass of automatic actions (ARCHITECTURE.md allows batching them).
        audit_record(
            actor=ACTOR,
            action="volume_monitors.evaluated",
            object_type="slas.volumemonitor",
            after={"opened": opened, "resolved": resolved},
        )
    logger.info("slas.volume_pass", extra=result.__dict__)
    return result


def _store_counts(monitors: list[VolumeMonitor], now: datetime) -> None:
    """Every monitor's latest count in one statement (a CASE per row, as bulk_update builds, costs more to compile
    than the whole pass on PostgreSQL at 1,000 monitors)."""
    if connection.vendor != "postgresql":
        VolumeMonitor.objects.bulk_update(monitors, ["last_count", "last_evaluated_at"], batch_size=500)
        return
    table = VolumeMonitor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET last_count = v.n, last_evaluated_at = %s "
            "FROM unnest(%s::bigint[], %s::integer[]) AS v(id, n) WHERE m.id = v.id",
            [now, [m.pk for m in monitors], [m.last_count for m in monitors]],
        )


def _still(monitor: VolumeMonitor, *, violated: bool) -> bool:
    """Lock the monitor's row and tell whether it is still in the state this pass saw (a concurrent pass may not)."""
    return VolumeMonitor.objects.select_for_update().filter(pk=monitor.pk, currently_violated=violated).exists()


@transaction.atomic
def _volume_open(monitor: VolumeMonitor, reason: str, *, count: int, now: datetime) -> None:
    if not _still(monitor, violated=False):
        return
    case = case_services.signal_record(
        signal_key=f"volume:{monitor.pk}:{now.isoformat()}",
        category_slug=monitor.category_slug,
        system=monitor.system,
        kind=monitor.kind,
        title=f"Volume: {monitor.name}",
        message=f"{monitor.name}: {reason}.",
        occurred_at=now,
        entity=monitor.entity,
        fingerprint_parts=volume_fingerprint_parts(monitor),
        actor=ACTOR,
    )
    VolumeMonitor.objects.filter(pk=monitor.pk).update(
        currently_violated=True, violated_since=now, case=case, last_count=count
    )
    monitor.currently_violated, monitor.violated_since, monitor.case = True, now, case


@transaction.atomic
def _volume_resolve(monitor: VolumeMonitor, reason: str, *, count: int, now: datetime) -> None:
    if not _still(monitor, violated=True):
        return
    case_services.signal_resolve(
        category_slug=monitor.category_slug,
        system=monitor.system,
        kind=monitor.kind,
        fingerprint_parts=volume_fingerprint_parts(monitor),
        note=f"{monitor.name}: traffic is back ({reason}).",
        actor=ACTOR,
    )
    VolumeMonitor.objects.filter(pk=monitor.pk).update(
        currently_violated=False, violated_since=None, case=None, last_count=count
    )
    monitor.currently_violated, monitor.violated_since, monitor.case = False, None, None


__all__ = [
    "VolumePassResult",
    "evidence_monitor_create",
    "evidence_monitor_problems",
    "evidence_monitor_snapshot",
    "evidence_monitor_update",
    "volume_monitor_create",
    "volume_monitor_problems",
    "volume_monitor_snapshot",
    "volume_monitor_update",
    "volume_monitors_evaluate",
]
