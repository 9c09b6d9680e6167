"""Correlation of ingested batches into transactions: the database side of `transactions.correlation`.

The work per batch is proportional to the batch: its events are read by batch id, existing transactions are found
through the unique index of linking keys, and only the transactions the batch touches are read and written.
"""

import logging
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from console.lib.audit import audit_record
from console.lib.bulk import rows_create, rows_update, sql_rows, values_copy, values_rows
from console.lib.locks import advisory_lock_keys, key_bucket
from transactions.choices import BROAD_KEY_TYPES, DEFAULT_CORRELATING_KEY_TYPES, TransactionStatus
from transactions.correlation import (
    SYSTEM,
    TRACE,
    EventFacts,
    Key,
    ProcessSpec,
    StepSpec,
    add_event_facts,
    detect_process,
    evaluate_state,
    group_batch,
    linking_keys,
    merge_facts,
    searchable_keys,
)
from transactions.models import (
    Event,
    IngestBatch,
    ProcessDefinition,
    Transaction,
    TransactionEvent,
    TransactionKey,
    TransactionMerge,
)
from transactions.signals import transactions_correlated, transactions_merged

logger = logging.getLogger(__name__)

# Advisory locks are taken per bucket of keys, not per key: a batch of 10,000 keys must not fill the lock table.
LOCK_NAMESPACE = 0x434C
LOCK_BUCKETS = 256
# A pass takes at most this many other waiting batches (the index scan under the claim stays short).
COALESCE_BATCHES = 500


def process_specs() -> list[ProcessSpec]:
    specs = []
    for process in ProcessDefinition.objects.filter(is_active=True).prefetch_related("steps"):
        steps = tuple(
            StepSpec(s.position, s.name, s.system, s.kind_pattern, s.allowance, s.required) for s in process.steps.all()
        )
        specs.append(ProcessSpec(process.pk, process.name, steps))
    return specs


def correlating_key_types() -> frozenset[str]:
    """Key types that link events: those the active processes name, never the broad ones."""
    named: set[str] = set()
    for keys in ProcessDefinition.objects.filter(is_active=True).values_list("correlation_keys", flat=True):
        named.update(k for k in keys or [] if isinstance(k, str))
    return frozenset((named or DEFAULT_CORRELATING_KEY_TYPES) - BROAD_KEY_TYPES)


def _lock_keys(keys: set[Key]) -> None:
    advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f"{t}\x1f{v}", LOCK_BUCKETS) for t, v in keys))


def _existing_links(keys: set[Key]) -> dict[Key, int]:
    found: dict[Key, int] = {}
    values = sorted({v for _, v in keys})
    if connection.vendor == "postgresql":
        # The batch's values as one array parameter (txn_key_value_idx): as an `__in` list, Django's preparation of
        # each value was a tenth of a pass.
        table = TransactionKey._meta.db_table
        rows = sql_rows(f"SELECT key_type, value, txn_id FROM {table} WHERE correlates AND value = ANY(%s)", [values])
    else:
        rows = [
            row
            for start in range(0, len(values), 1000)
            for row in TransactionKey.objects.filter(
                correlates=True, value__in=values[start : start + 1000]
            ).values_list("key_type", "value", "txn_id")
        ]
    for key_type, value, txn_id in rows:
        if (key_type, value) in keys:
            found[(key_type, value)] = txn_id
    return found


def _facts(rows: list[tuple]) -> list[EventFacts]:
    return [
        EventFacts(
            event_id=event_id,
            received_at=received_at,
            occurred_at=occurred_at,
            system=system,
            kind=kind,
            status=status,
            trace_id=trace_id,
            links=links or [],
            business_keys=business_keys or {},
        )
        for event_id, _, received_at, occurred_at, system, kind, status, trace_id, links, business_keys in rows
    ]


def _add_keys(summary: dict[str, list[str]], keys: list[Key]) -> dict[str, list[str]]:
    merged = {t: list(v) for t, v in summary.items()}
    for key_type, value in keys:
        if key_type == TRACE:
            continue
        values = merged.setdefault(key_type, [])
        if value not in values:
            values.append(value)
    return merged


