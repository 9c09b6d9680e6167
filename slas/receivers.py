"""Reactions to facts the transactions app announces: they only enqueue work or call this app's services."""

from typing import Any

from django.dispatch import receiver

from transactions.signals import transactions_correlated, transactions_merged

CHUNK = 1000


@receiver(transactions_correlated)
def evaluate_correlated_transactions(
    sender: Any, txn_ids: list[int], batch_id: int | None = None, **kwargs: Any
) -> None:
    from slas.tasks import evaluate_transactions

    for start in range(0, len(txn_ids), CHUNK):
        evaluate_transactions.delay(list(txn_ids[start : start + CHUNK]), batch_id)


@receiver(transactions_merged)
def follow_merged_transactions(
    sender: Any, survivor_id: int, absorbed_ids: list[int], batch_id: int | None = None, **kwargs: Any
) -> None:
    from slas.tasks import follow_merged_transactions as follow

    follow.delay(survivor_id, list(absorbed_ids), batch_id)


@receiver(transactions_correlated)
def watch_for_silence(sender: Any, txn_ids: list[int], batch_id: int | None = None, **kwargs: Any) -> None:
    """Stalls and evidence. The stall job announces stalled transactions with this same signal (batch_id None)."""
    from slas.tasks import raise_stall_cases, scan_evidence

    for start in range(0, len(txn_ids), CHUNK):
        chunk = list(txn_ids[start : start + CHUNK])
        raise_stall_cases.delay(chunk, batch_id)
        # The stall job changes no events: only correlation batches can bring triggers or evidence.
        if batch_id is not None:
            scan_evidence.delay(chunk, batch_id)
