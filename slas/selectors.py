"""Reads of the slas app: calendars, SLA definitions, clocks (lists, a transaction's, at risk per queue), step pace."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from exceptions.classification import CaseFacts, route
from exceptions.selectors import routing_specs
from slas.calendars import CalendarClock, WorkCalendar, parse_working_hours
from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus, EvidenceCheckStatus
from slas.evaluation import ClockState, StepInfo, Target, clock_times, p90_step_durations
from slas.models import (
    AT_RISK_NOW,
    BusinessCalendar,
    EvidenceCheck,
    EvidenceMonitor,
    Holiday,
    SlaClock,
    SlaDefinition,
    VolumeMonitor,
)
from transactions.selectors import process_definition_list, transaction_step_samples

# Breach cases are signalled with this system and a kind per definition (sla.breached.<slug>), so that routing rules
# can send one definition's breaches to a queue of its own (kind sla.breached.invoice-*), or all of them (system).
BREACH_SYSTEM = "closeloop-slas"
BREACH_KIND_PREFIX = "sla.breached"
# The pace of a process is read from this many of its most recent transactions within the window.
PACE_WINDOW = timedelta(days=30)
PACE_SAMPLE = 2000


# ---- Calendars ------------------------------------------------------------------------------------------------------


def calendar_list() -> QuerySet[BusinessCalendar]:
    """Every calendar with its holiday and definition counts."""
    return BusinessCalendar.objects.annotate(
        holiday_count=Count("holidays", distinct=True), definition_count=Count("sla_definitions", distinct=True)
    ).order_by("name")


def calendar_get(*, calendar_id: int) -> BusinessCalendar:
    return BusinessCalendar.objects.get(pk=calendar_id)


def holiday_list(*, calendar: BusinessCalendar, since: date | None = None) -> QuerySet[Holiday]:
    holidays = Holiday.objects.filter(calendar=calendar)
    if since is not None:
        holidays = holidays.filter(date__gte=since)
    return holidays.order_by("date")


def work_calendars(*, calendar_ids: Iterable[int]) -> dict[int, WorkCalendar]:
    """The pure calendars (with their holidays) by id, in two queries however many there are."""
    ids = sorted(set(calendar_ids))
    holidays: dict[int, list[date]] = {}
    for calendar_id, day in Holiday.objects.filter(calendar_id__in=ids).values_list("calendar_id", "date"):
        holidays.setdefault(calendar_id, []).append(day)
    return {
        cal.pk: WorkCalendar(
            time_zone=cal.time_zone,
            weekly=parse_working_hours(cal.working_hours),
            holidays=frozenset(holidays.get(cal.pk, ())),
        )
        for cal in BusinessCalendar.objects.filter(pk__in=ids)
    }


# ---- Definitions ----------------------------------------------------------------------------------------------------


def sla_definition_list() -> QuerySet[SlaDefinition]:
    """Every definition with its calendar, process and breach queue, and how many of its clocks are live."""
    return (
        SlaDefinition.objects.select_related("calendar", "process", "breach_queue")
        .annotate(
            live_clocks=Count("clocks", filter=Q(clocks__status__in=LIVE_CLOCK_STATUSES)),
            at_risk_clocks=Count("clocks", filter=Q(clocks__status=ClockStatus.AT_RISK)),
            breached_clocks=Count("clocks", filter=Q(clocks__status=ClockStatus.BREACHED)),
        )
        .order_by("name")
    )


def sla_definition_get(*, definition_id: int) -> SlaDefinition:
    return SlaDefinition.objects.select_related("calendar", "process", "breach_queue").get(pk=definition_id)


def sla_definitions_active() -> list[SlaDefinition]:
    """What evaluation runs on: the active definitions with their calendars."""
    return list(SlaDefinition.objects.filter(is_active=True).select_related("calendar").order_by("id"))


# ---- Clocks ---------------------------------------------------------------------------------------------------------


def sla_clock_list() -> QuerySet[SlaClock]:
    """Newest start first (the clocks page and API, filtered by slas.filters.SlaClockFilterSet)."""
    return (
        SlaClock.objects.select_related("definition")
        .annotate(process_slug=F("txn__process__slug"))
        .order_by("-started_at", "-id")
    )


def sla_clocks_with_times(clocks: Iterable[SlaClock], *, now: datetime) -> list[SlaClock]:
    """The clocks with their business times exact at `now` (the minute pass stores them only as they drift by ten
    minutes); each clock's definition must be loaded (select_related)."""
    clocks = list(clocks)
    live = [c for c in clocks if c.status in LIVE_CLOCK_STATUSES]
    if not live:
        return clocks
    calendars = work_calendars(calendar_ids={c.definition.calendar_id for c in live})
    business = {calendar_id: CalendarClock(cal) for calendar_id, cal in calendars.items()}
    for clock in live:
        definition = clock.definition
        state = ClockState(
            status=clock.status,
            started_at=clock.started_at,
            start_event_id=clock.start_event_id,
            stopped_at=clock.stopped_at,
            pauses=clock.pauses,
        )
        target = Target(int(definition.target.total_seconds()), definition.at_risk_percent)
        times = clock_times(state, target=target, business=business[definition.calendar_id], now=now)
        clock.elapsed_seconds, clock.remaining_seconds, clock.paused_seconds = (
            times.elapsed,
            times.remaining,
            times.paused,
        )
        if times.paused_since is not None:
            clock.due_at = business[definition.calendar_id].deadline(now, max(times.remaining, 0))
    return clocks


