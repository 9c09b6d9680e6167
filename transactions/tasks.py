"""Thin Celery tasks of the transactions app: they take ids and call services; running one twice is harmless."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from transactions import partitions, selectors, services
from transactions.models import IngestBatch

# A batch still uncorrelated this long after it was stored lost its task (broker restart, worker crash).
SWEEP_GRACE = timedelta(minutes=2)
# The interface sweep leaves a transaction this long to the discovery task its correlation enqueued, then derives its
# hops itself; at most this many a run (it runs every five minutes), longest owed first.
INTERFACE_SWEEP_GRACE = timedelta(minutes=2)
INTERFACE_SWEEP_LIMIT = 5000


# One correlation pass takes other waiting batches up to this many events (single-event webhooks arrive as batches
# of one; a native batch of 1,000 runs alone).
COALESCE_EVENTS = 1000


@shared_task(acks_late=True)
def correlate_batch(batch_id: int) -> dict:
    return services.batch_correlate(batch_id=batch_id, coalesce_up_to=COALESCE_EVENTS)


@shared_task
def sweep_uncorrelated_batches(limit: int = 500) -> int:
    """Re-enqueue stored batches whose correlation never ran: the database, not the broker, is the record."""
    cutoff = timezone.now() - SWEEP_GRACE
    batch_ids = list(
        IngestBatch.objects.filter(correlated_at__isnull=True, accepted__gt=0, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
    for batch_id in batch_ids:
        correlate_batch.delay(batch_id)
    return len(batch_ids)


@shared_task(acks_late=True)
def discover_interfaces(txn_ids: list[int]) -> dict:
    return services.interface_hops_refresh(txn_ids=txn_ids)


@shared_task
def refresh_interface_rollups() -> int:
    """Rebuild the days whose hops changed, then re-derive hops the broker may have lost (the sweep below)."""
    sweep_interface_hops()
    return services.interface_rollups_refresh()


def sweep_interface_hops() -> int:
    """Transactions whose hops discovery still owes a while after correlation changed them get them derived here: a
    lost discovery task is made good, and one that ran is not repeated (it cleared the mark)."""
    before = timezone.now() - INTERFACE_SWEEP_GRACE
    txn_ids = list(selectors.transaction_ids_hops_owed(before=before, limit=INTERFACE_SWEEP_LIMIT))
    for start in range(0, len(txn_ids), 1000):
        services.interface_hops_refresh(txn_ids=txn_ids[start : start + 1000])
    return len(txn_ids)


@shared_task
def mark_stalled_transactions() -> int:
    return services.transactions_mark_stalled()


@shared_task
def maintain_event_partitions() -> list[str]:
    return partitions.event_partitions_maintain()


@shared_task
def apply_ingest_retention() -> dict[str, int]:
    return services.ingest_retention_apply()
