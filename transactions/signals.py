"""Signals the transactions app declares for the apps above it (exceptions, slas)."""

from django.dispatch import Signal

# After a batch is correlated (or transactions change state): batch_id, txn_ids, failed_event_ids.
transactions_correlated = Signal()
# When transactions merge: survivor_id, absorbed_ids (cases and SLA clocks of the absorbed follow the survivor) and
# batch_id, the batch whose correlation merged them (its arrival is the moment the survivor is judged as of).
transactions_merged = Signal()