def sla_clocks_for_transaction(*, txn_id: int) -> list[SlaClock]:
    """A transaction's clocks (its page), live ones first."""
    clocks = SlaClock.objects.filter(txn_id=txn_id).select_related("definition").order_by("started_at", "id")
    timed = sla_clocks_with_times(clocks, now=timezone.now())
    return sorted(timed, key=lambda c: (c.status not in LIVE_CLOCK_STATUSES, c.started_at))


def sla_clock_counts() -> dict[str, int]:
    """Clocks per status (for the overview and the dashboard)."""
    counts = dict(SlaClock.objects.values("status").annotate(n=Count("id")).order_by().values_list("status", "n"))
    return {status: counts.get(status, 0) for status in ClockStatus.values}


def sla_clocks_at_risk_for_queue(*, queue_id: int, limit: int = 50) -> list[SlaClock]:
    """At-risk and paused-at-risk clocks whose breach would land in this queue, soonest deadline first.

    The queue is where the routing rules would put the breach case (by category, the breach system and kind, and the
    clock's legal entity), exactly as a breach is routed.
    """
    candidates = list(SlaClock.objects.filter(AT_RISK_NOW).select_related("definition").order_by("due_at", "id")[:2000])
    if not candidates:
        return []
    rules = routing_specs()
    destination: dict[tuple[int, str], int | None] = {}
    found = []
    for clock in candidates:
        key = (clock.definition_id, clock.entity)
        if key not in destination:
            destination[key] = breach_queue_id(definition=clock.definition, entity=clock.entity, rules=rules)
        if destination[key] == queue_id:
            found.append(clock)
            if len(found) >= limit:
                break
    return sla_clocks_with_times(found, now=timezone.now())


def breach_kind(definition: SlaDefinition) -> str:
    """The kind of this definition's breach cases (what routing rules match on)."""
    return f"{BREACH_KIND_PREFIX}.{definition.slug}"


def breach_queue_id(*, definition: SlaDefinition, entity: str, rules: list | None = None) -> int | None:
    """The queue a breach of this definition goes to: the definition's own, else where the routing rules put it
    (None: the default queue)."""
    if definition.breach_queue_id:
        return definition.breach_queue_id
    facts = CaseFacts(
        category=definition.breach_category_slug,
        system=BREACH_SYSTEM,
        kind=breach_kind(definition),
        entity=entity,
        amount=Decimal(0),
    )
    rule = route(facts, rules if rules is not None else routing_specs())
    return rule.queue_id if rule else None


# ---- The pace of processes (forecast) -------------------------------------------------------------------------------


