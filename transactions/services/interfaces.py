"""Interface discovery and its daily rollups: the database side of `transactions.interfaces`.

After each correlated batch the touched transactions' hops are derived again and replaced (work proportional to the
batch), and the local days whose hops changed are marked dirty. The periodic refresh rebuilds each dirty day whole
from its hops, so running it twice, or while a day is still filling, never double counts, and then the day's month
from the month's daily rows (long ranges read months: a year is a dozen rows per interface, not 366).
`rebuild_interface_map` re-derives everything in a range (a new installation, or after the discovery rules change).

Correlation marks each transaction it changes (`hops_stale_since`); deriving its hops clears the mark, so the
periodic sweep derives only what a lost discovery task left, longest owed first.
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from console.lib.bulk import values_copy, values_rows
from console.lib.locks import advisory_lock_keys
from transactions.choices import TransactionStatus
from transactions.interfaces import (
    Hop,
    StepEvent,
    discover_hops,
    histogram_add,
    histogram_stored,
    latency_histogram,
    month_last_day,
    percentile,
)
from transactions.models import (
    Event,
    Interface,
    InterfaceDaily,
    InterfaceDirtyDay,
    InterfaceHop,
    InterfaceMonthly,
    System,
    Transaction,
    TransactionEvent,
)

logger = logging.getLogger(__name__)

CHUNK = 1000
# What a hop row holds, in the order interface_hops_refresh builds its values.
HOP_FIELDS = (
    "interface_id",
    "txn_id",
    "day",
    "at",
    "latency_ms",
    "error",
    "duplicate",
    "late",
    "kind",
    "channel",
    "via",
)
# Namespace of the advisory locks that serialise the rebuilds of one month's rows (console.lib.locks).
MONTH_LOCK_NAMESPACE = 16_002


def local_day(instant: datetime) -> date:
    return instant.astimezone(ZoneInfo(settings.DASHBOARD_TIME_ZONE)).date()


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of the local days first..last."""
    zone = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _step_events(txn_ids: list[int]) -> dict[int, list[StepEvent]]:
    members = values_rows(
        TransactionEvent.objects.filter(txn_id__in=txn_ids).values_list("txn_id", "event_id", "event_received_at")
    )
    txn_of = {event_id: txn_id for txn_id, event_id, _ in members}
    received = {event_id: at for _, event_id, at in members}
    by_txn: dict[int, list[StepEvent]] = defaultdict(list)
    ids = sorted(txn_of)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        times = [received[i] for i in chunk]
        # The receive-time bounds let PostgreSQL skip the event partitions this chunk has nothing in.
        events = Event.objects.filter(id__in=chunk, received_at__gte=min(times), received_at__lte=max(times))
        rows = events.values_list(
            "id",
            "occurred_at",
            "received_at",
            "system",
            "kind",
            "status",
            "duration_ms",
            "trace_id",
            "span_id",
            "parent_span_id",
            "links",
            "channel",
            "attributes",
        )
        for row in values_rows(rows):
            event = StepEvent(*row[:10], links=row[10] or (), channel=row[11], attributes=row[12] or {})
            by_txn[txn_of[row[0]]].append(event)
    return by_txn


def _systems(names: set[str], seen: dict[str, tuple[datetime, datetime]]) -> dict[str, int]:
    System.objects.bulk_create(
        [System(name=n, first_seen_at=seen[n][0], last_seen_at=seen[n][1]) for n in sorted(names)],
        ignore_conflicts=True,
    )
    found = {}
    for system in System.objects.filter(name__in=names):
        found[system.name] = system.pk
        first, last = seen[system.name]
        if first < system.first_seen_at or last > system.last_seen_at:
            System.objects.filter(pk=system.pk).update(
                first_seen_at=min(first, system.first_seen_at), last_seen_at=max(last, system.last_seen_at)
            )
    return found


def _interfaces(hops: list[Hop], system_ids: dict[str, int], now: datetime) -> dict[tuple[str, str], int]:
    seen: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for hop in hops:
        pair = (hop.source, hop.target)
        first, last = seen.get(pair, (hop.at, hop.at))
        seen[pair] = (min(first, hop.at), max(last, hop.at))
    Interface.objects.bulk_create(
        [
            Interface(
                source_id=system_ids[s], target_id=system_ids[t], first_seen_at=f, last_seen_at=la, discovered_at=now
            )
            for (s, t), (f, la) in sorted(seen.items())
        ],
        ignore_conflicts=True,
    )
    found = {}
    pairs = Q()
    for s, t in seen:
        pairs |= Q(source_id=system_ids[s], target_id=system_ids[t])
    for iface in Interface.objects.filter(pairs).select_related("source", "target") if seen else []:
        pair = (iface.source.name, iface.target.name)
        found[pair] = iface.pk
        first, last = seen[pair]
        if first < iface.first_seen_at or last > iface.last_seen_at:
            Interface.objects.filter(pk=iface.pk).update(
                first_seen_at=min(first, iface.first_seen_at), last_seen_at=max(last, iface.last_seen_at)
            )
    return found


