"""SLA clock logic without the database: matching events, pauses, state transitions and the forecast.

Plain data in, plain data out (see transactions/correlation.py for the same split); `slas.services.clocks` does the
reading and writing around it. A clock is re-derived from the transaction's events every time they change, so that
evaluating the same transaction twice, or late events arriving out of order, lands on the same state.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from slas.choices import ClockStatus

PAUSE_SOURCE_EVENT = "event"
PAUSE_SOURCE_CASE = "case"
STATUSES = ("ok", "error")
_GLOB_CHARS = set("*?[")


# Patterns and kinds are a small vocabulary (process steps, SLA matchers against the estate's event kinds) matched
# hundreds of thousands of times when the forecast samples past transactions: remember the answers.
@functools.lru_cache(maxsize=65_536)
def glob_matches(pattern: str, value: str) -> bool:
    """Case-insensitive glob; `a|b` matches either; an empty pattern matches anything."""
    if not pattern:
        return True
    value = value.lower()
    return any(fnmatch.fnmatchcase(value, part.strip().lower()) for part in pattern.split("|"))


def _patterns_overlap(a: str, b: str) -> bool:
    """Whether one value could match both patterns, as far as can be told without guessing: an empty or identical
    pattern, or a literal alternative of one that the other matches."""
    if not a or not b:
        return True
    left = [p.strip().lower() for p in a.split("|")]
    right = [p.strip().lower() for p in b.split("|")]
    for x in left:
        for y in right:
            if x == y or "*" in (x, y):
                return True
            if not (_GLOB_CHARS & set(x)) and fnmatch.fnmatchcase(x, y):
                return True
            if not (_GLOB_CHARS & set(y)) and fnmatch.fnmatchcase(y, x):
                return True
    return False


@dataclass(frozen=True)
class EventFact:
    """What a clock needs to know of one event of a transaction."""

    event_id: int
    occurred_at: datetime
    system: str
    kind: str
    status: str
    key_types: frozenset[str] = frozenset()
    entity: str = ""


@dataclass(frozen=True)
class Matcher:
    """Which events start (or stop) a clock: system and kind globs, status (empty: any), a business key type."""

    system: str
    kind: str
    status: str = ""
    key_type: str = ""

    def matches(self, event: EventFact) -> bool:
        return (
            glob_matches(self.kind, event.kind)
            and glob_matches(self.system, event.system)
            and (not self.status or self.status == event.status)
            and (not self.key_type or self.key_type in event.key_types)
        )

    def matches_fact(self, system: str, kind: str, status: str) -> bool:
        """The same test on a step-facts entry, which carries no business keys (a cheap pre-filter)."""
        return (
            glob_matches(self.kind, kind)
            and glob_matches(self.system, system)
            and (not self.status or self.status == status)
        )

    def overlaps(self, other: Matcher) -> bool:
        """Whether one event could match both (a clock that would stop on the event that starts it)."""
        if self.status and other.status and self.status != other.status:
            return False
        return _patterns_overlap(self.kind or "*", other.kind or "*") and _patterns_overlap(self.system, other.system)

    def describe(self) -> str:
        parts = [self.kind or "*"]
        if self.system:
            parts.append(f"from {self.system}")
        if self.status:
            parts.append(f"status {self.status}")
        if self.key_type:
            parts.append(f"with a {self.key_type} key")
        return " ".join(parts)


# ---- Pause conditions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseRule:
    """A case of a category open on the transaction, or the time from a pausing event until a resuming one."""

    case_category: str = ""
    event_system: str = ""
    event_kind: str = ""
    until_kind: str = ""

    @property
    def on_case(self) -> bool:
        return bool(self.case_category)

    def describe(self) -> str:
        if self.on_case:
            return f"open {self.case_category} case"
        source = f" from {self.event_system}" if self.event_system else ""
        return f"{self.event_kind}{source} until {self.until_kind}"


_CASE_KEYS = {"case_category"}
_EVENT_KEYS = {"event_kind", "until_kind", "event_system"}


def parse_pause_conditions(data: Any) -> tuple[PauseRule, ...]:
    """Validate the stored pause conditions: a list of {"case_category": slug} or
    {"event_kind": glob, "until_kind": glob[, "event_system": glob]}. Raises ValueError saying which entry is wrong."""
    if data in (None, ""):
        return ()
    if not isinstance(data, list):
        raise ValueError("pause conditions must be a list of objects")
    rules = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, Mapping):
            raise ValueError(f"pause condition {number} must be an object")
        keys = set(item)
        if any(not isinstance(v, str) for v in item.values()):
            raise ValueError(f"pause condition {number}: values must be text")
        if keys == _CASE_KEYS:
            if not item["case_category"].strip():
                raise ValueError(f"pause condition {number}: case_category is empty")
            rules.append(PauseRule(case_category=item["case_category"].strip()))
        elif keys <= _EVENT_KEYS and {"event_kind", "until_kind"} <= keys:
            if not item["event_kind"].strip() or not item["until_kind"].strip():
                raise ValueError(f"pause condition {number}: event_kind and until_kind must not be empty")
            rules.append(
                PauseRule(
                    event_system=item.get("event_system", "").strip(),
                    event_kind=item["event_kind"].strip(),
                    until_kind=item["until_kind"].strip(),
                )
            )
        else:
            raise ValueError(
                f"pause condition {number}: use either case_category, or event_kind with until_kind "
                f"(and optionally event_system); got {', '.join(sorted(keys)) or 'nothing'}"
            )
    return tuple(rules)


# ---- What a transaction's events say about a clock ------------------------------------------------------------------


@dataclass(frozen=True)
class ClockFacts:
    """The start and stop events of one definition on one transaction, and the pauses its events imply."""

    start: EventFact
    stop: EventFact | None
    event_pauses: tuple[dict, ...]


def scan_events(
    *, start: Matcher, stop: Matcher, pause_rules: Sequence[PauseRule], events: Iterable[EventFact]
) -> ClockFacts | None:
    """The earliest start event, the earliest stop event after it, and the event pauses in between; None: no start."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    first = next((e for e in ordered if start.matches(e)), None)
    if first is None:
        return None
    after = [e for e in ordered if e.occurred_at >= first.occurred_at and e.event_id != first.event_id]
    last = next((e for e in after if stop.matches(e)), None)
    pauses: list[dict] = []
    for rule in pause_rules:
        if rule.on_case:
            continue
        opened: EventFact | None = None
        for event in after:
            if last is not None and event.occurred_at > last.occurred_at:
                break
            if opened is not None and glob_matches(rule.until_kind, event.kind):
                pauses.append(_pause(opened.occurred_at, event.occurred_at, rule.describe(), opened.event_id))
                opened = None
            elif (
                opened is None
                and glob_matches(rule.event_kind, event.kind)
                and glob_matches(rule.event_system, event.system)
            ):
                opened = event
        if opened is not None:
            pauses.append(_pause(opened.occurred_at, None, rule.describe(), opened.event_id))
    return ClockFacts(start=first, stop=last, event_pauses=tuple(pauses))