def process_steps(*, process_ids: Iterable[int]) -> dict[int, list[StepInfo]]:
    """Each process's steps in order, as the forecast sees them."""
    wanted = set(process_ids)
    return {
        process.pk: [
            StepInfo(
                position=s.position, name=s.name, system=s.system, kind_pattern=s.kind_pattern, required=s.required
            )
            for s in process.steps.all()
        ]
        for process in process_definition_list().filter(pk__in=wanted)
    }


# The pace of a process barely moves between two evaluations (minutes apart live, hours apart in a back-dated
# history), yet reading and scanning its sample on every correlated batch took a quarter of a week of simulated
# history: kept per process, step list (an edited process is recomputed at once) and day of the evaluation.
_PACE_BY_DAY: dict[tuple[int, tuple[StepInfo, ...], date], dict[int, float]] = {}
_PACE_KEPT = 512


def process_step_p90(*, process_id: int, steps: list[StepInfo], now: datetime) -> dict[int, float]:
    """p90 seconds per step position over the process's recent transactions (a bounded sample of the last 30 days),
    as first computed on `now`'s day in this process."""
    key = (process_id, tuple(steps), now.date())
    pace = _PACE_BY_DAY.get(key)
    if pace is None:
        samples = transaction_step_samples(process_id=process_id, since=now - PACE_WINDOW, limit=PACE_SAMPLE)
        pace = p90_step_durations(steps, samples)
        if len(_PACE_BY_DAY) >= _PACE_KEPT:
            _PACE_BY_DAY.clear()
        _PACE_BY_DAY[key] = pace
    return pace


# ---- Monitors: both kinds with their state, their checks, and both in one list -------------------------------------

VOLUME, EVIDENCE = "volume", "evidence"
MONITOR_TYPES = (EVIDENCE, VOLUME)  # in the order the combined list breaks ties of equal slugs
# An evidence monitor counts as violated while it has missing evidence decided this recently.
RECENT_MISSING = timedelta(days=7)


def volume_monitor_list() -> QuerySet[VolumeMonitor]:
    return VolumeMonitor.objects.select_related("calendar", "queue").order_by("slug")


def volume_monitor_get(*, monitor_id: int) -> VolumeMonitor:
    return volume_monitor_list().get(pk=monitor_id)


def evidence_monitor_list(*, now: datetime | None = None) -> QuerySet[EvidenceMonitor]:
    """With counts of pending checks and of evidence missing in the last week (evidencecheck_monitor_idx)."""
    since = (now or timezone.now()) - RECENT_MISSING
    return (
        EvidenceMonitor.objects.select_related("calendar", "queue", "process")
        .annotate(
            pending_count=Count("checks", filter=Q(checks__status=EvidenceCheckStatus.PENDING)),
            missing_count=Count(
                "checks", filter=Q(checks__status=EvidenceCheckStatus.MISSING, checks__decided_at__gte=since)
            ),
        )
        .order_by("slug")
    )


def evidence_monitor_get(*, monitor_id: int) -> EvidenceMonitor:
    return evidence_monitor_list().get(pk=monitor_id)


def evidence_check_list(*, monitor: EvidenceMonitor, limit: int = 100) -> list[EvidenceCheck]:
    """The monitor's latest checks, newest trigger first."""
    return list(EvidenceCheck.objects.filter(monitor=monitor).order_by("-trigger_at", "-id")[:limit])


@dataclass(frozen=True)
class MonitorRow:
    """Either kind of monitor, as the combined list shows it."""

    type: str
    monitor: VolumeMonitor | EvidenceMonitor

    @property
    def key(self) -> tuple[str, str]:
        return (self.monitor.slug, self.type)

    @property
    def violated(self) -> bool:
        if self.type == VOLUME:
            return bool(self.monitor.currently_violated)
        return bool(getattr(self.monitor, "missing_count", 0))

    @property
    def summary(self) -> str:
        m = self.monitor
        if self.type == VOLUME:
            bounds = f"at least {m.min_count}" + (f", at most {m.max_count}" if m.max_count is not None else "")
            scope = f"{m.kind} from {m.system}" + (f" for {m.entity}" if m.entity else "")
            when = f"by {m.deadline_time:%H:%M} each working day" if m.deadline_time else f"per {m.window}"
            return f"{bounds} {scope} {when}"
        direction = "before" if m.direction == "before" else "within"
        evidence = " or ".join(
            x for x in (m.evidence_kind, m.evidence_approval_step and f"approval {m.evidence_approval_step}") if x
        )
        return f"{evidence} {direction} {m.window} of business time of {m.trigger_kind}"


