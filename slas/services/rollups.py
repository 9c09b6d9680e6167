"""Daily rollups behind the dashboards: recompute whole local days from the source tables and replace their rows.

A day is rebuilt by deleting its rows and inserting fresh ones in one atomic block, so running it twice, or while the
day is still filling, never double counts. The periodic task refreshes today and yesterday; `rebuild_rollups`
recomputes any range (after a rule change, or on a new installation).
"""

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from exceptions.choices import ReplayStatus
from exceptions.models import Case, ExceptionRecord, Replay
from slas.choices import ClockStatus
from slas.kpis import MILESTONE_STEPS, breach_system, local_day, milestone_spans, period_bounds
from slas.models import DailyRollup, RollupMetric, SlaClock
from transactions.choices import COMPLETED_STATUSES, TransactionStatus
from transactions.correlation import StepSpec
from transactions.models import ProcessStep, Transaction

logger = logging.getLogger(__name__)

BATCH = 2000

Key = tuple  # (day, metric, process, entity, definition_id, system, category, queue, step)


def dashboard_time_zone() -> str:
    return settings.DASHBOARD_TIME_ZONE


class _Acc:
    """Rows being built for a range of days, keyed by day and dimensions."""

    def __init__(self, time_zone: str) -> None:
        self.time_zone = time_zone
        self.rows: dict[Key, dict] = {}

    def add(
        self,
        at: datetime,
        metric: str,
        *,
        good: int = 0,
        bad: int = 0,
        seconds: int | None = None,
        process: str = "",
        entity: str = "",
        definition_id: int | None = None,
        system: str = "",
        category: str = "",
        queue: str = "",
        step: str = "",
    ) -> None:
        key = (local_day(at, self.time_zone), metric, process, entity, definition_id, system, category, queue, step)
        row = self.rows.setdefault(key, {"count": 0, "good": 0, "bad": 0, "total_seconds": 0, "samples": []})
        row["count"] += 1
        row["good"] += good
        row["bad"] += bad
        if seconds is not None:
            row["total_seconds"] += seconds
            row["samples"].append(seconds)

    def models(self) -> Iterator[DailyRollup]:
        for (day, metric, process, entity, definition_id, system, category, queue, step), m in self.rows.items():
            yield DailyRollup(
                day=day,
                metric=metric,
                process=process,
                entity=entity[:50],
                definition_id=definition_id,
                system=system[:100],
                category=category,
                queue=queue,
                step=step[:120],
                count=m["count"],
                good=m["good"],
                bad=m["bad"],
                total_seconds=m["total_seconds"],
                samples=sorted(m["samples"]),
            )


def _sla_clocks(acc: _Acc, start: datetime, end: datetime) -> None:
    step_systems = {(s.process_id, s.name): s.system for s in ProcessStep.objects.all()}
    clocks = SlaClock.objects.filter(
        # Met clocks count on the day they were met, breached ones on the day they breached.
        Q(status=ClockStatus.MET, met_at__gte=start, met_at__lt=end)
        | Q(status=ClockStatus.BREACHED, breached_at__gte=start, breached_at__lt=end)
    ).values_list(
        "definition_id",
        "definition__process_id",
        "definition__process__slug",
        "entity",
        "status",
        "met_at",
        "breached_at",
        "elapsed_seconds",
        "waiting_for_step",
        "txn__systems",
    )
    for (
        definition_id,
        process_id,
        process,
        entity,
        status,
        met_at,
        breached_at,
        elapsed,
        step,
        systems,
    ) in clocks.iterator(chunk_size=BATCH):
        met = status == ClockStatus.MET
        system = "" if met else breach_system(step_systems.get((process_id, step), ""), systems)
        acc.add(
            met_at if met else breached_at,
            RollupMetric.SLA_CLOCKS,
            good=int(met),
            bad=int(not met),
            seconds=elapsed,
            process=process or "",
            entity=entity,
            definition_id=definition_id,
            system=system,
            step="" if met else step,
        )


def _transactions(acc: _Acc, start: datetime, end: datetime) -> None:
    listed = Transaction.objects.exclude(status=TransactionStatus.MERGED)
    started = listed.filter(started_at__gte=start, started_at__lt=end).values_list(
        "started_at", "process__slug", "systems"
    )
    for started_at, process, systems in started.iterator(chunk_size=BATCH):
        # Auto-correlated: events of two or more systems joined without anyone matching them by hand.
        acc.add(started_at, RollupMetric.TXN_STARTED, good=int(len(systems or []) >= 2), process=process or "")
    with_case = ExceptionRecord.objects.filter(txn_id=OuterRef("pk"))
    completed = (
        listed.filter(status__in=COMPLETED_STATUSES, last_event_at__gte=start, last_event_at__lt=end)
        .annotate(has_case=Exists(with_case))
        .values_list("last_event_at", "process__slug", "has_case")
    )
    for last_event_at, process, has_case in completed.iterator(chunk_size=BATCH):
        acc.add(
            last_event_at, RollupMetric.TXN_COMPLETED, good=int(not has_case), bad=int(has_case), process=process or ""
        )