def _pauses_on(rule: PauseRule, event: EventFact) -> bool:
    return glob_matches(rule.event_kind, event.kind) and glob_matches(rule.event_system, event.system)


def _pause(start: datetime, end: datetime | None, reason: str, event_id: int | None, source: str = "event") -> dict:
    return {
        "from": start.isoformat(),
        "to": end.isoformat() if end else None,
        "reason": reason,
        "source": source,
        "event_id": event_id,
    }


# ---- Forecast -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    """A process step as the forecast sees it."""

    position: int
    name: str
    system: str
    kind_pattern: str
    required: bool = True

    def matches(self, system: str, kind: str) -> bool:
        return glob_matches(self.system, system) and glob_matches(self.kind_pattern, kind)


_Seen = list[tuple[str, str, str, str]]  # (system, kind, first_at, last_at) of each step fact


def _seen(facts: Mapping[str, Mapping[str, Any]]) -> _Seen:
    return [(*key.partition("|")[::2], fact["first_at"], fact["last_at"]) for key, fact in facts.items()]


def _done_at(step: StepInfo, facts: Mapping[str, Mapping[str, Any]] | _Seen) -> tuple[datetime, datetime] | None:
    """(first, last) time the step was seen in the transaction's step facts; None: not yet."""
    rows = _seen(facts) if isinstance(facts, Mapping) else facts
    matched = [(first, last) for system, kind, first, last in rows if step.matches(system, kind)]
    if not matched:
        return None
    return (
        min(datetime.fromisoformat(first) for first, _ in matched),
        max(datetime.fromisoformat(last) for _, last in matched),
    )


