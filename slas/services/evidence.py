"""Control-evidence monitors: the checks made from correlated transactions, and the decision when they fall due.

Each trigger event found on a transaction becomes an `EvidenceCheck` (pending, or satisfied at once); the periodic
decision reads only the pending checks that are due (a partial index) and turns those still without evidence into
occurrences of the monitor's `control` case through `exceptions.services.signal_record`.
"""

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from exceptions import services as case_services
from slas.calendars import BusinessTimeline, WorkCalendar
from slas.choices import EvidenceCheckStatus, EvidenceDirection
from slas.models import EvidenceCheck, EvidenceMonitor
from slas.monitoring import (
    EvidenceSpec,
    evidence_check,
    find_evidence,
    glob,
)
from slas.selectors import work_calendars
from slas.services.monitors import ACTOR
from transactions import selectors as txn_selectors

logger = logging.getLogger(__name__)

# Out-of-order delivery: evidence that must come *before* a trigger may still be on its way when the trigger arrives.
BEFORE_GRACE = timedelta(minutes=10)
# Timelines of a pass reach this far beyond the instants it asks about (weekends, holidays, long windows).
TIMELINE_PAD = timedelta(days=21)
DECIDE_BATCH = 2000


def _evidence_spec(monitor: EvidenceMonitor) -> EvidenceSpec:
    return EvidenceSpec(
        monitor_id=monitor.pk,
        trigger_system=monitor.trigger_system,
        trigger_kind=monitor.trigger_kind,
        trigger_status=monitor.trigger_status,
        evidence_system=monitor.evidence_system,
        evidence_kind=monitor.evidence_kind,
        evidence_approval_step=monitor.evidence_approval_step,
        direction=monitor.direction,
        window=monitor.window,
    )


class _Timelines:
    """One timeline per calendar covering every instant a pass asks about (rebuilt wider when a question falls out)."""

    def __init__(self, calendars: dict[int, WorkCalendar]) -> None:
        self.calendars = calendars
        self.built: dict[int, BusinessTimeline] = {}

    def covering(self, calendar_id: int, lo: datetime, hi: datetime) -> BusinessTimeline:
        timeline = self.built.get(calendar_id)
        if timeline is None or lo.timestamp() < timeline.lo or hi.timestamp() > timeline.hi:
            if timeline is not None:
                lo = min(lo, datetime.fromtimestamp(timeline.lo, tz=lo.tzinfo))
                hi = max(hi, datetime.fromtimestamp(timeline.hi, tz=hi.tzinfo))
            timeline = self.built[calendar_id] = BusinessTimeline(
                self.calendars[calendar_id], lo - TIMELINE_PAD, hi + TIMELINE_PAD
            )
        return timeline


def _relevant_to(spec: EvidenceSpec, step_facts: dict) -> bool:
    """Whether a transaction's step facts ("system|kind" keys) show a trigger event: the cheap pre-filter."""
    for key in step_facts or {}:
        system, _, kind = key.partition("|")
        if glob(spec.trigger_kind, kind) and glob(spec.trigger_system, system):
            return True
    return False


def _window_reach(monitor: EvidenceMonitor) -> timedelta:
    # Business time runs at most ~1/3 of calendar time on realistic calendars (8-10 h a day, 5 days a week).
    return monitor.window * 5


