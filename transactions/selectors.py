"""Reads of the transactions app: ingest sources, rules, dead letters, feed health, transactions and timelines."""

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMinute
from django.utils import timezone

from console.lib.models import merged_chain_end
from transactions.canonical import CANONICAL_FIELDS
from transactions.choices import DeadLetterStatus, EventStatus, TransactionStatus
from transactions.filters import NOT_BUSINESS, key_value_candidates
from transactions.models import (
    DeadLetter,
    Event,
    ExtractionRule,
    IngestBatch,
    IngestSource,
    IngestToken,
    ProcessDefinition,
    ProcessStep,
    RedactionRule,
    SourceAlias,
    Transaction,
    TransactionEvent,
    TransactionKey,
    TransactionMerge,
)
from transactions.timeline import build_timeline

# ---- Sources, tokens, aliases, rules --------------------------------------------------------------------------------


def _last_seen() -> Subquery:
    # One index probe per source on (source, received_at) instead of aggregating every batch ever received.
    newest = IngestBatch.objects.filter(source=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
    return Subquery(newest)


def ingest_source_list() -> QuerySet[IngestSource]:
    """Every source with its active and total token counts and when it last sent a batch."""
    return IngestSource.objects.annotate(
        active_tokens=Count("tokens", filter=Q(tokens__revoked_at__isnull=True)),
        total_tokens=Count("tokens"),
        last_seen=_last_seen(),
    ).order_by("name")


def ingest_source_get(*, source_id: int) -> IngestSource:
    return IngestSource.objects.annotate(last_seen=_last_seen()).get(pk=source_id)


def ingest_token_list(*, source: IngestSource) -> QuerySet[IngestToken]:
    """Newest first; revoked ones stay listed (with when) so that operators can tell what stopped working."""
    return IngestToken.objects.filter(source=source).order_by("-created_at", "-id")


def source_alias_list(*, source: IngestSource) -> QuerySet[SourceAlias]:
    return SourceAlias.objects.filter(source=source).order_by("pattern")


def extraction_rule_list() -> QuerySet[ExtractionRule]:
    """In the order ingest applies them (position, then id)."""
    return ExtractionRule.objects.select_related("source").order_by("position", "id")


def redaction_rule_list() -> QuerySet[RedactionRule]:
    return RedactionRule.objects.select_related("source").order_by("pattern", "id")


# ---- Dead letters ---------------------------------------------------------------------------------------------------


def dead_letter_list(
    *,
    status: str = "",
    source: IngestSource | None = None,
    channel: str = "",
    reason: str = "",
    before: int | None = None,
) -> QuerySet[DeadLetter]:
    """Newest first (received_at, then id); `before` is the id of the last row of the previous page (keyset)."""
    letters = DeadLetter.objects.select_related("source")
    if status:
        letters = letters.filter(status=status)
    if source is not None:
        letters = letters.filter(source=source)
    if channel:
        letters = letters.filter(channel=channel)
    if reason:
        letters = letters.filter(reason__icontains=reason)
    if before is not None:
        anchor = DeadLetter.objects.filter(pk=before).values_list("received_at", flat=True).first()
        if anchor is None:  # the anchor row is gone (retention): ids still follow arrival closely enough
            letters = letters.filter(id__lt=before)
        else:
            letters = letters.filter(Q(received_at__lt=anchor) | Q(received_at=anchor, id__lt=before))
    return letters.order_by("-received_at", "-id")


def dead_letter_get(*, dead_letter_id: int) -> DeadLetter:
    return DeadLetter.objects.select_related("source").get(pk=dead_letter_id)


# ---- Feed health ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedHealth:
    """One ingest source's intake over recent windows; rates are accepted events per minute."""

    source: IngestSource
    last_seen: datetime | None
    per_minute_15m: float
    per_minute_1h: float
    rejected_1h: int
    rejected_24h: int
    duplicates_1h: int
    duplicates_24h: int
    pending_dead_letters: int
    oldest_uncorrelated_at: datetime | None
    correlation_lag: timedelta | None  # age of the oldest batch still waiting for correlation; None: all correlated


def _window_sum(field: str, since: datetime) -> Coalesce:
    return Coalesce(Sum(field, filter=Q(received_at__gte=since)), Value(0), output_field=IntegerField())


def feed_health_list(*, now: datetime) -> list[FeedHealth]:
    """Every source's feed health in a fixed number of queries (four), whatever the number of sources."""
    since_15m, since_1h, since_24h = now - timedelta(minutes=15), now - timedelta(hours=1), now - timedelta(hours=24)
    sources = list(IngestSource.objects.annotate(last_seen=_last_seen()).order_by("name"))
    windows = {
        row["source"]: row
        for row in IngestBatch.objects.filter(received_at__gte=since_24h, received_at__lte=now)
        .values("source")
        .annotate(
            accepted_15m=_window_sum("accepted", since_15m),
            accepted_1h=_window_sum("accepted", since_1h),
            rejected_1h=_window_sum("rejected", since_1h),
            rejected_24h=_window_sum("rejected", since_24h),
            duplicates_1h=_window_sum("duplicates", since_1h),
            duplicates_24h=_window_sum("duplicates", since_24h),
        )
        .order_by()
    }
    pending = dict(
        DeadLetter.objects.filter(status=DeadLetterStatus.PENDING)
        .values("source")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("source", "n")
    )
    # Batches that accepted nothing are never correlated; the partial index batch_uncorrelated_idx covers the rest.
    uncorrelated = dict(
        IngestBatch.objects.filter(correlated_at__isnull=True, accepted__gt=0)
        .values("source")
        .annotate(oldest=Min("received_at"))
        .order_by()
        .values_list("source", "oldest")
    )
    rows = []
    for source in sources:
        window = windows.get(source.pk, {})
        oldest = uncorrelated.get(source.pk)
        row = FeedHealth(
            source=source,
            last_seen=source.last_seen,
            per_minute_15m=window.get("accepted_15m", 0) / 15,
            per_minute_1h=window.get("accepted_1h", 0) / 60,
            rejected_1h=window.get("rejected_1h", 0),
            rejected_24h=window.get("rejected_24h", 0),
            duplicates_1h=window.get("duplicates_1h", 0),
            duplicates_24h=window.get("duplicates_24h", 0),
            pending_dead_letters=pending.get(source.pk, 0),
            oldest_uncorrelated_at=oldest,
            correlation_lag=None if oldest is None else max(now - oldest, timedelta(0)),
        )
        rows.append(row)
    return rows


@dataclass(frozen=True)
class FeedBucket:
    start: datetime
    accepted: int
    rejected: int


def feed_activity_list(*, now: datetime, hours: int = 24, bucket_minutes: int = 10) -> dict[int, list[FeedBucket]]:
    """Accepted and rejected records per time bucket (oldest first, empty buckets included), by source id.

    Sources that sent nothing in the period are absent.

    The database sums per minute (at most 60 x hours rows per source, however many batches arrived); the minutes are
    folded into buckets here, which keeps the query the same on SQLite and PostgreSQL.
    """
    step = timedelta(minutes=bucket_minutes)
    end = now.replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % bucket_minutes)
    first = end - timedelta(hours=hours) + step
    starts = [first + i * step for i in range(int(timedelta(hours=hours) / step))]
    per_minute = (
        IngestBatch.objects.filter(received_at__gte=first, received_at__lte=now)
        .annotate(minute=TruncMinute("received_at"))
        .values("source", "minute")
        .annotate(accepted=Sum("accepted"), rejected=Sum("rejected"))
        .order_by()
    )
    totals: dict[int, dict[datetime, list[int]]] = {}
    for row in per_minute:
        offset = (row["minute"] - first) // step
        if not 0 <= offset < len(starts):
            continue
        cell = totals.setdefault(row["source"], {}).setdefault(starts[offset], [0, 0])
        cell[0] += row["accepted"] or 0
        cell[1] += row["rejected"] or 0
    return {
        source_id: [FeedBucket(start, *cells.get(start, (0, 0))) for start in starts]
        for source_id, cells in totals.items()
    }


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


