"""Silence as plain data: which window a volume monitor counts, whether a count breaks it, and missing evidence.

No ORM (see transactions/correlation.py for the same split): `slas.services.monitors` reads the counts and the
events, asks these functions, and turns their answers into cases through the exceptions app.

Volume monitors count events by when they occurred. Window mode counts the last `window` of time ending now; with
`working_hours_only` that is the last `window` of *working* time (at 08:10 on a Monday a 30-minute window reaches
back into Friday's last 20 minutes), so a quiet night or weekend is never silence. Daily-deadline mode counts from
local midnight of the latest working day whose deadline has passed, until the end of that day: until the next
working day's deadline that day's verdict stands, and late arrivals on it still resolve the case.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from exceptions.classification import glob as _glob
from slas.calendars import BusinessTimeline, WorkCalendar

# Daily mode looks this far back for the latest working day whose deadline passed (long holidays included).
MAX_LOOKBACK_DAYS = 31
TRIPLE = tuple[str, str, str]  # (system, kind, entity) of an aggregate row


def glob(pattern: str, value: str) -> bool:
    """Case-insensitive glob, `a|b` for alternatives; an empty pattern matches anything (an empty entity too)."""
    return not pattern or _glob(pattern, value)


# ---- Volume monitors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeSpec:
    """What a volume monitor expects: matching events per window (or by a daily deadline), between min and max."""

    monitor_id: int
    system: str
    kind: str
    entity: str
    mode: str  # "window" or "daily_deadline" (slas.choices.VolumeMode)
    window: timedelta | None
    deadline_time: time | None
    min_count: int
    max_count: int | None
    working_hours_only: bool

    def matches(self, system: str, kind: str, entity: str) -> bool:
        return glob(self.system, system) and glob(self.kind, kind) and glob(self.entity, entity)


@dataclass(frozen=True)
class Period:
    """The occurrence-time range a monitor counts now, [start, end), and how to name it in a case."""

    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class Verdict:
    violated: bool
    reason: str  # why it is violated, or what was seen when it is not


def business_window_start(timeline: BusinessTimeline, end: datetime, window: timedelta) -> datetime | None:
    """The latest instant s with `window` of working time in [s, end); None when the timeline does not reach back.

    The timeline's prefix sums give it by one bisection, as BusinessTimeline.add_seconds does forwards.
    """
    hi = int(end.timestamp())
    if not timeline.lo <= hi <= timeline.hi:
        raise ValueError("end outside the timeline's period")
    needed = int(window.total_seconds())
    i = bisect.bisect_right(timeline.starts, hi) - 1
    worked = 0 if i < 0 else timeline.cumulative[i] + min(hi, timeline.ends[i]) - timeline.starts[i]
    target = worked - needed
    if target < 0:
        return None
    # The range where the working time before it first exceeds `target` holds the start.
    j = bisect.bisect_right(timeline.cumulative, target) - 1
    if j >= len(timeline.starts):
        return None
    moment = timeline.starts[j] + (target - timeline.cumulative[j])
    if moment < timeline.lo:
        return None
    return datetime.fromtimestamp(moment, tz=UTC)


def is_working_day(cal: WorkCalendar, day: date) -> bool:
    return bool(cal.weekly[day.weekday()]) and day not in cal.holidays


def volume_period(
    spec: VolumeSpec, cal: WorkCalendar, now: datetime, timeline: BusinessTimeline | None = None
) -> Period:
    """The occurrence-time range `spec` counts at `now` (see the module docstring)."""
    if spec.mode == "daily_deadline":
        return _daily_period(spec, cal, now)
    if spec.window is None:
        raise ValueError("a window monitor needs a window")
    if not spec.working_hours_only:
        return Period(now - spec.window, now, f"the last {_human(spec.window)}")
    if timeline is None:
        timeline = BusinessTimeline(cal, now - max(spec.window * 4, timedelta(days=MAX_LOOKBACK_DAYS)), now)
    start = business_window_start(timeline, now, spec.window)
    if start is None:
        # Not that much working time in the period the timeline covers: count all of it rather than guess.
        start = datetime.fromtimestamp(timeline.lo, tz=UTC)
    return Period(start, now, f"the last {_human(spec.window)} of working time")


def _daily_period(spec: VolumeSpec, cal: WorkCalendar, now: datetime) -> Period:
    if spec.deadline_time is None:
        raise ValueError("a daily-deadline monitor needs a deadline time")
    zone = ZoneInfo(cal.time_zone)
    today = now.astimezone(zone).date()
    for back in range(MAX_LOOKBACK_DAYS + 1):
        day = today - timedelta(days=back)
        if not is_working_day(cal, day):
            continue
        deadline = datetime.combine(day, spec.deadline_time, tzinfo=zone)
        if deadline > now:
            continue
        start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        return Period(start, min(now, day_end), f"{day.isoformat()} by {spec.deadline_time:%H:%M}")
    # No working day with a passed deadline in a month: nothing is expected, so count an empty period.
    return Period(now, now, "no working day in the last month")


def volume_verdict(spec: VolumeSpec, count: int, period: Period) -> Verdict:
    """Too few or too many matching events in the period, or fine."""
    if period.start >= period.end and spec.mode == "daily_deadline":
        return Verdict(False, f"nothing expected ({period.label})")
    if count < spec.min_count:
        return Verdict(True, f"{count} matching event(s) in {period.label}, at least {spec.min_count} expected")
    if spec.max_count is not None and count > spec.max_count:
        return Verdict(True, f"{count} matching event(s) in {period.label}, at most {spec.max_count} expected")
    return Verdict(False, f"{count} matching event(s) in {period.label}")


class TripleMatcher:
    """Which aggregate rows (system, kind, entity) a monitor counts, with each glob answer computed once.

    One pass matches every monitor against every row; systems and kinds repeat across rows and monitors, so the
    answers are cached per (pattern, value) and a monitor only looks at the rows of the systems it matches.
    """

    def __init__(self, triples: Iterable[TRIPLE]) -> None:
        self.by_system: dict[str, list[TRIPLE]] = {}
        for triple in triples:
            self.by_system.setdefault(triple[0], []).append(triple)
        self._cache: dict[tuple[str, str], bool] = {}

    def _glob(self, pattern: str, value: str) -> bool:
        key = (pattern, value)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = glob(pattern, value)
        return found

    def matching(self, spec: VolumeSpec) -> list[TRIPLE]:
        return [
            triple
            for system, rows in self.by_system.items()
            if self._glob(spec.system, system)
            for triple in rows
            if self._glob(spec.kind, triple[1]) and self._glob(spec.entity, triple[2])
        ]


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# ---- Control-evidence monitors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceSpec:
    """A trigger event and the evidence that must come before or after it within a business-time window."""

    monitor_id: int
    trigger_system: str
    trigger_kind: str
    trigger_status: str
    evidence_system: str
    evidence_kind: str
    evidence_approval_step: str
    direction: str  # "before" or "after" (slas.choices.EvidenceDirection)
    window: timedelta

    def is_trigger(self, event: Mapping) -> bool:
        return (
            glob(self.trigger_kind, event["kind"])
            and glob(self.trigger_system, event["system"])
            and (not self.trigger_status or event["status"] == self.trigger_status)
        )

    def is_evidence(self, event: Mapping) -> bool:
        if event["status"] != "ok" or not glob(self.evidence_system, event["system"]):
            return False
        if self.evidence_kind and glob(self.evidence_kind, event["kind"]):
            return True
        step = (event.get("approval") or {}).get("step") or ""
        decision = (event.get("approval") or {}).get("decision") or "approved"
        return (
            bool(self.evidence_approval_step) and glob(self.evidence_approval_step, step) and (decision == "approved")
        )

    def describe_evidence(self) -> str:
        parts = []
        if self.evidence_kind:
            parts.append(self.evidence_kind + (f" from {self.evidence_system}" if self.evidence_system else ""))
        if self.evidence_approval_step:
            parts.append(f"an approval of step {self.evidence_approval_step}")
        return " or ".join(parts)


def evidence_deadline(spec: EvidenceSpec, trigger_at: datetime, timeline: BusinessTimeline) -> datetime | None:
    """When evidence for a trigger is overdue: `window` of working time after it (after), or at once (before).

    `before` checks are decided as soon as the trigger is seen; None means the timeline is too short to tell.
    """
    if spec.direction == "before":
        return trigger_at
    return timeline.add(trigger_at, spec.window)


def find_evidence(
    spec: EvidenceSpec, trigger_at: datetime, events: Sequence[Mapping], timeline: BusinessTimeline
) -> Mapping | None:
    """The first event of the transaction that satisfies the trigger at `trigger_at` (events oldest first, each a
    mapping with id, occurred_at, system, kind, status and approval).

    after: evidence occurring at or after the trigger within `window` of working time. before: evidence occurring
    before (or at) the trigger and no more than `window` of working time earlier.
    """
    for event in events:
        if not spec.is_evidence(event):
            continue
        at = event["occurred_at"]
        if not timeline.lo <= at.timestamp() <= timeline.hi:
            continue  # far outside any window the caller's timeline was built for
        if spec.direction == "after":
            if at >= trigger_at and timeline.elapsed(trigger_at, at) <= spec.window:
                return event
        elif at <= trigger_at and timeline.elapsed(at, trigger_at) <= spec.window:
            return event
    return None


@dataclass(frozen=True)
class EvidenceOutcome:
    """One trigger's check: `missing` once it is overdue with nothing found; `evidence` when found."""

    trigger: Mapping
    due_at: datetime | None
    evidence: Mapping | None
    missing: bool


def evidence_check(
    spec: EvidenceSpec, events: Sequence[Mapping], *, now: datetime, timeline: BusinessTimeline
) -> list[EvidenceOutcome]:
    """Every trigger among a transaction's events (oldest first) and whether its evidence is there, due or missing."""
    outcomes = []
    for event in events:
        if not spec.is_trigger(event):
            continue
        trigger_at = event["occurred_at"]
        # An event is never evidence for itself (a kind that is both trigger and evidence of another trigger is).
        found = find_evidence(spec, trigger_at, [e for e in events if e["id"] != event["id"]], timeline)
        due = evidence_deadline(spec, trigger_at, timeline)
        missing = found is None and due is not None and due <= now
        outcomes.append(EvidenceOutcome(trigger=event, due_at=due, evidence=found, missing=missing))
    return outcomes


__all__ = [
    "EvidenceOutcome",
    "EvidenceSpec",
    "Period",
    "TripleMatcher",
    "Verdict",
    "VolumeSpec",
    "business_window_start",
    "evidence_check",
    "evidence_deadline",
    "find_evidence",
    "is_working_day",
    "volume_period",
    "volume_verdict",
]