def evidence_monitors_scan(
    *, txn_ids: list[int], now: datetime | None = None, as_of: datetime | None = None
) -> dict[str, int]:
    """Record the evidence checks of triggers on these transactions; mark pending checks whose evidence arrived.

    Called after correlation with the transactions it touched. Reads events only of transactions whose step facts
    show a trigger, or that already have pending checks; then decides, at once, the checks already overdue. `as_of`
    is the receive time of the batch that touched them: a back-dated batch (history, a replayed backlog) decides only
    what was overdue when it arrived, since the evidence may be in a later batch; the minute pass decides the rest.
    """
    now = now or timezone.now()
    if as_of is not None:
        now = min(now, as_of)
    stats = {"checks_created": 0, "satisfied": 0, "late": 0, "missing": 0}
    monitors = list(EvidenceMonitor.objects.filter(is_active=True).order_by("id"))
    if not monitors or not txn_ids:
        return stats
    specs = {m.pk: _evidence_spec(m) for m in monitors}
    txns = {
        row["id"]: row
        for row in txn_selectors.transaction_steps_brief(txn_ids=sorted(set(txn_ids)))
        if row["merged_into_id"] is None
    }
    open_checks: dict[tuple[int, int], EvidenceCheck] = {
        (c.monitor_id, c.trigger_event_id): c
        for c in EvidenceCheck.objects.filter(
            txn_id__in=list(txns),
            status__in=[EvidenceCheckStatus.PENDING, EvidenceCheckStatus.MISSING],
        )
    }
    with_open = {c.txn_id for c in open_checks.values()}
    wanted = {
        txn_id
        for txn_id, row in txns.items()
        if txn_id in with_open
        or any(
            _relevant_to(specs[m.pk], row["step_facts"])
            for m in monitors
            if m.process_id is None or m.process_id == row["process_id"]
        )
    }
    if not wanted:
        return stats
    events_of = txn_selectors.transaction_events_detail(txn_ids=sorted(wanted))
    known = set(EvidenceCheck.objects.filter(txn_id__in=list(wanted)).values_list("monitor_id", "trigger_event_id"))
    timelines = _Timelines(work_calendars(calendar_ids=[m.calendar_id for m in monitors]))
    new_checks: list[EvidenceCheck] = []
    changed: list[EvidenceCheck] = []
    for txn_id, events in events_of.items():
        first, last = events[0]["occurred_at"], max(events[-1]["occurred_at"], now)
        for m in monitors:
            if m.process_id is not None and txns[txn_id]["process_id"] != m.process_id:
                continue
            spec = specs[m.pk]
            timeline = timelines.covering(m.calendar_id, first - _window_reach(m), last + _window_reach(m))
            for outcome in evidence_check(spec, events, now=now, timeline=timeline):
                key = (m.pk, outcome.trigger["id"])
                check = open_checks.get(key)
                if check is not None:
                    if check.status == EvidenceCheckStatus.MISSING and outcome.evidence is None:
                        # The case is open already; evidence at any time after it is worth recording as late.
                        outcome = replace(outcome, evidence=_any_evidence(spec, outcome.trigger, events, timeline))
                    if outcome.evidence is not None:
                        check.status = (
                            EvidenceCheckStatus.SATISFIED
                            if check.status == EvidenceCheckStatus.PENDING
                            else EvidenceCheckStatus.LATE
                        )
                        check.evidence_event_id = outcome.evidence["id"]
                        check.evidence_at = outcome.evidence["occurred_at"]
                        check.decided_at = now
                        changed.append(check)
                        stats["satisfied" if check.status == EvidenceCheckStatus.SATISFIED else "late"] += 1
                    continue
                if key in known:
                    continue
                found = outcome.evidence
                # A deadline past the timeline (a calendar with very little working time) is at least this far away.
                due = outcome.due_at or outcome.trigger["occurred_at"] + _window_reach(m)
                if m.direction == EvidenceDirection.BEFORE:
                    due = outcome.trigger["occurred_at"] + BEFORE_GRACE
                new_checks.append(
                    EvidenceCheck(
                        monitor=m,
                        txn_id=txn_id,
                        trigger_event_id=outcome.trigger["id"],
                        trigger_at=outcome.trigger["occurred_at"],
                        trigger_kind=outcome.trigger["kind"][:200],
                        entity=outcome.trigger["entity"][:50],
                        due_at=due,
                        status=EvidenceCheckStatus.SATISFIED if found else EvidenceCheckStatus.PENDING,
                        evidence_event_id=found["id"] if found else None,
                        evidence_at=found["occurred_at"] if found else None,
                        decided_at=now if found else None,
                    )
                )
    with transaction.atomic():
        # ignore_conflicts: a concurrent scan of the same transaction may have recorded the same trigger.
        EvidenceCheck.objects.bulk_create(new_checks, batch_size=1000, ignore_conflicts=True)
        if changed:
            EvidenceCheck.objects.bulk_update(
                changed, ["status", "evidence_event_id", "evidence_at", "decided_at"], batch_size=500
            )
    stats["checks_created"] = len(new_checks)
    stats["satisfied"] += sum(1 for c in new_checks if c.status == EvidenceCheckStatus.SATISFIED)
    stats["missing"] = evidence_checks_decide(now=now, txn_ids=sorted(wanted)).get("missing", 0)
    return stats


