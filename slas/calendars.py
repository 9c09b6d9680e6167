"""Business-time arithmetic on a plain calendar: no ORM, testable against a brute-force count.

Working hours are local wall-clock times in the calendar's time zone. An instant is working time when its local
date is a working day that is not a holiday and its local time lies in one of that weekday's intervals. That single
definition decides every DST case: on the day clocks go forward an 08:00-18:00 day has 10 real hours unless the gap
falls inside the interval (then 9); a repeated hour inside an interval counts twice in real time.

The work is done on sorted UTC ranges (integer epoch seconds) with prefix sums, so that once a `BusinessTimeline`
covers a period, elapsed time and deadlines cost one binary search each: the evaluation pass over 100,000 clocks
builds one timeline per calendar and never walks days per clock.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 86400
# Every real UTC offset lies within +-14 h; a local date's instants lie within these bounds of its UTC midnight.
MAX_OFFSET = 14 * 3600
# How far `business_add` looks for working time before it gives up (a calendar whose holidays cover everything).
MAX_HORIZON_DAYS = 366 * 5
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

Interval = tuple[int, int]  # minutes from local midnight, end exclusive (1440 = 24:00)


class CalendarError(ValueError):
    """A calendar definition that cannot be used (no working time, overlapping intervals, unknown time zone...)."""


@dataclass(frozen=True)
class WorkCalendar:
    """A business calendar as plain data: time zone, intervals per weekday (Monday first), holiday dates."""

    time_zone: str
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        _zone(self.time_zone)
        if len(self.weekly) != 7:
            raise CalendarError("working hours need an entry for each of the 7 weekdays")
        if not any(self.weekly):
            raise CalendarError("a calendar needs at least one working interval")

    @classmethod
    def from_data(
        cls, *, time_zone: str, working_hours: Mapping[str, Sequence[Sequence[str]]], holidays: Iterable[date] = ()
    ) -> WorkCalendar:
        """Build from the stored form: {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], ...}."""
        return cls(time_zone=time_zone, weekly=parse_working_hours(working_hours), holidays=frozenset(holidays))


def _minutes(text: object, *, where: str) -> int:
    match = _HHMM.match(text) if isinstance(text, str) else None
    if match is None:
        raise CalendarError(f"{where}: {text!r} is not a time of day in HH:MM form")
    value = int(match[1]) * 60 + int(match[2])
    if value > 1440:
        raise CalendarError(f"{where}: {text} is past 24:00")
    return value


def parse_working_hours(data: Mapping[str, Sequence[Sequence[str]]]) -> tuple[tuple[Interval, ...], ...]:
    """Validate working hours keyed by weekday ("mon".."sun"); each a list of ["HH:MM", "HH:MM"] intervals.

    Raises CalendarError naming the weekday and interval at fault: unknown day, bad time, start not before end,
    overlapping intervals, or no working interval at all.
    """
    if not isinstance(data, Mapping):
        raise CalendarError("working hours must map weekdays (mon..sun) to lists of [start, end] intervals")
    unknown = sorted(set(data) - set(WEEKDAY_KEYS))
    if unknown:
        raise CalendarError(f"unknown weekday(s) {', '.join(map(str, unknown))}; use {', '.join(WEEKDAY_KEYS)}")
    weekly: list[tuple[Interval, ...]] = []
    for key in WEEKDAY_KEYS:
        raw = data.get(key) or []
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise CalendarError(f"{key}: expected a list of [start, end] intervals")
        intervals: list[Interval] = []
        for item in raw:
            if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
                raise CalendarError(f"{key}: {item!r} is not a [start, end] pair")
            start, end = _minutes(item[0], where=key), _minutes(item[1], where=key)
            if start >= end:
                raise CalendarError(f"{key}: interval {item[0]}-{item[1]} must start before it ends")
            intervals.append((start, end))
        intervals.sort()
        for (s1, e1), (s2, e2) in pairwise(intervals):
            if s2 < e1:
                raise CalendarError(f"{key}: intervals {_hhmm(s1)}-{_hhmm(e1)} and {_hhmm(s2)}-{_hhmm(e2)} overlap")
        weekly.append(tuple(intervals))
    if not any(weekly):
        raise CalendarError("a calendar needs at least one working interval")
    return tuple(weekly)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_working_hours(weekly: Sequence[Sequence[Interval]]) -> dict[str, list[list[str]]]:
    """The stored form of parsed working hours (the inverse of parse_working_hours)."""
    return {
        key: [[_hhmm(s), _hhmm(e)] for s, e in intervals]
        for key, intervals in zip(WEEKDAY_KEYS, weekly, strict=True)
        if intervals
    }


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone {name!r}") from exc


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("business-time arithmetic needs aware datetimes")
    return int(moment.timestamp())


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _offset_at(zone: ZoneInfo, seconds: int) -> int:
    offset = _from_epoch(seconds).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _constant_offset_segments(zone: ZoneInfo, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """[(from, to, utc offset)] covering [lo, hi); a change of offset is found by bisection to the second.

    Real zones change offset at most once in the ~52 hours a local day can touch, so one split is enough.
    """
    first, last = _offset_at(zone, lo), _offset_at(zone, hi - 1)
    if first == last:
        return [(lo, hi, first)]
    left, right = lo, hi - 1  # offset(left) == first, offset(right) != first
    while right - left > 1:
        middle = (left + right) // 2
        if _offset_at(zone, middle) == first:
            left = middle
        else:
            right = middle
    return [(lo, right, first), (right, hi, last)]


def _day_ranges(cal: WorkCalendar, day: date) -> list[tuple[int, int]]:
    """The UTC ranges (epoch seconds) of one local date's working time."""
    intervals = cal.weekly[day.weekday()]
    if not intervals or day in cal.holidays:
        return []
    zone = _zone(cal.time_zone)
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())  # the local date's naive midnight
    ranges = []
    for seg_lo, seg_hi, offset in _constant_offset_segments(zone, midnight - MAX_OFFSET, midnight + DAY + MAX_OFFSET):
        for start, end in intervals:
            lo = max(midnight + start * 60 - offset, seg_lo)
            hi = min(midnight + end * 60 - offset, seg_hi)
            if lo < hi:
                ranges.append((lo, hi))
    return ranges


