"""Event-level reads the slas app needs: volumes per window for monitors, step facts and events for clocks."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet, Subquery

from console.lib.bulk import values_rows
from transactions.choices import TransactionStatus
from transactions.models import (
    Event,
    IngestBatch,
    Transaction,
    TransactionEvent,
)

# ---- Event volumes and details for monitors (slas app) --------------------------------------------------------------

# Senders' clocks run a little ahead of ours: an event that occurred in a window may carry a receive time this much
# before the window's start.
CLOCK_SKEW = timedelta(minutes=5)


def event_counts_by_window(*, starts: list[datetime], until: datetime) -> list[dict]:
    """Events per (system, kind, entity) that occurred in [start, until), one count per start, in ONE query.

    Rows are {"system", "kind", "entity", "counts": [n per start, in the order given]}; triples with no event in the
    widest window are absent. An event that occurred at or after a start was received after it too (less the clock
    skew), so the receive-time bound prunes the event table to the window's daily partitions, and the batches
    received since then (batch received_at index) lead to their events through event_batch_idx: the cost follows
    the traffic of the widest window, never the size of the store.
    """
    if not starts:
        return []
    earliest = min(starts)
    received_from = earliest - CLOCK_SKEW
    batches = IngestBatch.objects.filter(received_at__gte=received_from).values("id")
    counts = {
        f"n{i}": Count("id", filter=Q(occurred_at__gte=start)) for i, start in enumerate(starts) if start != earliest
    }
    rows = (
        Event.objects.filter(
            received_at__gte=received_from,
            batch_id__in=Subquery(batches),
            occurred_at__gte=earliest,
            occurred_at__lt=until,
        )
        .values("system", "kind", "entity")
        .annotate(n_all=Count("id"), **counts)
        .order_by()
    )
    return [
        {
            "system": row["system"],
            "kind": row["kind"],
            "entity": row["entity"] or "",
            "counts": [row["n_all"] if start == earliest else row[f"n{i}"] for i, start in enumerate(starts)],
        }
        for row in rows
    ]


def transaction_steps_brief(*, txn_ids: list[int], status: str | None = None) -> list[dict]:
    """Status, process, step facts and expected next step of transactions (what stall cases and evidence checks
    read first, before any event); `status` keeps only transactions in that state."""
    rows = Transaction.objects.filter(pk__in=txn_ids).order_by("id")
    if status is not None:
        rows = rows.filter(status=status)
    return list(
        rows.values(
            "id",
            "status",
            "process_id",
            "process__slug",
            "process__name",
            "step_facts",
            "next_step",
            "next_due_at",
            "started_at",
            "last_event_at",
            "merged_into_id",
        )
    )


def stalled_transaction_ids(*, limit: int = 500) -> list[int]:
    """The most recently active stalled transactions (txn_status_recent_idx), newest first."""
    return list(
        Transaction.objects.filter(status=TransactionStatus.STALLED)
        .order_by("-last_event_at", "-id")
        .values_list("id", flat=True)[:limit]
    )


def ingest_batch_received_at(*, batch_id: int) -> datetime | None:
    return IngestBatch.objects.filter(pk=batch_id).values_list("received_at", flat=True).first()


def ingest_first_received_at() -> datetime | None:
    """When this installation first stored anything (the oldest batch kept; batch received_at index)."""
    return IngestBatch.objects.order_by("received_at").values_list("received_at", flat=True).first()


# What `transaction_events_facts` gives of each event.
EVENT_FACT_FIELDS = (
    "id",
    "occurred_at",
    "system",
    "kind",
    "status",
    "entity",
    "amount",
    "currency",
    "business_keys",
    "approval",
    "attributes",
)


def _members(txn_ids: list[int]) -> list[tuple[int, int, datetime]]:
    """(txn_id, event_id, event_received_at) of these transactions' events (timeline index)."""
    return values_rows(
        TransactionEvent.objects.filter(txn_id__in=txn_ids).values_list("txn_id", "event_id", "event_received_at")
    )


def _member_events(members: list[tuple[int, int, datetime]], fields: Iterable[str]) -> list[tuple]:
    """`fields` of these members' events, by id within the partitions their receive times name.

    Read by `values_rows`: these reads follow every correlated batch (reconciliation, SLA clocks, interfaces), and the
    ORM's decoding of their timestamps and JSON was a good part of each of those tasks."""
    if not members:
        return []
    return values_rows(
        Event.objects.filter(id__in=[m[1] for m in members], received_at__in={m[2] for m in members}).values_list(
            *fields
        )
    )


