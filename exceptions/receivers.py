"""Reactions to facts the transactions app announces: they only enqueue work or call this app's services."""

from typing import Any

from django.dispatch import receiver

from exceptions.services import occurrences_follow_transaction_merge
from exceptions.tasks import classify_failures, reconcile_transactions, resolve_recovered_cases
from transactions.signals import transactions_correlated, transactions_merged

CHUNK = 500


@receiver(transactions_correlated)
def classify_new_failures(
    sender: Any, failed_event_ids: list[int], txn_ids: list[int] | None = None, **kwargs: Any
) -> None:
    for start in range(0, len(failed_event_ids), CHUNK):
        classify_failures.delay(failed_event_ids[start : start + CHUNK])
    # Transactions that completed may close cases: a retry by the source succeeded.
    txn_ids = list(txn_ids or [])
    for start in range(0, len(txn_ids), CHUNK):
        resolve_recovered_cases.delay(txn_ids[start : start + CHUNK])
        # New events may make facts agree or disagree across systems (a late invoice, a correction).
        reconcile_transactions.delay(txn_ids[start : start + CHUNK])


@receiver(transactions_merged)
def follow_merged_transactions(sender: Any, survivor_id: int, absorbed_ids: list[int], **kwargs: Any) -> None:
    occurrences_follow_transaction_merge(survivor_id=survivor_id, absorbed_ids=absorbed_ids)
    # The absorbed transactions' reconciliation results give way to the survivor's (their keys move to it).
    reconcile_transactions.delay([survivor_id, *absorbed_ids])
