"""Retention: forget what is older than EVENT_RETENTION_DAYS, events by whole partitions (see transactions.partitions).

The dedup window is the retention period, so idempotency keys go with the events they guarded.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from console.lib.audit import audit_record
from transactions.models import DeadLetter, IdempotencyKey, IngestBatch
from transactions.partitions import event_partitions_drop_before


def ingest_retention_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Forget what is older than the retention period: events (whole partitions on PostgreSQL), keys, batches."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    removed = {"events": event_partitions_drop_before(cutoff)}
    with transaction.atomic():
        removed["idempotency_keys"] = IdempotencyKey.objects.filter(received_at__lt=cutoff).delete()[0]
        # By the latest receipt: a record a sender still repeats is still news, however old its first copy.
        removed["dead_letters"] = (
            DeadLetter.objects.annotate(latest=Coalesce("last_received_at", "received_at"))
            .filter(latest__lt=cutoff)
            .delete()[0]
        )
        removed["batches"] = (
            IngestBatch.objects.filter(received_at__lt=cutoff).exclude(correlated_at__isnull=True).delete()[0]
        )
    if any(removed.values()):
        audit_record(actor="system:retention", action="ingest.retention_applied", after={"removed": removed})
    return removed