def transaction_events_detail(*, txn_ids: list[int]) -> dict[int, list[dict]]:
    """Each transaction's events oldest first: id, occurred_at, system, kind, status, entity and approval.

    Costs the events of these transactions only (timeline index, then the events by id within their partitions).
    """
    if not txn_ids:
        return {}
    members = _members(txn_ids)
    owner = {event_id: txn_id for txn_id, event_id, _ in members}
    names = ("id", "occurred_at", "system", "kind", "status", "entity", "approval")
    events = [dict(zip(names, row, strict=True)) for row in _member_events(members, names)]
    found: dict[int, list[dict]] = {}
    for event in events:
        event["entity"] = event["entity"] or ""
        found.setdefault(owner[event["id"]], []).append(event)
    for rows in found.values():
        rows.sort(key=lambda e: (e["occurred_at"], e["id"]))
    return found


def transaction_events_facts(*, txn_ids: list[int]) -> dict[int, dict]:
    """What reconciliation compares: each transaction's process, merge target and business keys, and its events
    oldest first with their canonical fields and attributes ({"id", "occurred_at", "system", "kind", "status",
    "entity", "amount", "currency", "business_keys", "approval", "attributes"}).

    Transactions that do not exist are absent. Costs the events of these transactions only (timeline index, then the
    events by id within their partitions), never the store.
    """
    if not txn_ids:
        return {}
    names = ("id", "process_id", "status", "merged_into_id", "business_keys")
    found: dict[int, dict] = {
        row[0]: {**dict(zip(names, row, strict=True)), "events": []}
        for row in values_rows(Transaction.objects.filter(pk__in=txn_ids).values_list(*names))
    }
    members = _members(list(found))
    if not members:
        return found
    owner = {event_id: txn_id for txn_id, event_id, _ in members}
    for row in _member_events(members, EVENT_FACT_FIELDS):
        event = dict(zip(EVENT_FACT_FIELDS, row, strict=True))
        found[owner[event["id"]]]["events"].append(event)
    for txn in found.values():
        txn["events"].sort(key=lambda e: (e["occurred_at"], e["id"]))
    return found


# ---- For the SLA clocks (slas app) ----------------------------------------------------------------------------------


def transaction_facts_list(*, txn_ids: list[int]) -> list[dict]:
    """What SLA evaluation and case recovery read of transactions: state, process, start, step facts, where a merged
    one went, and when correlation last changed it."""
    names = ("id", "process_id", "status", "started_at", "step_facts", "merged_into_id", "updated_at")
    return [
        dict(zip(names, row, strict=True))
        for row in values_rows(Transaction.objects.filter(pk__in=txn_ids).values_list(*names))
    ]


def transaction_events_brief(*, txn_ids: list[int]) -> dict[int, list[dict]]:
    """Each transaction's events, oldest first: event id, occurred_at, system, kind, status, entity, business key types.

    Costs the events of these transactions only (timeline index, then the events by id within their partitions).
    """
    if not txn_ids:
        return {}
    members = values_rows(
        TransactionEvent.objects.filter(txn_id__in=txn_ids)
        .order_by("txn_id", "occurred_at", "event_id")
        .values_list("txn_id", "event_id", "event_received_at", "occurred_at", "system", "kind", "status")
    )
    details = {row[0]: row[1:] for row in _member_events(members, ("id", "entity", "business_keys"))}
    events: dict[int, list[dict]] = {}
    for txn_id, event_id, _, occurred_at, system, kind, status in members:
        entity, keys = details.get(event_id, ("", {}))
        events.setdefault(txn_id, []).append(
            {
                "event_id": event_id,
                "occurred_at": occurred_at,
                "system": system,
                "kind": kind,
                "status": status,
                "entity": entity or "",
                "key_types": sorted((keys or {}).keys()),
            }
        )
    return events


def transaction_step_samples(*, process_id: int, since: datetime, limit: int = 2000) -> list[tuple[datetime, dict]]:
    """(started_at, step_facts) of the process's most recent transactions active since `since`: a bounded sample
    for step-duration percentiles, whatever the size of the store."""
    return list(
        Transaction.objects.filter(process_id=process_id, last_event_at__gte=since)
        .exclude(status=TransactionStatus.MERGED)
        .order_by("-last_event_at")
        .values_list("started_at", "step_facts")[:limit]
    )


def transaction_ids_hops_owed(*, before: datetime, limit: int = 5000) -> QuerySet:
    """Ids of transactions whose events changed before `before` and whose hops discovery has not derived since, the
    longest owed first, at most `limit`: what the interface sweep derives. Served by the partial txn_hops_stale_idx,
    which holds only those transactions."""
    return (
        Transaction.objects.filter(hops_stale_since__lt=before)
        .order_by("hops_stale_since", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def transaction_ids_active_since(*, since: datetime, limit: int = 20000) -> list[int]:
    """Ids of transactions with an event since `since` (newest first, at most `limit`): what a sweep re-checks."""
    return list(
        Transaction.objects.filter(last_event_at__gte=since)
        .exclude(status=TransactionStatus.MERGED)
        .order_by("-last_event_at", "-id")
        .values_list("id", flat=True)[:limit]
    )