def days_mark_dirty(days: Iterable[date], *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    InterfaceDirtyDay.objects.bulk_create(
        [InterfaceDirtyDay(day=d, marked_at=now) for d in sorted(set(days))],
        # A newer mark replaces an older one (waiting for a refresh holding it), so that refresh keeps this one.
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=["marked_at"],
    )


@transaction.atomic
def interface_hops_refresh(*, txn_ids: list[int], now: datetime | None = None) -> dict:
    """Derive the hops of these transactions again and replace their stored ones; mark the days that changed."""
    # Locked in id order, as correlation locks them: a concurrent refresh of the same transaction waits, so its
    # delete-and-insert cannot interleave with ours and leave both sets of hops.
    live = list(
        Transaction.objects.select_for_update()
        .filter(pk__in=txn_ids)
        .exclude(status=TransactionStatus.MERGED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Absorbed transactions' events moved to their survivor; their old hops go with this refresh.
    stale = InterfaceHop.objects.filter(
        Q(txn_id__in=txn_ids) | Q(txn__merged_into_id__in=txn_ids, txn__status=TransactionStatus.MERGED)
    )
    days = set(stale.values_list("day", flat=True).distinct())
    stale.delete()

    late_after = timedelta(seconds=settings.INTERFACE_LATE_AFTER_SECONDS)
    events_of = _step_events(live)
    hops_of = {txn_id: discover_hops(events, late_after=late_after) for txn_id, events in events_of.items()}
    all_hops = [h for hops in hops_of.values() for h in hops]
    # Every system of the transactions is a node of the map, also one that has not handed anything over yet.
    seen: dict[str, tuple[datetime, datetime]] = {}
    for event in (e for events in events_of.values() for e in events):
        first, last = seen.get(event.system, (event.occurred_at, event.occurred_at))
        seen[event.system] = (min(first, event.occurred_at), max(last, event.occurred_at))
    system_ids = _systems(set(seen), seen) if seen else {}
    iface_ids = _interfaces(all_hops, system_ids, now or timezone.now()) if all_hops else {}
    zone = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    rows = [
        (
            iface_ids[(h.source, h.target)],
            txn_id,
            h.at.astimezone(zone).date(),  # local_day, its zone looked up once
            h.at,
            h.latency_ms,
            h.error,
            h.duplicate,
            h.late,
            h.kind[:200],
            h.channel[:20],
            h.via,
        )
        for txn_id, hops in hops_of.items()
        for h in hops
    ]
    values_copy(InterfaceHop, HOP_FIELDS, rows)
    # Derived: the sweep owes these nothing until correlation changes them again (it waits on our row locks to).
    Transaction.objects.filter(pk__in=txn_ids, hops_stale_since__isnull=False).update(hops_stale_since=None)
    days |= {row[2] for row in rows}
    days_mark_dirty(days, now=now)
    result = {"transactions": len(live), "hops": len(rows), "days": len(days)}
    logger.info("interfaces.hops_refreshed", extra=result)
    return result


def _day_rows(day: date) -> list[InterfaceDaily]:
    acc: dict[int, dict] = {}
    hops = InterfaceHop.objects.filter(day=day).values_list(
        "interface_id", "latency_ms", "error", "duplicate", "late", "kind", "channel"
    )
    for interface_id, latency, error, duplicate, late, kind, channel in hops.iterator(chunk_size=5000):
        row = acc.get(interface_id)
        if row is None:
            row = acc[interface_id] = {"volume": 0, "errors": 0, "duplicates": 0, "late": 0, "latencies": []}
            row.update(kinds=Counter(), channels=Counter())
        row["volume"] += 1
        row["errors"] += int(error)
        row["duplicates"] += int(duplicate)
        row["late"] += int(late)
        row["latencies"].append(latency)
        row["kinds"][kind] += 1
        row["channels"][channel or "unknown"] += 1
    rows = []
    for interface_id, row in sorted(acc.items()):
        p50, p95 = percentile(row["latencies"], 50), percentile(row["latencies"], 95)
        rows.append(
            InterfaceDaily(
                interface_id=interface_id,
                day=day,
                volume=row["volume"],
                errors=row["errors"],
                duplicates=row["duplicates"],
                late=row["late"],
                latency_p50_ms=round(p50) if p50 is not None else None,
                latency_p95_ms=round(p95) if p95 is not None else None,
                latency_histogram=latency_histogram(row["latencies"]),
                kinds=dict(row["kinds"].most_common()),
                channels=dict(row["channels"].most_common()),
            )
        )
    return rows


def interface_days_rebuild(*, days: Iterable[date]) -> int:
    """Recompute the rollups of these local days from their hops and replace their rows, then their months' rows from
    the days; returns the daily rows written."""
    written = 0
    days = sorted(set(days))
    for day in days:
        rows = _day_rows(day)
        with transaction.atomic():
            InterfaceDaily.objects.filter(day=day).delete()
            InterfaceDaily.objects.bulk_create(rows, batch_size=CHUNK)
        written += len(rows)
    interface_months_rebuild(months={d.replace(day=1) for d in days})
    return written


def _month_rows(month: date) -> list[InterfaceMonthly]:
    acc: dict[int, dict] = {}
    days = (
        InterfaceDaily.objects.filter(day__gte=month, day__lte=month_last_day(month))
        .annotate(
            histogram_text=Cast("latency_histogram", TextField()),
            kinds_text=Cast("kinds", TextField()),
            channels_text=Cast("channels", TextField()),
        )
        .values_list(
            "interface_id", "volume", "errors", "duplicates", "late", "histogram_text", "kinds_text", "channels_text"
        )
    )
    for interface_id, volume, errors, duplicates, late, histogram, kinds, channels in days:
        row = acc.get(interface_id)
        if row is None:
            row = acc[interface_id] = {"volume": 0, "errors": 0, "duplicates": 0, "late": 0, "histogram": []}
            row.update(kinds=Counter(), channels=Counter())
        row["volume"] += volume
        row["errors"] += errors
        row["duplicates"] += duplicates
        row["late"] += late
        histogram_add(row["histogram"], orjson.loads(histogram) if histogram else None)
        row["kinds"].update(orjson.loads(kinds) if kinds else {})
        row["channels"].update(orjson.loads(channels) if channels else {})
    return [
        InterfaceMonthly(
            interface_id=interface_id,
            month=month,
            volume=row["volume"],
            errors=row["errors"],
            duplicates=row["duplicates"],
            late=row["late"],
            latency_histogram=histogram_stored(row["histogram"]),
            kinds=dict(row["kinds"].most_common()),
            channels=dict(row["channels"].most_common()),
        )
        for interface_id, row in sorted(acc.items())
    ]


def interface_months_rebuild(*, months: Iterable[date]) -> int:
    """Replace the monthly rows of these months (first days) by the sums of their daily rows; returns rows written."""
    written = 0
    for month in sorted({m.replace(day=1) for m in months}):
        with transaction.atomic():
            # Two refreshes that rebuilt different days of one month take turns here, and each reads the days after
            # the other's commit: the last one to write the month has read every day committed before it.
            advisory_lock_keys(MONTH_LOCK_NAMESPACE, [month.year * 12 + month.month])
            rows = _month_rows(month)
            InterfaceMonthly.objects.filter(month=month).delete()
            InterfaceMonthly.objects.bulk_create(rows, batch_size=CHUNK)
        written += len(rows)
    return written


def interface_rollups_refresh(*, limit: int = 31) -> int:
    """Periodic: rebuild the days marked dirty (oldest first); a day marked again while rebuilding stays marked."""
    with transaction.atomic():
        claimed = list(
            InterfaceDirtyDay.objects.select_for_update(skip_locked=connection.vendor == "postgresql")
            .order_by("day")
            .values_list("pk", "day", "marked_at")[:limit]
        )
        if not claimed:
            return 0
        written = interface_days_rebuild(days=[day for _, day, _ in claimed])
        # Only the marks we read: a batch that marked the day again meanwhile (a later marked_at) keeps its mark.
        for pk, _, marked_at in claimed:
            InterfaceDirtyDay.objects.filter(pk=pk, marked_at=marked_at).delete()
    logger.info("interfaces.rollups_refreshed", extra={"days": len(claimed), "rows": written})
    return written


def interface_map_rebuild(*, first: date, last: date) -> dict:
    """Re-derive the hops of every transaction active in the local days first..last, then rebuild those days."""
    start, end = day_bounds(first, last)
    txn_ids = list(
        Transaction.objects.exclude(status=TransactionStatus.MERGED)
        .filter(last_event_at__gte=start, started_at__lt=end)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    hops = 0
    for i in range(0, len(txn_ids), CHUNK):
        hops += interface_hops_refresh(txn_ids=txn_ids[i : i + CHUNK])["hops"]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows = interface_days_rebuild(days=days)
    InterfaceDirtyDay.objects.filter(day__in=days).delete()
    return {"transactions": len(txn_ids), "hops": hops, "rows": rows, "days": len(days)}


def interface_earliest_day() -> date | None:
    first = Transaction.objects.aggregate(first=Min("started_at"))["first"]
    return local_day(first) if first else None


def interface_latest_day() -> date | None:
    last = Transaction.objects.aggregate(last=Max("last_event_at"))["last"]
    return local_day(last) if last else None
