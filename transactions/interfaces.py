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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

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


def bounded_samples(samples: Sequence[int], limit: int) -> list[int]:
    """At most `limit` values that keep the distribution's shape: evenly spaced order statistics of the sorted list."""
    ordered = sorted(samples)
    if len(ordered) <= limit:
        return ordered
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(i * step)] for i in range(limit)]


def weighted_percentile(days: Iterable[tuple[int, Sequence[int]]], p: float) -> float | None:
    """A percentile over several days from their bounded samples, each sample weighted by its day's volume.

    Exact (the same figure as `percentile` of every hop) while no day had more hops than its sample keeps; past that,
    the nearest weighted rank, within one sample step of the exact figure.
    """
    return weighted_percentiles(days, (p,))[0]


def weighted_percentiles(days: Iterable[tuple[int, Sequence[int]]], ps: Sequence[float]) -> list[float | None]:
    """`weighted_percentile` for several percentiles at once: the samples are sorted once (a year of an interface's
    days is hundreds of thousands of them, and the sort is most of a long range's cost)."""
    days = list(days)
    if all(volume == len(samples) for volume, samples in days):
        ordered = sorted(s for _, samples in days for s in samples)
        return [_ranked(ordered, p) for p in ps]
    points: list[tuple[float, float]] = []
    for volume, samples in days:
        if samples:
            weight = volume / len(samples)
            points += [(float(s), weight) for s in samples]
    if not points:
        return [None for _ in ps]
    points.sort()
    total = sum(w for _, w in points)
    found: list[float | None] = []
    for p in ps:
        target = total * p / 100.0
        running = 0.0
        value = points[-1][0]
        for point, weight in points:
            running += weight
            if running >= target:
                value = point
                break
        found.append(value)
    return found