def _merge_into(survivor: Transaction, absorbed: list[Transaction], via: dict[int, Key], batch_id: int) -> None:
    absorbed_ids = [t.pk for t in absorbed]
    # Broad keys both sides carry would otherwise appear twice on the survivor.
    survivor_broad = set(TransactionKey.objects.filter(txn=survivor, correlates=False).values_list("key_type", "value"))
    duplicate_broad = Q()
    for key_type, value in survivor_broad:
        duplicate_broad |= Q(key_type=key_type, value=value)
    if survivor_broad:
        TransactionKey.objects.filter(Q(txn_id__in=absorbed_ids, correlates=False) & duplicate_broad).delete()
    TransactionKey.objects.filter(txn_id__in=absorbed_ids).update(txn=survivor)
    TransactionEvent.objects.filter(txn_id__in=absorbed_ids).update(txn=survivor)
    Transaction.objects.filter(merged_into_id__in=absorbed_ids).update(merged_into=survivor)
    for other in absorbed:
        survivor.started_at = min(survivor.started_at, other.started_at)
        survivor.last_event_at = max(survivor.last_event_at, other.last_event_at)
        survivor.event_count += other.event_count
        survivor.error_count += other.error_count
        survivor.systems = sorted(set(survivor.systems) | set(other.systems))
        for key_type, values in other.business_keys.items():
            survivor.business_keys = _add_keys(survivor.business_keys, [(key_type, v) for v in values])
        survivor.step_facts = merge_facts(survivor.step_facts, other.step_facts)
        other.status = TransactionStatus.MERGED
        other.merged_into = survivor
        other.next_step, other.next_due_at = None, None
        other.version += 1
        # Its hops go when the survivor's are derived (the survivor is marked below): the sweep owes it nothing.
        other.hops_stale_since = None
    rows_update(absorbed, ["status", "merged_into", "next_step", "next_due_at", "version", "hops_stale_since"])
    TransactionMerge.objects.bulk_create(
        [
            TransactionMerge(
                survivor=survivor, absorbed=other, via_key="{}={}".format(*via[other.pk]), batch_id=batch_id
            )
            for other in absorbed
        ]
    )


