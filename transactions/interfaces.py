"""Discovery of interfaces from one transaction's events: pure logic, plain data in and out, no ORM.

An interface is a (source system, target system) pair; a hop is one hand-over along it inside a transaction. Hops come
from three kinds of evidence, strongest first:

- span links (an OpenTelemetry "follows from": a consumer linking the producer's span, typical of async hand-overs);
- span parent/child across systems (a synchronous call: the client span is the server span's parent);
- consecutive steps in time order where the system changes (what is left when the sources send no trace context).

A step is a run of consecutive events of one system. When the first event of a step names its cause (a link or a
parent in another system of the same transaction), that cause replaces the time-order guess for the step.
"""

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate, pairwise
from operator import add

SEQUENCE, SPAN, LINK = "sequence", "span", "link"

# What a source declares about the way it hands data over, by OpenTelemetry semantic-convention attribute names:
# `finance.channel` is ours (api, event, batch, file); the others are the OTel registry's messaging, HTTP/RPC and
# file attributes (old and new HTTP names, since SDKs of both generations are in the field).
DECLARED_CHANNEL = "finance.channel"
CHANNEL_HINTS: tuple[tuple[str, str], ...] = (
    ("messaging.system", "event"),
    ("messaging.destination.name", "event"),
    ("http.request.method", "api"),
    ("http.method", "api"),
    ("rpc.system", "api"),
    ("file.path", "file"),
    ("file.name", "file"),
)


@dataclass(frozen=True)
class StepEvent:
    """What discovery needs of one stored event."""

    event_id: int
    occurred_at: datetime
    received_at: datetime
    system: str
    kind: str
    status: str
    duration_ms: int | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    links: Sequence[dict] = ()
    channel: str = ""
    attributes: dict = field(default_factory=dict)

    @property
    def ended_at(self) -> datetime:
        return self.occurred_at + timedelta(milliseconds=max(0, self.duration_ms or 0))


@dataclass(frozen=True)
class Hop:
    """One hand-over from `source` to `target` inside a transaction, dated by the target's start."""

    source: str
    target: str
    at: datetime
    latency_ms: int
    error: bool
    kind: str
    channel: str
    via: str
    late: bool
    duplicate: bool
    target_event_id: int


def event_channel(event: StepEvent) -> str:
    """The hand-over style an event declares (api, event, batch, file), or "" if it declares none."""
    attributes = event.attributes or {}
    declared = attributes.get(DECLARED_CHANNEL)
    if isinstance(declared, str) and declared.strip():
        return declared.strip().lower()[:20]
    for name, channel in CHANNEL_HINTS:
        if attributes.get(name) not in (None, ""):
            return channel
    return ""


def hop_channel(source: StepEvent, target: StepEvent) -> str:
    """The source's declaration first (it knows how it sends), then the target's, then the ingest channel."""
    return event_channel(source) or event_channel(target) or target.channel


def _ms(delta: timedelta) -> int:
    # Clocks of different systems disagree by a little; a negative gap means "at once", not a time machine.
    return max(0, math.floor(delta.total_seconds() * 1000))


def _steps(events: list[StepEvent]) -> list[list[StepEvent]]:
    steps: list[list[StepEvent]] = []
    for event in events:
        if steps and steps[-1][-1].system == event.system:
            steps[-1].append(event)
        else:
            steps.append([event])
    return steps


def _is_late(event: StepEvent, late_after: timedelta) -> bool:
    return event.received_at - event.occurred_at > late_after


def discover_hops(events: Iterable[StepEvent], *, late_after: timedelta) -> list[Hop]:
    """The hops of one transaction, in time order; a repeated (source, target, kind) is flagged as a duplicate."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    by_span = {(e.trace_id, e.span_id): e for e in ordered if e.trace_id and e.span_id}
    found: list[tuple[StepEvent, StepEvent, str, int]] = []  # cause, target event, via, latency
    caused: set[int] = set()
    for event in ordered:
        causes: list[tuple[StepEvent, str]] = []
        for link in event.links or ():
            if isinstance(link, dict):
                cause = by_span.get((link.get("trace_id"), link.get("span_id")))
                if cause is not None and cause.system != event.system:
                    causes.append((cause, LINK))
        if event.parent_span_id:
            parent = by_span.get((event.trace_id, event.parent_span_id))
            if parent is not None and parent.system != event.system:
                causes.append((parent, SPAN))
        for cause, via in causes:
            # A call (parent/child) starts inside its parent, so its latency runs from the parent's start; a link is a
            # hand-over after the producer finished, so from the producer's end.
            origin = cause.occurred_at if via == SPAN else cause.ended_at
            found.append((cause, event, via, _ms(event.occurred_at - origin)))
        if causes:
            caused.add(event.event_id)
    steps = _steps(ordered)
    for before, after in pairwise(steps):
        first = after[0]
        if first.event_id in caused:
            continue
        step_end = max(e.ended_at for e in before)
        found.append((before[-1], first, SEQUENCE, _ms(first.occurred_at - step_end)))

    found.sort(key=lambda f: (f[1].occurred_at, f[1].event_id, f[0].system))
    step_of = {e.event_id: i for i, step in enumerate(steps) for e in step}
    failed_steps = {step_of[e.event_id] for e in ordered if e.status == "error"}
    seen: set[tuple[str, str, str]] = set()
    hops = []
    for cause, target, via, latency in found:
        key = (cause.system, target.system, target.kind)
        hops.append(
            Hop(
                source=cause.system,
                target=target.system,
                at=target.occurred_at,
                latency_ms=latency,
                # The hand-over failed if the receiving step reported an error (a rejected message, a failed call).
                error=target.status == "error" or (via == SEQUENCE and step_of[target.event_id] in failed_steps),
                kind=target.kind,
                channel=hop_channel(cause, target),
                via=via,
                late=_is_late(target, late_after),
                duplicate=key in seen,
                target_event_id=target.event_id,
            )
        )
        seen.add(key)
    return hops


def percentile(samples: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100), linear between closest ranks (numpy's default, as the SLA dashboards use)."""
    return _ranked(sorted(samples), p)