def transaction_events_detail(*, txn_ids: list[int]) -> dict[int, list[dict]]:
    """Each transaction's events oldest first: id, occurred_at, system, kind, status, entity and approval.

    Costs the events of these transactions only (timeline index, then the events by id within their partitions).
    """
    if not txn_ids:
        return {}
    members = list(
        TransactionEvent.objects.filter(txn_id__in=txn_ids).values_list("txn_id", "event_id", "event_received_at")
    )
    if not members:
        return {}
    owner = {event_id: txn_id for txn_id, event_id, _ in members}
    received = {m[2] for m in members}
    events = Event.objects.filter(id__in=list(owner), received_at__in=received).values(
        "id", "occurred_at", "system", "kind", "status", "entity", "approval"
    )
    found: dict[int, list[dict]] = {}
    for event in events:
        event["entity"] = event["entity"] or ""
        found.setdefault(owner[event["id"]], []).append(event)
    for rows in found.values():
        rows.sort(key=lambda e: (e["occurred_at"], e["id"]))
    return found


__all__ = [
    "FeedBucket",
    "FeedHealth",
    "dead_letter_get",
    "dead_letter_list",
    "extraction_rule_list",
    "feed_activity_list",
    "feed_health_list",
    "ingest_source_get",
    "ingest_source_list",
    "ingest_token_list",
    "redaction_rule_list",
    "source_alias_list",
]


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


# ---- For the SLA clocks (slas app) ----------------------------------------------------------------------------------


def transaction_facts_list(*, txn_ids: list[int]) -> list[dict]:
    """What SLA evaluation reads of transactions: state, process, start, step facts, and where a merged one went."""
    return list(
        Transaction.objects.filter(pk__in=txn_ids).values(
            "id", "process_id", "status", "started_at", "step_facts", "merged_into_id"
        )
    )


def transaction_events_brief(*, txn_ids: list[int]) -> dict[int, list[dict]]:
    """Each transaction's events, oldest first: event id, occurred_at, system, kind, status, entity, business key types.

    Costs the events of these transactions only (timeline index, then the events by id within their partitions).
    """
    if not txn_ids:
        return {}
    members = list(
        TransactionEvent.objects.filter(txn_id__in=txn_ids)
        .order_by("txn_id", "occurred_at", "event_id")
        .values_list("txn_id", "event_id", "event_received_at", "occurred_at", "system", "kind", "status")
    )
    details = {
        row[0]: row[1:]
        for row in Event.objects.filter(
            id__in=[m[1] for m in members], received_at__in={m[2] for m in members}
        ).values_list("id", "entity", "business_keys")
    }
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


def transaction_ids_active_since(*, since: datetime, limit: int = 20000) -> list[int]:
    """Ids of transactions with an event since `since` (newest first, at most `limit`): what a sweep re-checks."""
    return list(
        Transaction.objects.filter(last_event_at__gte=since)
        .exclude(status=TransactionStatus.MERGED)
        .order_by("-last_event_at", "-id")
        .values_list("id", flat=True)[:limit]
    )