def step_durations(
    steps: Sequence[StepInfo], facts: Mapping[str, Mapping[str, Any]], *, started_at: datetime
) -> dict[int, float]:
    """Seconds each seen step took after the latest step seen before it (the first step has nothing to wait for)."""
    durations: dict[int, float] = {}
    previous: datetime | None = None
    rows = _seen(facts)
    for step in steps:
        seen = _done_at(step, rows)
        if seen is None:
            continue
        if previous is not None:
            durations[step.position] = max((seen[0] - previous).total_seconds(), 0.0)
        previous = max(previous or started_at, seen[1])
    return durations


def percentile(values: Sequence[float], share: float = 0.9) -> float:
    """Nearest-rank percentile (p90 by default) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


def p90_step_durations(
    steps: Sequence[StepInfo], samples: Iterable[tuple[datetime, Mapping[str, Mapping[str, Any]]]]
) -> dict[int, float]:
    """Per step position, the p90 of how long the step took, over (started_at, step facts) of past transactions."""
    collected: dict[int, list[float]] = {}
    for started_at, facts in samples:
        for position, seconds in step_durations(steps, facts, started_at=started_at).items():
            collected.setdefault(position, []).append(seconds)
    return {position: percentile(values) for position, values in collected.items()}


def stop_step(steps: Sequence[StepInfo], stop: Matcher) -> StepInfo | None:
    """The process step the stop event belongs to (the first whose kinds overlap the stop matcher's)."""
    for step in steps:
        if _patterns_overlap(step.kind_pattern, stop.kind or "*") and _patterns_overlap(step.system, stop.system):
            return step
    return None


@dataclass(frozen=True)
class ForecastParts:
    """Which step the clock waits for; the p90 of that step and of the steps after it up to the stop event."""

    waiting_for_step: str
    since: datetime | None = None
    step_p90: float = 0.0
    after_p90: float = 0.0

    def as_data(self) -> dict | None:
        if self.since is None:
            return None
        return {"since": self.since.isoformat(), "step_p90": self.step_p90, "after_p90": self.after_p90}


def forecast_parts(
    steps: Sequence[StepInfo],
    p90: Mapping[int, float],
    facts: Mapping[str, Mapping[str, Any]],
    *,
    started_at: datetime,
    stop: Matcher,
) -> ForecastParts:
    """What the clock waits for and how long the rest should take (p90), from the process steps seen so far.

    Without a process step for the stop event there is nothing to forecast: the clock waits for the stop event itself.
    Steps without history count as zero, so that a new process is never reported at risk on no evidence.
    """
    last = stop_step(steps, stop)
    if last is None:
        return ForecastParts(waiting_for_step=stop.describe())
    previous = started_at
    ahead = [s for s in steps if s.position <= last.position]
    for index, step in enumerate(ahead):
        seen = _done_at(step, facts)
        if seen is not None and step.position != last.position:
            previous = max(previous, seen[1])
            continue
        if not step.required and step.position != last.position:
            continue
        rest = [s for s in ahead[index + 1 :] if s.required or s.position == last.position]
        known = [p90.get(s.position) for s in (step, *rest)]
        if all(value is None for value in known):
            return ForecastParts(waiting_for_step=step.name)
        return ForecastParts(
            waiting_for_step=step.name,
            since=previous,
            step_p90=p90.get(step.position) or 0.0,
            after_p90=sum(p90.get(s.position) or 0.0 for s in rest),
        )
    return ForecastParts(waiting_for_step=last.name)


def expected_finish(forecast: Mapping[str, Any] | None, *, now: datetime) -> datetime | None:
    """The step awaited finishes at its p90 after the previous one (not before now), then the rest take their p90."""
    if not forecast:
        return None
    since = datetime.fromisoformat(forecast["since"])
    step_done = max(now, since + timedelta(seconds=forecast["step_p90"]))
    return step_done + timedelta(seconds=forecast["after_p90"])


# ---- The clock ------------------------------------------------------------------------------------------------------


class BusinessTime(Protocol):
    """Business-time arithmetic of one calendar (see slas.calendars.CalendarClock)."""

    def elapsed_seconds(self, start: datetime, end: datetime) -> int: ...

    def deadline(self, start: datetime, seconds: int) -> datetime: ...


@dataclass
class ClockState:
    """A clock's stored state (the SlaClock columns evaluation owns)."""

    status: str
    started_at: datetime
    start_event_id: int
    entity: str = ""
    stop_event_id: int | None = None
    stopped_at: datetime | None = None
    pauses: list[dict] = field(default_factory=list)
    pause_event_id: int | None = None
    paused_since: datetime | None = None
    pause_reason: str = ""
    paused_seconds: int = 0
    elapsed_seconds: int = 0
    remaining_seconds: int = 0
    due_at: datetime | None = None
    waiting_for_step: str = ""
    forecast: dict | None = None
    expected_finish_at: datetime | None = None
    at_risk_reason: str = ""
    at_risk_at: datetime | None = None
    breached_at: datetime | None = None
    met_at: datetime | None = None

    @classmethod
    def started(cls, facts: ClockFacts) -> ClockState:
        return cls(
            status=ClockStatus.RUNNING,
            started_at=facts.start.occurred_at,
            start_event_id=facts.start.event_id,
            entity=facts.start.entity,
        )


EVALUATED_FIELDS = tuple(ClockState.__dataclass_fields__)


@dataclass(frozen=True)
class Target:
    """What a clock is measured against."""

    seconds: int
    at_risk_percent: int


@dataclass(frozen=True)
class CasePause:
    """An open case of a pausing category on the transaction, since its first occurrence there."""

    since: datetime
    reason: str


def _parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


def _merged_pauses(pauses: Iterable[dict], lo: datetime, hi: datetime) -> list[tuple[datetime, datetime, bool]]:
    """Pause intervals clipped to [lo, hi] and merged: (from, to, still open)."""
    spans = []
    for pause in pauses:
        start, end = _parse(pause["from"]), _parse(pause["to"])
        assert start is not None
        opened = end is None
        start, end = max(start, lo), min(end or hi, hi)
        if start < end or (opened and start <= hi):
            spans.append((start, end, opened))
    spans.sort()
    merged: list[list[Any]] = []
    for start, end, opened in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = merged[-1][2] or opened
        else:
            merged.append([start, end, opened])
    return [(s, e, o) for s, e, o in merged]


@dataclass(frozen=True)
class ClockTimes:
    """Business seconds used, left and paused at an instant; the start of the pause in force, if any."""

    elapsed: int
    remaining: int
    paused: int
    paused_since: datetime | None


def clock_times(state: ClockState, *, target: Target, business: BusinessTime, now: datetime) -> ClockTimes:
    """The clock's times at `now` from its stored start, stop and pauses (an open pause runs until now)."""
    end = state.stopped_at or now
    pauses = _merged_pauses(state.pauses, state.started_at, end) if state.pauses else []
    paused = sum(business.elapsed_seconds(s, e) for s, e, _ in pauses)
    open_pause = pauses[-1] if pauses and pauses[-1][2] and state.stopped_at is None else None
    elapsed = max(business.elapsed_seconds(state.started_at, end) - paused, 0)
    return ClockTimes(elapsed, target.seconds - elapsed, paused, open_pause[0] if open_pause else None)


def evaluate_clock(
    state: ClockState,
    *,
    target: Target,
    business: BusinessTime,
    now: datetime,
    facts: ClockFacts | None = None,
    case_pause: CasePause | None = None,
    forecast: ForecastParts | None = None,
) -> ClockState:
    """The clock's next state at `now`. `facts` and `forecast` are given when the transaction's events were read
    (after correlation); without them the stored start, stop, event pauses and forecast stand. `case_pause` is the
    open pausing case, if any (always given: cases change without events). A breach is final.

    Updates `state` in place and returns it (the minute pass evaluates 100,000 clocks: no copies); the pause list
    is replaced, never changed in place, so a caller keeping the old list can compare.
    """
    if facts is not None:
        state.started_at, state.start_event_id = facts.start.occurred_at, facts.start.event_id
        state.entity = facts.start.entity or state.entity
        state.stopped_at = facts.stop.occurred_at if facts.stop else None
        state.stop_event_id = facts.stop.event_id if facts.stop else None
        state.pauses = [p for p in state.pauses if p["source"] != PAUSE_SOURCE_EVENT] + [
            dict(p) for p in facts.event_pauses
        ]
        state.pause_event_id = next((p["event_id"] for p in facts.event_pauses if p["to"] is None), None)
    if forecast is not None:
        state.waiting_for_step, state.forecast = forecast.waiting_for_step, forecast.as_data()

    end = state.stopped_at or now
    _follow_case_pause(state, case_pause, end)
    times = clock_times(state, target=target, business=business, now=now)
    state.elapsed_seconds, state.remaining_seconds, state.paused_seconds = times.elapsed, times.remaining, times.paused
    state.paused_since = times.paused_since
    open_pause = times.paused_since is not None
    elapsed, paused = times.elapsed, times.paused
    state.pause_reason = "; ".join(sorted({p["reason"] for p in state.pauses if p["to"] is None})) if open_pause else ""
    # While paused the deadline is "if it resumed now"; otherwise the instant the target is used up.
    if open_pause:
        state.due_at = business.deadline(now, max(state.remaining_seconds, 0))
    else:
        state.due_at = business.deadline(state.started_at, target.seconds + paused)
    state.expected_finish_at = expected_finish(state.forecast, now=now) if state.stopped_at is None else None

    if state.stopped_at is not None:
        if state.status == ClockStatus.BREACHED or elapsed > target.seconds:
            state.status = ClockStatus.BREACHED
            state.breached_at = state.breached_at or state.due_at
        else:
            state.status, state.met_at = ClockStatus.MET, state.stopped_at
        state.at_risk_reason = ""
        return state
    if state.status == ClockStatus.BREACHED or state.remaining_seconds <= 0:
        state.status = ClockStatus.BREACHED
        state.breached_at = state.breached_at or min(state.due_at, now)
        state.at_risk_reason = ""
        return state
    state.at_risk_reason = _at_risk_reason(state, target)
    if state.at_risk_reason:
        state.at_risk_at = state.at_risk_at or now
    if open_pause:
        state.status = ClockStatus.PAUSED
    else:
        state.status = ClockStatus.AT_RISK if state.at_risk_reason else ClockStatus.RUNNING
    return state


def _follow_case_pause(state: ClockState, case_pause: CasePause | None, end: datetime) -> None:
    """Open a case pause when a pausing case appears; close it (at `end`) when no pausing case is open any more."""
    if not state.pauses and case_pause is None:
        return
    open_case = next((p for p in state.pauses if p["source"] == PAUSE_SOURCE_CASE and p["to"] is None), None)
    if case_pause is not None and open_case is None and state.stopped_at is None:
        closed = [_parse(p["to"]) for p in state.pauses if p["source"] == PAUSE_SOURCE_CASE]
        since = max([case_pause.since, state.started_at, *(c for c in closed if c is not None)])
        pause = _pause(min(since, end), None, case_pause.reason, None, source=PAUSE_SOURCE_CASE)
        state.pauses = [*state.pauses, pause]
    elif open_case is not None and (case_pause is None or state.stopped_at is not None):
        closed_at = max(end, _parse(open_case["from"]) or end).isoformat()
        state.pauses = [{**p, "to": closed_at} if p is open_case else p for p in state.pauses]


def _at_risk_reason(state: ClockState, target: Target) -> str:
    used = state.elapsed_seconds / target.seconds
    if used * 100 >= target.at_risk_percent:
        return f"{used:.0%} of the target used (at risk from {target.at_risk_percent}%)"
    if state.expected_finish_at and state.due_at and state.expected_finish_at > state.due_at:
        late = state.expected_finish_at - state.due_at
        return (
            f"waiting for {state.waiting_for_step}: the usual (p90) pace finishes {_duration(late)} after the deadline"
        )
    return ""


def duration_text(seconds: float) -> str:
    """A duration as people read it: 45 min, 3 h 05 min, 4 d 2 h."""
    return _duration(timedelta(seconds=seconds))


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"