def _ranked(ordered: Sequence[float], p: float) -> float | None:
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# Hop latency histograms: fixed logarithmic buckets (the DDSketch layout), so that a range's histogram is the sum of
# its days' or months' histograms, whatever their sizes, and a percentile read from it is within LATENCY_ERROR (1%)
# of the exact figure of every hop, relative to that figure. Bucket 0 holds 0 ms exactly; bucket b >= 1 holds
# (GAMMA**(b-2), GAMMA**(b-1)] ms and reads as the value whose relative distance to both ends is LATENCY_ERROR. A year
# of an interface (1 ms to days) fits in about 1,100 buckets; one with API and file hand-overs uses a few hundred.
# Changing LATENCY_ERROR changes the buckets: rebuild the rollups (`rebuild_interface_map`) after.
#
# Stored (JSON) as [first bucket, hops in it, hops in the next, ...] up to the last non-empty bucket, [] for none:
# dense, because a month fills most buckets between its fastest and slowest hop, and a dense list is added into a
# running total slice by slice (map(add), no Python loop per bucket), which is most of a long range's cost.
LATENCY_ERROR = 0.01
_GAMMA = (1 + LATENCY_ERROR) / (1 - LATENCY_ERROR)
_LOG_GAMMA = math.log(_GAMMA)


def latency_bucket(ms: int) -> int:
    """The histogram bucket of a hop latency in ms."""
    if ms <= 0:
        return 0
    k = math.ceil(math.log(ms) / _LOG_GAMMA)
    # Floating point may put a value that is a bucket's exact upper end one bucket off; the bounds decide.
    if _GAMMA ** (k - 1) >= ms:
        k -= 1
    elif _GAMMA**k < ms:
        k += 1
    return k + 1


def bucket_value(bucket: int) -> float:
    """The latency (ms) a bucket reads as: within LATENCY_ERROR of every value the bucket holds."""
    if bucket <= 0:
        return 0.0
    return 2 * _GAMMA ** (bucket - 1) / (_GAMMA + 1)


def histogram_add(total: list[int], histogram: Sequence[int] | None) -> None:
    """Add a stored histogram into a running total (hops per bucket, indexed from bucket 0, grown as needed)."""
    if not histogram:
        return
    start, end = histogram[0], histogram[0] + len(histogram) - 1
    if len(total) < end:
        total.extend([0] * (end - len(total)))
    total[start:end] = map(add, total[start:end], histogram[1:])


def histogram_stored(total: Sequence[int]) -> list[int]:
    """A running total in the stored form."""
    used = [b for b, hops in enumerate(total) if hops]
    return [used[0], *total[used[0] : used[-1] + 1]] if used else []


def latency_histogram(latencies: Iterable[int]) -> list[int]:
    """The stored histogram of some hop latencies."""
    total: list[int] = []
    for ms in latencies:
        bucket = latency_bucket(ms)
        if len(total) <= bucket:
            total.extend([0] * (bucket + 1 - len(total)))
        total[bucket] += 1
    return histogram_stored(total)


def histogram_merge(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    """The sum of several stored histograms, stored."""
    total: list[int] = []
    for histogram in histograms:
        histogram_add(total, histogram)
    return histogram_stored(total)


def histogram_percentiles(total: Sequence[int], ps: Sequence[float]) -> list[float | None]:
    """Percentiles (0-100) of the hops a running total counts, ranked as `percentile` ranks them (linear between the
    closest ranks), each order statistic read as its bucket's value: within LATENCY_ERROR of `percentile` of the hops.
    """
    running = list(accumulate(total))
    hops = running[-1] if running else 0
    if not hops:
        return [None for _ in ps]
    found: list[float | None] = []
    for p in ps:
        rank = (hops - 1) * p / 100.0
        low, high = math.floor(rank), math.ceil(rank)
        # The order statistic r (0-based) lies in the first bucket whose running count exceeds r.
        below, above = bucket_value(bisect_right(running, low)), bucket_value(bisect_right(running, high))
        found.append(below + (above - below) * (rank - low))
    return found


def month_last_day(month: date) -> date:
    """The last day of the calendar month that `month` falls in."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def whole_months(first: date, last: date) -> list[date]:
    """The first days of the calendar months lying wholly inside first..last (both included), in order: a range's
    figures are those months' rows plus the daily rows of the days before and after them."""
    month = first if first.day == 1 else month_last_day(first) + timedelta(days=1)
    months = []
    while month_last_day(month) <= last:
        months.append(month)
        month = month_last_day(month) + timedelta(days=1)
    return months
