"""Dashboard KPI arithmetic without the database: plain rollup rows in, plain figures out.

Rollup rows arrive as dicts with the `DailyRollup` measures (`count`, `good`, `bad`, `total_seconds`, `samples`) and
whatever dimensions the caller grouped by. Every function states what it returns for an empty period (None, never a
division by zero), because an empty week is normal on a new installation.
"""

import math
from collections.abc import Hashable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from transactions.correlation import StepSpec

Row = Mapping[str, object]

# The time-to-complete histogram shows elapsed business time as a share of the target, in 10 % buckets to 200 %.
RATIO_BUCKETS = 20

# Milestone KPIs: (metric, from step, to step) by process step name; the later step's first success decides the day.
MILESTONES: tuple[tuple[str, str, str], ...] = (
    ("invoice_cycle", "Contract approved", "Invoice posted"),
    ("payment_sync", "Payment received", "Payment applied in ERP"),
    ("dso", "Invoice posted", "Payment received"),
    ("evidence", "Invoice posted", "Evidence captured"),
)
MILESTONE_STEPS = frozenset(name for _, a, b in MILESTONES for name in (a, b))

# key -> (label, default value, unit, what the figure counts): the defaults a fresh installation computes with.
ROI_DEFAULTS: dict[str, tuple[str, Decimal, str, str]] = {
    "minutes_per_correlation": (
        "Minutes to reconcile a transaction by hand",
        Decimal("15"),
        "minutes",
        "each transaction joined across two or more systems automatically",
    ),
    "minutes_per_classification": (
        "Minutes to classify an exception by hand",
        Decimal("10"),
        "minutes",
        "each failure a taxonomy rule classified automatically",
    ),
    "minutes_per_reconciliation": (
        "Minutes to reconcile a transaction's facts by hand",
        Decimal("12"),
        "minutes",
        "each transaction whose facts every reconciliation rule found in agreement (amounts, tax codes, entities, "
        "no duplicate invoice), which nobody had to compare system by system",
    ),
    "evidence_window_hours": (
        "Evidence window after posting",
        Decimal("24"),
        "hours",
        "evidence captured within this time after the invoice posting counts as complete",
    ),
}


# ---- Days and periods ----------------------------------------------------------------------------------------------


def local_day(instant: datetime, time_zone: str) -> date:
    """The calendar day `instant` falls on in `time_zone` (what a manager in that zone calls "that day")."""
    return instant.astimezone(ZoneInfo(time_zone)).date()


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of a local day: 23 or 25 hours long on a DST change."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_bounds(first: date, last: date, time_zone: str) -> tuple[datetime, datetime]:
    """UTC bounds of the local days first..last (both included)."""
    return day_bounds(first, time_zone)[0], day_bounds(last, time_zone)[1]


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def previous_month(day: date) -> date:
    """The first day of the month before `day`'s."""
    return month_start(month_start(day) - timedelta(days=1))


# ---- Aggregation ----------------------------------------------------------------------------------------------------


def share(part: int, whole: int) -> float | None:
    """part / whole as a percentage, None for an empty whole."""
    return None if whole <= 0 else 100.0 * part / whole


def attainment(met: int, breached: int) -> float | None:
    """SLA attainment: met clocks / closed clocks, %."""
    return share(met, met + breached)


def touchless_rate(completed: int, without_case: int) -> float | None:
    """Completed transactions without any case / completed transactions, %."""
    return share(without_case, completed)


def success_rate(succeeded: int, failed: int) -> float | None:
    """Replays that succeeded / replays that finished, %."""
    return share(succeeded, succeeded + failed)


def mean(samples: list[float]) -> float | None:
    return sum(samples) / len(samples) if samples else None


