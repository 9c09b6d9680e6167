"""Reactions to facts the transactions app announces: they only enqueue this app's tasks."""

from typing import Any

from django.dispatch import receiver

from transactions.signals import transactions_correlated

CHUNK = 1000


@receiver(transactions_correlated, dispatch_uid="slas.silence_after_correlation")
def watch_for_silence(sender: Any, txn_ids: list[int], **kwargs: Any) -> None:
    """Stalls and evidence: the stall job announces stalled transactions with this same signal (batch_id None)."""
    from slas.tasks import raise_stall_cases, scan_evidence

    for start in range(0, len(txn_ids), CHUNK):
        chunk = list(txn_ids[start : start + CHUNK])
        raise_stall_cases.delay(chunk)
        # The stall job changes no events: only correlation batches can bring triggers or evidence.
        if kwargs.get("batch_id") is not None:
            scan_evidence.delay(chunk)