def monitor_page(
    *,
    types: tuple[str, ...] = MONITOR_TYPES,
    after: tuple[str, str] | None = None,
    limit: int = 50,
    is_active: bool | None = None,
    violated: bool | None = None,
    calendar: str = "",
    category: str = "",
    q: str = "",
) -> tuple[list[MonitorRow], bool]:
    """Both kinds in one list ordered by (slug, type), a page after the key `after`: (rows, whether more follow).

    Keyset pagination over two tables: each is read from the key on (slug index), `limit + 1` rows at most, and the
    two runs are merged; no OFFSET, no COUNT.
    """
    rows: list[MonitorRow] = []
    for kind in types:
        queryset = volume_monitor_list() if kind == VOLUME else evidence_monitor_list()
        if after is not None:
            slug, after_type = after
            same_slug_follows = MONITOR_TYPES.index(kind) > MONITOR_TYPES.index(after_type)
            queryset = queryset.filter(Q(slug__gt=slug) | Q(slug=slug) if same_slug_follows else Q(slug__gt=slug))
        if is_active is not None:
            queryset = queryset.filter(is_active=is_active)
        if calendar:
            queryset = queryset.filter(calendar__slug=calendar)
        if category:
            queryset = queryset.filter(category_slug=category)
        if q:
            queryset = queryset.filter(Q(name__icontains=q) | Q(slug__icontains=q))
        if violated is not None and kind == VOLUME:
            queryset = queryset.filter(currently_violated=violated)
        if violated is not None and kind == EVIDENCE:
            queryset = queryset.filter(missing_count__gt=0) if violated else queryset.filter(missing_count=0)
        rows.extend(MonitorRow(kind, m) for m in queryset[: limit + 1])
    rows.sort(key=lambda r: (r.key[0], MONITOR_TYPES.index(r.type)))
    return rows[:limit], len(rows) > limit


def sla_verdicts(*, txn_ids: Iterable[int]) -> list[dict]:
    """Every verdict Closeloop reached on these transactions' SLA clocks (at risk, breached, met), oldest first."""
    verdicts = []
    clocks = SlaClock.objects.filter(txn_id__in=list(txn_ids)).select_related("definition")
    for clock in clocks.order_by("id"):
        for status, at in (
            (ClockStatus.AT_RISK, clock.at_risk_at),
            (ClockStatus.BREACHED, clock.breached_at),
            (ClockStatus.MET, clock.met_at),
        ):
            if at is not None:
                verdicts.append(
                    {
                        "clock_id": clock.pk,
                        "txn_id": clock.txn_id,
                        "definition": clock.definition.name,
                        "status": status.value,
                        "at": at,
                        "reason": clock.at_risk_reason if status == ClockStatus.AT_RISK else "",
                    }
                )
    return sorted(verdicts, key=lambda v: (v["at"], v["clock_id"]))


__all__ = [
    "BREACH_KIND_PREFIX",
    "BREACH_SYSTEM",
    "EVIDENCE",
    "MONITOR_TYPES",
    "VOLUME",
    "MonitorRow",
    "breach_kind",
    "breach_queue_id",
    "calendar_get",
    "calendar_list",
    "evidence_check_list",
    "evidence_monitor_get",
    "evidence_monitor_list",
    "holiday_list",
    "monitor_page",
    "process_step_p90",
    "process_steps",
    "sla_clock_counts",
    "sla_clock_list",
    "sla_clocks_at_risk_for_queue",
    "sla_clocks_for_transaction",
    "sla_clocks_with_times",
    "sla_definition_get",
    "sla_definition_list",
    "sla_definitions_active",
    "sla_verdicts",
    "volume_monitor_get",
    "volume_monitor_list",
    "work_calendars",
]
