"""Stalled transactions become cases: one case per process step, one occurrence per stalled transaction; the case
resolves itself once none of its transactions waits at that step any more.

The transactions app only marks a transaction `stalled` (its next expected step is overdue) and announces it with
`transactions_correlated`; this module turns that status into work through the exceptions app's case machinery, so
the case is fingerprinted, routed by the routing rules and reopened on recurrence like any other.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from exceptions import services as case_services
from exceptions.choices import ActivityKind
from exceptions.selectors import (
    signal_case_ids_open_for,
    signal_keys_recorded,
    signal_occurrences_on_transactions_in,
)
from slas.choices import STALL_CATEGORY
from transactions import selectors as txn_selectors
from transactions.choices import TransactionStatus

logger = logging.getLogger(__name__)

ACTOR = "system:slas"
SWEEP_LIMIT = 2000
# Enough still-stalled occurrences to find one still waiting at the case's step; past it the case stays open.
STILL_STALLED_PROBE = 500


def stall_signal_key(*, txn_id: int, process_id: int | None, position: int | str) -> str:
    """One occurrence per transaction and step: the stall job and the sweep may announce it any number of times."""
    return f"stalled:{txn_id}:{process_id or 0}:{position}"


def stalled_transactions_raise(
    *, txn_ids: list[int], as_of: datetime | None = None, now: datetime | None = None
) -> int:
    """Raise (idempotently) the stall case of every transaction among `txn_ids` that is stalled now.

    Returns how many occurrences were signalled. Transactions in any other state are skipped: the signal is also
    sent after ordinary correlation batches, and a stalled transaction that moved on needs no case. `as_of` is the
    receive time of the batch that announced them: correlation judges "overdue" by the wall clock, so a back-dated
    batch (history, a replayed backlog) makes transactions look stalled that were not yet due when it arrived; those
    wait for the stall job or the sweep, which judge by now.
    """
    now = now or timezone.now()
    rows = [
        row
        for row in txn_selectors.transaction_steps_brief(txn_ids=sorted(set(txn_ids)), status=TransactionStatus.STALLED)
        if row["next_step"] and (as_of is None or row["next_due_at"] is None or row["next_due_at"] < as_of)
    ]
    keys = {
        row["id"]: stall_signal_key(
            txn_id=row["id"], process_id=row["process_id"], position=row["next_step"].get("position")
        )
        for row in rows
    }
    # Occurrences recorded before (announced again by a later batch or the sweep) cost one indexed read, not a call.
    recorded = signal_keys_recorded(keys=keys.values())
    signals = []
    for row in rows:
        if keys[row["id"]] in recorded:
            continue
        step = row["next_step"]
        process = row["process__name"] or "transaction"
        overdue_since = row["next_due_at"] or now
        name, position = step.get("name") or "its next step", step.get("position")
        expected = f"{step.get('kind')} from {step.get('system') or 'any system'}"
        signals.append(
            case_services.Signal(
                signal_key=keys[row["id"]],
                category_slug=STALL_CATEGORY,
                # The system expected to act; a step any system may perform is the process's own.
                system=step.get("system") or row["process__slug"] or "closeloop",
                kind=step.get("kind") or name,
                title=f"Stalled: {process} waiting for {name}",
                message=(
                    f"Transaction {row['id']} ({process}) has waited for step {position}. {name} ({expected}) since "
                    f"{overdue_since.isoformat()}, past the step's allowance."
                ),
                occurred_at=overdue_since,
                txn_id=row["id"],
                fingerprint_parts=("stalled", row["process__slug"] or "none", str(position)),
            )
        )
    # One case that cannot be opened must not stop the others (nor the correlation that announced them); the sweep
    # (every five minutes) tries again.
    raised = len(case_services.signals_record_isolated(signals, actor=ACTOR, log_event="slas.stall_case_failed"))
    if raised:
        logger.info("slas.stalls_raised", extra={"count": raised})
    moved_on = set(txn_ids) - {row["id"] for row in rows}
    if moved_on:
        stall_cases_resolve_moved_on(txn_ids=sorted(moved_on))
    return raised


def _current_stall_keys(txn_ids: list[int]) -> set[str]:
    return {
        stall_signal_key(txn_id=row["id"], process_id=row["process_id"], position=row["next_step"].get("position"))
        for row in txn_selectors.transaction_steps_brief(txn_ids=txn_ids, status=TransactionStatus.STALLED)
        if row["next_step"]
    }


def stall_cases_resolve_moved_on(*, txn_ids: list[int]) -> int:
    """Resolve the open stall cases of these transactions (which are not stalled now) that no transaction holds open
    any more: none of the case's transactions still waits at the case's step (a transaction stalled again at a later
    step has a case of that step). Each with an activity saying why. Returns how many were resolved."""
    resolved = 0
    for case_id in signal_case_ids_open_for(txn_ids=txn_ids, category_slug=STALL_CATEGORY):
        waiting = signal_occurrences_on_transactions_in(
            case_id=case_id, txn_status=TransactionStatus.STALLED, limit=STILL_STALLED_PROBE
        )
        if waiting:
            keys = {key for keys in waiting.values() for key in keys}
            if len(waiting) >= STILL_STALLED_PROBE or keys & _current_stall_keys(sorted(waiting)):
                continue
        with transaction.atomic():
            resolved += case_services.case_resolve_automatically(
                case_id=case_id,
                actor=ACTOR,
                kind=ActivityKind.STATUS,
                body="every transaction of this case moved on past the step it had stalled at",
                data={"signal": "ended", "reason": "stall_moved_on"},
            )
    if resolved:
        logger.info("slas.stall_cases_resolved", extra={"count": resolved})
    return resolved


def stalled_transactions_sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Periodic: the stall case of every (recently active) stalled transaction that has none yet. Catches what the
    announcements missed: a lost task, or transactions correlation marked stalled ahead of a back-dated batch."""
    return stalled_transactions_raise(txn_ids=txn_selectors.stalled_transaction_ids(limit=limit))


__all__ = [
    "stall_cases_resolve_moved_on",
    "stall_signal_key",
    "stalled_transactions_raise",
    "stalled_transactions_sweep",
]
