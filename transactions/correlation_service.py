"""Correlation of ingested batches into transactions (being written: see issue 4)."""

from django.utils import timezone

from transactions.models import IngestBatch


def batch_correlate(*, batch_id: int) -> dict:
    IngestBatch.objects.filter(pk=batch_id, correlated_at__isnull=True).update(correlated_at=timezone.now())
    return {"batch_id": batch_id}