def percentile(samples: list[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation between closest ranks (numpy's default), None if empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def within_share(samples: list[float], limit: float) -> float | None:
    """Share of samples at or under `limit`, %, None if empty (e.g. evidence captured within its window)."""
    return share(sum(1 for s in samples if s <= limit), len(samples))


def hours_avoided(
    auto_correlated: int, auto_classified: int, *, minutes_per_correlation: Decimal, minutes_per_classification: Decimal
) -> Decimal:
    """Manual reconciliation hours avoided: items done automatically times the minutes a person would have spent."""
    minutes = auto_correlated * minutes_per_correlation + auto_classified * minutes_per_classification
    return (minutes / Decimal(60)).quantize(Decimal("0.1"))


def reconciliation_hours_avoided(reconciled: int, *, minutes_per_reconciliation: Decimal) -> Decimal:
    """Manual reconciliation avoided: transactions reconciled automatically times the minutes a person would spend."""
    return (reconciled * minutes_per_reconciliation / Decimal(60)).quantize(Decimal("0.1"))


def ratio_bucket(seconds: int, target_seconds: int) -> int:
    """The 10 %-of-target bucket of a duration, in integers so that a database range selects exactly the same rows."""
    return min(seconds * RATIO_BUCKETS // (2 * target_seconds), RATIO_BUCKETS) if target_seconds > 0 else 0


def ratio_bucket_range(index: int, target_seconds: int) -> tuple[int, int | None]:
    """Seconds [low, high) of a bucket (high None for the open last one): the inverse of `ratio_bucket`."""
    low = -(-index * 2 * target_seconds // RATIO_BUCKETS)  # ceiling division
    if index >= RATIO_BUCKETS:
        return low, None
    return low, -(-(index + 1) * 2 * target_seconds // RATIO_BUCKETS)


def ratio_histogram(samples: list[int], target_seconds: int) -> list[int]:
    """Counts of durations per 10 % of the target, the last bucket holding everything from 200 % on."""
    counts = [0] * (RATIO_BUCKETS + 1)
    if target_seconds <= 0:
        counts[0] = len(samples)
        return counts
    # `ratio_bucket` inlined: a quarter of samples is tens of thousands of durations.
    width = 2 * target_seconds
    for bucket in (min(int(s) * RATIO_BUCKETS // width, RATIO_BUCKETS) for s in samples):
        counts[bucket] += 1
    return counts


def contributions(counts: Mapping[Hashable, int], *, limit: int = 10) -> list[tuple[Hashable, int, float]]:
    """The largest contributors to a total: (key, count, share of the total %), biggest first, ties by key."""
    total = sum(counts.values())
    ranked = sorted(((k, n) for k, n in counts.items() if n > 0), key=lambda kn: (-kn[1], str(kn[0])))[:limit]
    return [(k, n, 100.0 * n / total) for k, n in ranked]


def period_change(current: float | None, previous: float | None) -> float | None:
    """Points of difference between this period and the previous one (None when either is empty)."""
    if current is None or previous is None:
        return None
    return current - previous


# ---- Milestones and breach attribution ------------------------------------------------------------------------------


def step_first_success(step: StepSpec, facts: Mapping[str, Mapping]) -> datetime | None:
    """When a process step first succeeded, from a transaction's per-(system, kind) facts."""
    found = [
        datetime.fromisoformat(fact["first_at"])
        for key, fact in facts.items()
        if fact.get("status") == "ok" and step.matches(*key.partition("|")[::2])
    ]
    return min(found) if found else None


def milestone_spans(
    steps: Mapping[str, StepSpec], facts: Mapping[str, Mapping]
) -> dict[str, tuple[datetime, datetime]]:
    """metric -> (from, to) for each milestone pair this transaction has reached in order."""
    spans = {}
    for metric, first, second in MILESTONES:
        if first in steps and second in steps:
            began, ended = step_first_success(steps[first], facts), step_first_success(steps[second], facts)
            if began is not None and ended is not None and ended >= began:
                spans[metric] = (began, ended)
    return spans


def breach_system(step_system: str, txn_systems: list[str] | None) -> str:
    """Who a breach is charged to: the awaited step's system, else the last system the transaction was seen in."""
    return step_system or (txn_systems[-1] if txn_systems else "")