def process_step_specs() -> dict[int, dict[str, StepSpec]]:
    """process id -> step name -> step, for milestone and breach attribution."""
    steps: dict[int, dict[str, StepSpec]] = defaultdict(dict)
    for s in ProcessStep.objects.all():
        steps[s.process_id][s.name] = StepSpec(s.position, s.name, s.system, s.kind_pattern, s.allowance, s.required)
    return steps


def milestone_candidates(start: datetime, end: datetime) -> QuerySet:
    """Transactions that may reach a milestone in [start, end): one there implies a last event at or after start."""
    process_ids = [pid for pid, by_name in process_step_specs().items() if MILESTONE_STEPS & set(by_name)]
    return Transaction.objects.exclude(status=TransactionStatus.MERGED).filter(
        process_id__in=process_ids, last_event_at__gte=start, started_at__lt=end
    )


def _milestones(acc: _Acc, start: datetime, end: datetime) -> None:
    steps = process_step_specs()
    txns = milestone_candidates(start, end).values_list("process_id", "process__slug", "step_facts")
    for process_id, process, facts in txns.iterator(chunk_size=BATCH):
        for metric, (began, ended) in milestone_spans(steps[process_id], facts).items():
            if start <= ended < end:
                acc.add(ended, metric, seconds=int((ended - began).total_seconds()), process=process)


def _exceptions(acc: _Acc, start: datetime, end: datetime) -> None:
    rows = ExceptionRecord.objects.filter(occurred_at__gte=start, occurred_at__lt=end).values_list(
        "occurred_at", "category__slug", "system", "rule_id"
    )
    for occurred_at, category, system, rule_id in rows.iterator(chunk_size=BATCH):
        acc.add(occurred_at, RollupMetric.EXCEPTIONS, good=int(rule_id is not None), category=category, system=system)


def _cases(acc: _Acc, start: datetime, end: datetime) -> None:
    rows = Case.objects.filter(merged_into__isnull=True, resolved_at__gte=start, resolved_at__lt=end).values_list(
        "resolved_at", "first_seen", "queue__slug", "category__slug"
    )
    for resolved_at, first_seen, queue, category in rows.iterator(chunk_size=BATCH):
        seconds = max(0, int((resolved_at - first_seen).total_seconds()))
        acc.add(resolved_at, RollupMetric.CASES_RESOLVED, seconds=seconds, queue=queue, category=category)


def _replays(acc: _Acc, start: datetime, end: datetime) -> None:
    rows = Replay.objects.filter(
        status__in=[ReplayStatus.SUCCEEDED, ReplayStatus.FAILED], created_at__gte=start, created_at__lt=end
    ).values_list("created_at", "status", "case__system")
    for created_at, status, system in rows.iterator(chunk_size=BATCH):
        ok = status == ReplayStatus.SUCCEEDED
        acc.add(created_at, RollupMetric.REPLAYS, good=int(ok), bad=int(not ok), system=system)


def rollups_rebuild(*, first: date, last: date) -> int:
    """Recompute the rollups of the local days first..last (inclusive) and replace their rows; returns rows written."""
    if last < first:
        return 0
    time_zone = dashboard_time_zone()
    start, end = period_bounds(first, last, time_zone)
    acc = _Acc(time_zone)
    for collect in (_sla_clocks, _transactions, _milestones, _exceptions, _cases, _replays):
        collect(acc, start, end)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    with transaction.atomic():
        for i in range(0, len(days), 500):
            DailyRollup.objects.filter(day__in=days[i : i + 500]).delete()
        rows = [obj for obj in acc.models() if first <= obj.day <= last]
        DailyRollup.objects.bulk_create(rows, batch_size=1000)
        written = len(rows)
    logger.info("slas.rollups_rebuilt", extra={"first": first.isoformat(), "last": last.isoformat(), "rows": written})
    return written


def rollups_refresh_recent(*, now: datetime | None = None) -> int:
    """Rebuild today and yesterday (local days): late events and clocks closing after midnight land in either."""
    today = local_day(now or timezone.now(), dashboard_time_zone())
    return rollups_rebuild(first=today - timedelta(days=1), last=today)


def rollups_earliest_day() -> date | None:
    """The first local day any source of the rollups has data for (where a full rebuild starts)."""
    firsts = [
        Transaction.objects.order_by("started_at").values_list("started_at", flat=True).first(),
        SlaClock.objects.order_by("started_at").values_list("started_at", flat=True).first(),
        ExceptionRecord.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first(),
    ]
    found = [f for f in firsts if f is not None]
    return local_day(min(found), dashboard_time_zone()) if found else None