def working_ranges(cal: WorkCalendar, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The working time between two instants as sorted, disjoint UTC ranges."""
    timeline = BusinessTimeline(cal, start, end)
    lo, hi = _epoch(start), _epoch(end)
    return [
        (_from_epoch(max(a, lo)), _from_epoch(min(b, hi)))
        for a, b in zip(timeline.starts, timeline.ends, strict=True)
        if a < hi and b > lo
    ]


class BusinessTimeline:
    """The working ranges of one calendar over a period, with prefix sums: elapsed time and deadlines by bisection.

    Build one per calendar for a whole evaluation pass; queries outside the covered period raise ValueError
    (elapsed) or return None (add) so that callers widen the period instead of getting a silently wrong answer.
    """

    def __init__(self, cal: WorkCalendar, start: datetime, end: datetime) -> None:
        self.calendar = cal
        self.lo, self.hi = _epoch(start), _epoch(end)
        if self.hi < self.lo:
            raise ValueError("a timeline's end must not be before its start")
        zone = _zone(cal.time_zone)
        first = _from_epoch(self.lo).astimezone(zone).date() - timedelta(days=1)
        last = _from_epoch(self.hi).astimezone(zone).date() + timedelta(days=1)
        ranges: list[tuple[int, int]] = []
        day = first
        while day <= last:
            ranges.extend(_day_ranges(cal, day))
            day += timedelta(days=1)
        ranges.sort()
        # Touching ranges (00:00-24:00 on consecutive days) are merged, so that bisection needs no special case.
        merged: list[list[int]] = []
        for a, b in ranges:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.starts = [a for a, _ in merged]
        self.ends = [b for _, b in merged]
        # cumulative[i] = working seconds in ranges before range i.
        self.cumulative = [0, *accumulate(b - a for a, b in merged)]

    def _covers(self, seconds: int) -> bool:
        return self.lo <= seconds <= self.hi

    def _worked_before(self, seconds: int) -> int:
        """Working seconds from the first range up to `seconds`."""
        i = bisect.bisect_right(self.starts, seconds) - 1
        if i < 0:
            return 0
        return self.cumulative[i] + min(seconds, self.ends[i]) - self.starts[i]

    def elapsed_seconds(self, start: float, end: float) -> int:
        """Working seconds in [start, end) (epoch seconds); 0 when end <= start."""
        lo, hi = int(start), int(end)
        if not (self._covers(lo) and self._covers(hi)):
            raise ValueError("instant outside the timeline's period")
        if hi <= lo:
            return 0
        return self._worked_before(hi) - self._worked_before(lo)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        return timedelta(seconds=self.elapsed_seconds(_epoch(start), _epoch(end)))

    def add_seconds(self, start: float, seconds: int) -> int | None:
        """The earliest instant t >= start with `seconds` of working time in [start, t); None past the period."""
        lo = int(start)
        if not self._covers(lo):
            raise ValueError("instant outside the timeline's period")
        if seconds <= 0:
            return lo
        target = self._worked_before(lo) + seconds
        # The first range whose cumulative end reaches the target holds the deadline.
        i = bisect.bisect_left(self.cumulative, target, lo=1) - 1
        if i >= len(self.starts):
            return None
        moment = self.starts[i] + (target - self.cumulative[i])
        return moment if moment <= self.hi else None

    def add(self, start: datetime, duration: timedelta) -> datetime | None:
        moment = self.add_seconds(_epoch(start), int(duration.total_seconds()))
        return None if moment is None else _from_epoch(moment)


class CalendarClock:
    """Business-time arithmetic of one calendar for many questions: a timeline that grows as questions need it.

    The evaluation pass asks it for every clock of the calendar; after the first few questions the timeline covers
    them all and each answer is a binary search.
    """

    PAD = 7 * DAY

    def __init__(self, cal: WorkCalendar, *, start: datetime | None = None, end: datetime | None = None) -> None:
        self.calendar = cal
        self._timeline: BusinessTimeline | None = None
        if start is not None and end is not None:
            self._cover(_epoch(start), _epoch(end))

    def _cover(self, lo: int, hi: int) -> BusinessTimeline:
        current = self._timeline
        if current is not None and current.lo <= lo and hi <= current.hi:
            return current
        if current is not None:
            # Grow by at least the current span, so that a pass asking ever later questions rebuilds O(log n) times.
            span = current.hi - current.lo
            lo = min(lo, current.lo - (span if lo < current.lo else 0))
            hi = max(hi, current.hi + (span if hi > current.hi else 0))
        self._timeline = BusinessTimeline(self.calendar, _from_epoch(lo - self.PAD), _from_epoch(hi + self.PAD))
        return self._timeline

    def elapsed_seconds(self, start: datetime, end: datetime) -> int:
        lo, hi = _epoch(start), _epoch(end)
        if hi <= lo:
            return 0
        return self._cover(lo, hi).elapsed_seconds(lo, hi)

    def deadline(self, start: datetime, seconds: int) -> datetime:
        """The earliest instant with `seconds` of working time since `start` (see business_add)."""
        lo = _epoch(start)
        hi = lo + max(seconds * 3, 14 * DAY)
        while True:
            timeline = self._cover(lo, hi)
            moment = timeline.add_seconds(lo, seconds)
            if moment is not None:
                return _from_epoch(moment)
            if timeline.hi - lo > MAX_HORIZON_DAYS * DAY:
                raise CalendarError("the calendar has no working time left in the next five years")
            hi = timeline.hi + (timeline.hi - lo)


def business_elapsed(cal: WorkCalendar, start: datetime, end: datetime) -> timedelta:
    """Working time between two aware instants (zero when end is not after start), to the second."""
    if end <= start:
        return timedelta(0)
    return BusinessTimeline(cal, start, end).elapsed(start, end)


def business_add(cal: WorkCalendar, start: datetime, duration: timedelta) -> datetime:
    """The deadline: the earliest instant by which `duration` of working time has passed since `start` (UTC).

    Raises CalendarError when the calendar has no working time in the next five years (holidays cover it all).
    """
    needed = int(duration.total_seconds())
    if needed <= 0:
        return start.astimezone(UTC)
    return CalendarClock(cal).deadline(start, needed)


__all__ = [
    "WEEKDAY_KEYS",
    "BusinessTimeline",
    "CalendarClock",
    "CalendarError",
    "WorkCalendar",
    "business_add",
    "business_elapsed",
    "format_working_hours",
    "parse_working_hours",
    "working_ranges",
]
