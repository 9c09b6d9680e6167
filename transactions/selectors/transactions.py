"""Reads of transactions: search, timeline, failures, process definitions, and the compliance lineage."""

import contextlib
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from console.lib.models import merged_chain_end
from transactions.canonical import CANONICAL_FIELDS
from transactions.choices import EventStatus, TransactionStatus
from transactions.filters import NOT_BUSINESS, key_value_candidates
from transactions.models import (
    Event,
    ProcessDefinition,
    ProcessStep,
    Transaction,
    TransactionEvent,
    TransactionKey,
    TransactionMerge,
)
from transactions.timeline import build_timeline

# ---- Transactions ---------------------------------------------------------------------------------------------------


def transaction_list() -> QuerySet[Transaction]:
    """Newest activity first; merged (absorbed) transactions are never listed."""
    return (
        Transaction.objects.exclude(status=TransactionStatus.MERGED)
        .select_related("process")
        .order_by("-last_event_at", "-id")
    )


def transaction_resolve(*, txn_id: int) -> Transaction:
    """The transaction with this id, or the one it was merged into (following the chain); DoesNotExist otherwise."""
    with_process = Transaction.objects.select_related("process")
    return merged_chain_end(with_process.get(pk=txn_id), queryset=with_process)


# What the timeline reads of each event: its canonical fields and how and when it arrived.
EVENT_FIELDS = ("id", "received_at", "channel", *CANONICAL_FIELDS)


def transaction_timeline(*, txn: Transaction, now: datetime | None = None) -> dict:
    """The timeline of `txn` with every event's details (see transactions.timeline)."""
    members = list(TransactionEvent.objects.filter(txn=txn).values_list("event_id", "event_received_at"))
    ids = [m[0] for m in members]
    # Both columns, so that PostgreSQL only visits the partitions these events are in.
    events = list(Event.objects.filter(id__in=ids, received_at__in={m[1] for m in members}).values(*EVENT_FIELDS))
    timeline = build_timeline(events, next_step=txn.next_step, next_due_at=txn.next_due_at, now=now or timezone.now())
    merged = list(TransactionMerge.objects.filter(survivor=txn).values("absorbed_id", "via_key", "merged_at"))
    return {"transaction": txn, "merged_from": merged, **timeline}


def transaction_counts_by_process() -> list[dict]:
    """In flight, stalled, failed and completed transactions per process (the home dashboard)."""
    return list(
        Transaction.objects.exclude(status=TransactionStatus.MERGED)
        .values("process__name", "status")
        .annotate(n=Count("id"))
        .order_by("process__name", "status")
    )


def failed_event_details(*, event_ids: list[int]) -> list[dict]:
    """Events (with their transaction id, when correlated) for classification by the exceptions app."""
    if not event_ids:
        return []
    members = {
        event_id: (received_at, txn_id)
        for event_id, received_at, txn_id in TransactionEvent.objects.filter(event_id__in=event_ids).values_list(
            "event_id", "event_received_at", "txn_id"
        )
    }
    events = Event.objects.filter(id__in=event_ids)
    if members:
        # The receive times let PostgreSQL visit only the partitions these events are in.
        events = events.filter(received_at__in={m[0] for m in members.values()})
    rows = list(
        events.values(
            "id",
            "received_at",
            "occurred_at",
            "system",
            "kind",
            "status",
            "error",
            "attributes",
            "entity",
            "amount",
            "currency",
            "business_keys",
        )
    )
    for row in rows:
        row["txn_id"] = members.get(row["id"], (None, None))[1]
    return rows


def failed_event_ids_recent(*, limit: int = 5000) -> list[int]:
    """The most recently correlated failed events: what the classification sweep checks for a lost task."""
    return list(
        TransactionEvent.objects.filter(status="error").order_by("-id").values_list("event_id", flat=True)[:limit]
    )


def success_events_carrying(*, values: list[str], since: datetime, names: tuple[str, ...]) -> list[dict]:
    """Events with status ok received since `since` whose attribute `name` (any of `names`) is one of `values`.

    `received_at >= since` lets PostgreSQL visit only the recent partitions of the event table.
    """
    if not values:
        return []
    carries = Q()
    for name in names:
        # One key with a dot in it ("closeloop.replay_id"), not a path: Django passes it as a single JSON key.
        # has_key matches the predicate of a partial expression index on the key, should events ever get one.
        carries |= Q(attributes__has_key=name) & Q(**{f"attributes__{name}__in": values})
    return list(
        Event.objects.filter(received_at__gte=since, status=EventStatus.OK)
        .filter(carries)
        .values("id", "received_at", "system", "kind", "attributes")
    )