def _pending_batches(*, lead: IngestBatch, up_to_events: int) -> list[int]:
    """The lead batch and, while the pass stays under `up_to_events`, the oldest other batches still waiting, each
    claimed with SKIP LOCKED so that two workers never wait on (or correlate) the same batch.

    The waiting batches are read without locks and only those the budget takes are locked: FOR UPDATE locks every
    row its query returns, and a batch locked but not taken made its own task skip it while the pass ran; no task
    was left for it, so it waited for the sweep, minutes later (the soak's drain stalled on 499 such batches)."""
    claimed, events = [lead.pk], lead.accepted
    if events >= up_to_events:
        return claimed
    waiting = (
        IngestBatch.objects.filter(correlated_at__isnull=True, accepted__gt=0)
        .exclude(pk=lead.pk)
        .order_by("id")
        .values_list("id", "accepted")[:COALESCE_BATCHES]
    )
    taken = []
    for batch_id, accepted in waiting:
        if events + accepted > up_to_events:
            break
        taken.append(batch_id)
        events += accepted
    if taken:
        # Locked, the row is read again: a batch another pass correlated meanwhile drops out here.
        claimed += (
            IngestBatch.objects.select_for_update(skip_locked=True)
            .filter(pk__in=taken, correlated_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
    return claimed


@transaction.atomic
def batch_correlate(*, batch_id: int, now: datetime | None = None, coalesce_up_to: int = 0) -> dict:
    """Correlate one ingested batch; running it again for the same batch changes nothing.

    With `coalesce_up_to`, the same pass also takes other waiting batches up to that many events: a webhook source
    sends one event per request, and one pass (with its follow-up tasks) per event would cap the pipeline at the
    fixed cost of a pass. A batch another worker holds is left to it.

    A coalescing pass whose batch is done or held elsewhere leads with the oldest batch still waiting instead: under
    a backlog, passes take the oldest batches first, so a task's own batch is often gone by the time it runs, and
    tasks that then did nothing left the backlog to the once-a-minute sweep (the soak's drain idled with 769
    batches waiting).
    """
    now = now or timezone.now()
    batch = IngestBatch.objects.select_for_update(skip_locked=bool(coalesce_up_to)).filter(pk=batch_id).first()
    if coalesce_up_to and (batch is None or batch.correlated_at is not None):
        batch = (
            IngestBatch.objects.select_for_update(skip_locked=True)
            .filter(correlated_at__isnull=True, accepted__gt=0)
            .order_by("id")
            .first()
        )
    if batch is None or batch.correlated_at is not None:
        return {"batch_id": batch_id, "skipped": True}
    batch_ids = _pending_batches(lead=batch, up_to_events=coalesce_up_to) if coalesce_up_to else [batch.pk]
    # Events a pass before this one already placed (a redelivered task) are left out by the same query.
    placed = TransactionEvent.objects.filter(event_id=OuterRef("id"))
    rows = values_rows(
        Event.objects.filter(batch_id__in=batch_ids)
        .exclude(Exists(placed))
        .order_by("id")
        .values_list(
            "id",
            "batch_id",
            "received_at",
            "occurred_at",
            "system",
            "kind",
            "status",
            "trace_id",
            "links",
            "business_keys",
        )
    )
    batch_of = {r[0]: r[1] for r in rows}
    events = _facts(rows)
    correlating = correlating_key_types()
    event_links = [linking_keys(e, correlating) for e in events]
    all_links = {k for keys in event_links for k in keys}
    _lock_keys(all_links)
    existing = _existing_links(all_links)
    groups = group_batch(event_links, existing)

    touched_ids = {txn_id for g in groups for txn_id in g.existing_txn_ids}
    txns = {t.pk: t for t in Transaction.objects.select_for_update().filter(pk__in=touched_ids)}
    processes = process_specs()
    merges: list[tuple[int, list[int]]] = []
    # Rows as values, their transaction as the object (a new one has no key until it is inserted after the loop).
    new_keys: list[tuple[Transaction, str, str, bool]] = []
    memberships: list[tuple[Transaction, EventFacts]] = []
    failed_event_ids: list[int] = []
    changed: dict[int, Transaction] = {}
    created: list[Transaction] = []

    for group in groups:
        members = [events[i] for i in group.event_indexes]
        if group.existing_txn_ids:
            survivor = txns[min(group.existing_txn_ids)]
            absorbed = [txns[i] for i in sorted(group.existing_txn_ids - {survivor.pk})]
            if absorbed:
                via = {t.pk: next(k for k, v in existing.items() if v == t.pk and k in group.keys) for t in absorbed}
                # The merge is recorded against the batch whose events brought the linking key.
                _merge_into(survivor, absorbed, via, max(batch_of[e.event_id] for e in members))
                merges.append((survivor.pk, [t.pk for t in absorbed]))
                for t in absorbed:
                    changed.pop(t.pk, None)
            changed[survivor.pk] = survivor
        else:
            # Inserted all together after the loop, with their final state: one INSERT for the batch's new ones.
            first = min(members, key=lambda e: e.occurred_at)
            survivor = Transaction(started_at=first.occurred_at, last_event_at=first.occurred_at, version=0)
            created.append(survivor)
        # Keys link only within their group (union-find), so a key is new here or already in the database.
        new_keys += [(survivor, t, v, True) for t, v in group.keys if (t, v) not in existing]
        broad = {k for e in members for k in searchable_keys(e, correlating)} - set(
            (t, v) for t, values in survivor.business_keys.items() for v in values
        )
        new_keys += [(survivor, t, v, False) for t, v in sorted(broad)]
        # Systems are searched like keys, through the same index (a JSON containment filter is not portable).
        new_systems = sorted({e.system for e in members} - set(survivor.systems))
        new_keys += [(survivor, SYSTEM, s, False) for s in new_systems]

        survivor.started_at = min(survivor.started_at, *(e.occurred_at for e in members))
        survivor.last_event_at = max(survivor.last_event_at, *(e.occurred_at for e in members))
        survivor.event_count += len(members)
        errors = [e for e in members if e.status == "error"]
        survivor.error_count += len(errors)
        failed_event_ids += [e.event_id for e in errors]
        survivor.systems = sorted(set(survivor.systems) | {e.system for e in members})
        survivor.business_keys = _add_keys(
            survivor.business_keys, [k for e in members for k in e.business_keys.items()]
        )
        survivor.step_facts = add_event_facts(survivor.step_facts, members)
        memberships += [(survivor, e) for e in members]

    # A transaction a group attached events to may have been absorbed by a later group of the same batch.
    absorbed_into = {a: s for s, absorbed in merges for a in absorbed}

    def final(txn_id: int) -> int:
        while txn_id in absorbed_into:
            txn_id = absorbed_into[txn_id]
        return txn_id

    detected: dict[frozenset[str], ProcessSpec | None] = {}
    for txn in (*changed.values(), *created):
        _refresh_state(txn, processes, now, detected)
        txn.version += 1
        # Interface discovery owes this transaction its hops from now on (kept if it already owed them: the sweep
        # takes the longest owed first, so a transaction that keeps changing is never passed over).
        txn.hops_stale_since = txn.hops_stale_since or now
    rows_create(created)
    rows_update(
        list(changed.values()),
        [
            "process",
            "status",
            "started_at",
            "last_event_at",
            "event_count",
            "error_count",
            "systems",
            "business_keys",
            "step_facts",
            "next_step",
            "next_due_at",
            "version",
            "updated_at",
            "hops_stale_since",
        ],
    )
    values_copy(
        TransactionKey,
        ("txn_id", "key_type", "value", "correlates"),
        [(final(txn.pk), key_type, value, correlates) for txn, key_type, value, correlates in new_keys],
    )
    values_copy(
        TransactionEvent,
        ("txn_id", "event_id", "event_received_at", "occurred_at", "system", "kind", "status"),
        [
            (final(txn.pk), e.event_id, e.received_at, e.occurred_at, e.system, e.kind, e.status)
            for txn, e in memberships
        ],
    )
    IngestBatch.objects.filter(pk__in=batch_ids).update(correlated_at=now)
    if merges:
        # One audit link per pass of automatic merges (ARCHITECTURE.md allows batching automatic actions).
        audit_record(
            actor="system:correlation",
            action="transaction.merged",
            object_type="transactions.ingestbatch",
            object_id=batch.pk,
            after={"merges": [{"survivor": s, "absorbed": a} for s, a in merges], "batches": batch_ids},
        )
    txn_ids = sorted([*changed, *(t.pk for t in created)])
    # Listeners judge the pass as of its latest arrival (ids grow with arrival).
    latest = max(batch_ids)
    transaction.on_commit(
        lambda: transactions_correlated.send(
            sender=Transaction, batch_id=latest, txn_ids=txn_ids, failed_event_ids=failed_event_ids
        )
    )
    for survivor_id, absorbed_ids in merges:
        transaction.on_commit(
            lambda s=survivor_id, a=absorbed_ids: transactions_merged.send(
                sender=Transaction, survivor_id=s, absorbed_ids=a, batch_id=latest
            )
        )
    result = {
        "batch_id": batch_id,
        "lead": batch.pk,
        "batches": len(batch_ids),
        "events": len(events),
        "transactions": len(txn_ids),
        "merges": len(merges),
    }
    logger.info("correlation.batch_done", extra=result)
    return result


def _refresh_state(
    txn: Transaction, processes: list[ProcessSpec], now: datetime, detected: dict[frozenset[str], ProcessSpec | None]
) -> None:
    # Which process a transaction is depends only on which (system, kind) pairs it has seen: a batch's transactions
    # share a few such sets, so each set is matched against the processes' steps once per pass.
    seen = frozenset(txn.step_facts)
    if seen not in detected:
        detected[seen] = detect_process(processes, txn.step_facts)
    spec = detected[seen]
    state = evaluate_state(spec, txn.step_facts, started_at=txn.started_at, now=now, error_count=txn.error_count)
    txn.process_id = spec.process_id if spec else None
    txn.status = state.status
    txn.next_step = state.next_step
    txn.next_due_at = state.next_due_at
    txn.updated_at = now


def transactions_mark_stalled(*, now: datetime | None = None) -> int:
    """Periodic: in-flight transactions whose next expected step is overdue become stalled."""
    now = now or timezone.now()
    with transaction.atomic():
        stalled = list(
            Transaction.objects.select_for_update(skip_locked=connection.vendor == "postgresql")
            .filter(status=TransactionStatus.IN_FLIGHT, next_due_at__lt=now)
            .values_list("id", flat=True)[:5000]
        )
        if not stalled:
            return 0
        Transaction.objects.filter(pk__in=stalled).update(
            status=TransactionStatus.STALLED, updated_at=now, version=F("version") + 1
        )
        audit_record(
            actor="system:correlation",
            action="transaction.stalled",
            object_type="transactions.transaction",
            after={"count": len(stalled), "first_ids": stalled[:50]},
        )
    transaction.on_commit(
        lambda: transactions_correlated.send(sender=Transaction, batch_id=None, txn_ids=stalled, failed_event_ids=[])
    )
    return len(stalled)