def _any_evidence(spec: EvidenceSpec, trigger: dict, events: list[dict], timeline: BusinessTimeline) -> dict | None:
    unbounded = replace(spec, window=timedelta(days=36500))
    return find_evidence(unbounded, trigger["occurred_at"], [e for e in events if e["id"] != trigger["id"]], timeline)


def evidence_checks_follow_merge(*, survivor_id: int, absorbed_ids: list[int]) -> int:
    """Checks of absorbed transactions belong to the survivor (their trigger events moved with them)."""
    return EvidenceCheck.objects.filter(txn_id__in=absorbed_ids).update(txn_id=survivor_id)


def evidence_fingerprint_parts(monitor: EvidenceMonitor) -> tuple[str, ...]:
    return ("evidence", monitor.slug)


def evidence_checks_decide(
    *, now: datetime | None = None, txn_ids: list[int] | None = None, limit: int = DECIDE_BATCH
) -> dict[str, int]:
    """Pending checks that are due: satisfied if their evidence is there after all, else a `control` case.

    Reads only due pending checks (partial index evidencecheck_due_idx) and the events of their transactions.
    """
    now = now or timezone.now()
    stats = {"decided": 0, "satisfied": 0, "missing": 0}
    due = EvidenceCheck.objects.filter(status=EvidenceCheckStatus.PENDING, due_at__lte=now)
    if txn_ids is not None:
        due = due.filter(txn_id__in=txn_ids)
    checks = list(due.select_related("monitor").order_by("due_at")[:limit])
    if not checks:
        return stats
    events_of = txn_selectors.transaction_events_detail(txn_ids=sorted({c.txn_id for c in checks}))
    timelines = _Timelines(work_calendars(calendar_ids=[c.monitor.calendar_id for c in checks]))
    for check in checks:
        monitor = check.monitor
        spec = _evidence_spec(monitor)
        events = events_of.get(check.txn_id, [])
        hi = max([now, *(e["occurred_at"] for e in events)])
        timeline = timelines.covering(monitor.calendar_id, check.trigger_at - _window_reach(monitor), hi)
        found = find_evidence(
            spec, check.trigger_at, [e for e in events if e["id"] != check.trigger_event_id], timeline
        )
        stats["decided"] += 1
        if found is not None:
            EvidenceCheck.objects.filter(pk=check.pk, status=EvidenceCheckStatus.PENDING).update(
                status=EvidenceCheckStatus.SATISFIED,
                evidence_event_id=found["id"],
                evidence_at=found["occurred_at"],
                decided_at=now,
            )
            stats["satisfied"] += 1
            continue
        try:
            _evidence_missing(check, monitor, spec, now=now)
        except Exception:
            # The check stays pending (the claim rolled back with the case), so the next pass tries again.
            logger.exception("slas.evidence_case_failed", extra={"check": check.pk})
            continue
        stats["missing"] += 1
    if stats["missing"]:
        logger.info("slas.evidence_missing", extra=stats)
    return stats


@transaction.atomic
def _evidence_missing(check: EvidenceCheck, monitor: EvidenceMonitor, spec: EvidenceSpec, *, now: datetime) -> None:
    # Claim the check first: a concurrent pass that got here too finds it no longer pending and stops.
    claimed = EvidenceCheck.objects.filter(pk=check.pk, status=EvidenceCheckStatus.PENDING).update(
        status=EvidenceCheckStatus.MISSING, decided_at=now
    )
    if not claimed:
        return
    when = "before" if monitor.direction == EvidenceDirection.BEFORE else "within"
    window = _human_window(monitor.window)
    case = case_services.signal_record(
        signal_key=f"evidence:{monitor.pk}:{check.trigger_event_id}",
        category_slug=monitor.category_slug,
        system=monitor.trigger_system or "any",
        kind=check.trigger_kind,
        title=f"Missing evidence: {monitor.name}",
        message=(
            f"Transaction {check.txn_id}: {check.trigger_kind} at {check.trigger_at.isoformat()} has no "
            f"{spec.describe_evidence()} {when} {window} of business time ({monitor.name})."
        ),
        occurred_at=check.due_at,
        txn_id=check.txn_id,
        entity=check.entity,
        fingerprint_parts=evidence_fingerprint_parts(monitor),
        actor=ACTOR,
    )
    EvidenceCheck.objects.filter(pk=check.pk).update(case=case)


def _human_window(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


__all__ = [
    "evidence_checks_decide",
    "evidence_checks_follow_merge",
    "evidence_monitors_scan",
]