# ---- Process definitions (console) ----------------------------------------------------------------------------------


def process_definition_list() -> QuerySet[ProcessDefinition]:
    """Every process with its steps in order (one query for the processes, one for all their steps)."""
    steps = Prefetch("steps", queryset=ProcessStep.objects.order_by("position"))
    return ProcessDefinition.objects.prefetch_related(steps).order_by("name")


def process_definition_get(*, process_id: int) -> ProcessDefinition:
    return process_definition_list().get(pk=process_id)


# ---- Compliance lineage (console) -----------------------------------------------------------------------------------


def transaction_ids_for_search(*, query: str, limit: int = 200) -> list[int]:
    """Live transactions a lineage search names: a transaction id (merged ones lead to their survivor) or any business
    key value (contract, order, invoice, vendor...), in the forms the transactions search accepts."""
    query = query.strip()
    if not query:
        return []
    found: list[int] = []
    if query.isdigit():
        with contextlib.suppress(Transaction.DoesNotExist):
            found.append(transaction_resolve(txn_id=int(query)).pk)
    keyed = (
        TransactionKey.objects.filter(value__in=key_value_candidates(query))
        .exclude(key_type__in=NOT_BUSINESS)
        .values_list("txn_id", flat=True)
    )
    for txn_id in keyed.order_by("txn_id")[:limit]:
        if txn_id not in found:
            found.append(txn_id)
    return found


def transaction_ids_in_period(
    *, since: datetime, until: datetime, entity: str = "", limit: int = 1_000_000
) -> list[int]:
    """Live transactions started in [since, until) (an auditor's sample), optionally of one legal entity; by id."""
    txns = Transaction.objects.exclude(status=TransactionStatus.MERGED).filter(
        started_at__gte=since, started_at__lt=until
    )
    if entity:
        # The legal entity is an event field, not a key: the transactions with an event of that entity in the period.
        of_entity = Event.objects.filter(entity=entity.strip(), occurred_at__gte=since, occurred_at__lt=until)
        txns = txns.filter(pk__in=TransactionEvent.objects.filter(event_id__in=of_entity.values("id")).values("txn_id"))
    return list(txns.order_by("id").values_list("id", flat=True)[:limit])


def lineage_transactions(*, txn_ids: list[int]) -> list[dict]:
    """The transactions with their process and the ids they absorbed (whose cases still name the absorbed id)."""
    absorbed: dict[int, list[int]] = {}
    for survivor_id, absorbed_id in TransactionMerge.objects.filter(survivor_id__in=txn_ids).values_list(
        "survivor_id", "absorbed_id"
    ):
        absorbed.setdefault(survivor_id, []).append(absorbed_id)
    rows = list(
        Transaction.objects.filter(pk__in=txn_ids)
        .order_by("id")
        .values("id", "process_id", "process__name", "status", "started_at", "business_keys")
    )
    for row in rows:
        row["absorbed_ids"] = sorted(absorbed.get(row["id"], []))
    return rows


def lineage_events(*, txn_ids: list[int]) -> list[dict]:
    """Every event of these transactions with its approval and attributes, in time order (id breaks ties)."""
    members = list(
        TransactionEvent.objects.filter(txn_id__in=txn_ids).values_list("event_id", "event_received_at", "txn_id")
    )
    txn_of = {event_id: txn_id for event_id, _, txn_id in members}
    events = list(
        Event.objects.filter(id__in=list(txn_of), received_at__in={m[1] for m in members})
        .order_by("occurred_at", "id")
        .values("id", "occurred_at", "system", "kind", "status", "approval", "attributes", "business_keys", "entity")
    )
    for row in events:
        row["txn_id"] = txn_of[row["id"]]
    return events


def process_step_rules(*, process_ids: list[int]) -> list[ProcessStep]:
    """The steps of these processes, with their approval controls, in order."""
    return list(ProcessStep.objects.filter(process_id__in=process_ids).order_by("process_id", "position"))
