"""Thin Celery tasks of the slas app: they take ids and call services; running one twice is harmless."""

from celery import shared_task

from slas.services import clocks, evidence, monitors, stalls
from slas.services.rollups import rollups_refresh_recent
from transactions import selectors as txn_selectors


@shared_task(acks_late=True)
def evaluate_transactions(txn_ids: list[int], batch_id: int | None = None) -> dict[str, int]:
    """After correlation: start, stop, pause and forecast the clocks of these transactions, as of the batch's
    arrival: a back-dated batch (history, a replayed backlog) is judged by when it came, not by the wall clock, so a
    clock whose stop event comes in the next batch is not breached in between; the minute pass judges by now."""
    as_of = txn_selectors.ingest_batch_received_at(batch_id=batch_id) if batch_id is not None else None
    return clocks.clocks_evaluate_transactions(txn_ids=txn_ids, now=as_of)


@shared_task(acks_late=True)
def follow_merged_transactions(
    survivor_id: int, absorbed_ids: list[int], batch_id: int | None = None
) -> dict[str, int]:
    """The clocks and evidence checks of absorbed transactions follow the survivor, which is then re-evaluated as of
    the merging batch's arrival (as evaluate_transactions judges it): judged by the wall clock, a back-dated merge
    breached clocks whose stop event came in the next batch."""
    moved = clocks.clocks_follow_merge(survivor_id=survivor_id, absorbed_ids=absorbed_ids)
    checks = evidence.evidence_checks_follow_merge(survivor_id=survivor_id, absorbed_ids=absorbed_ids)
    as_of = txn_selectors.ingest_batch_received_at(batch_id=batch_id) if batch_id is not None else None
    return {
        "moved": moved,
        "evidence_checks_moved": checks,
        **clocks.clocks_evaluate_transactions(txn_ids=[survivor_id], now=as_of),
    }


@shared_task
def evaluate_live_clocks() -> dict[str, int]:
    """Every minute: elapsed and remaining business time, case pauses, at risk and breach of every live clock."""
    return clocks.clocks_evaluate_live()


@shared_task
def sweep_recent_transactions() -> dict[str, int]:
    """Every few minutes: re-evaluate recently active transactions whose evaluation task may have been lost."""
    return clocks.clocks_sweep_recent()


@shared_task
def refresh_dashboard_rollups() -> int:
    """Recompute today's and yesterday's rollups (each day replaced whole, so a repeated run changes nothing)."""
    return rollups_refresh_recent()


@shared_task(acks_late=True)
def raise_stall_cases(txn_ids: list[int], batch_id: int | None = None) -> int:
    """After the stall job (and correlation): the stalled among these transactions get their step's case."""
    as_of = txn_selectors.ingest_batch_received_at(batch_id=batch_id) if batch_id is not None else None
    return stalls.stalled_transactions_raise(txn_ids=txn_ids, as_of=as_of)


@shared_task
def sweep_stalled_transactions() -> int:
    """Every few minutes: stalled transactions whose case was never raised (lost task, back-dated batch)."""
    return stalls.stalled_transactions_sweep()


@shared_task(acks_late=True)
def scan_evidence(txn_ids: list[int], batch_id: int | None = None) -> dict[str, int]:
    """After correlation: record the evidence checks of triggers on these transactions, satisfy pending ones."""
    as_of = txn_selectors.ingest_batch_received_at(batch_id=batch_id) if batch_id is not None else None
    return evidence.evidence_monitors_scan(txn_ids=txn_ids, as_of=as_of)


@shared_task
def evaluate_volume_monitors() -> dict[str, int]:
    """Every minute: one aggregate count for every active volume monitor; cases open and resolve on change."""
    return monitors.volume_monitors_evaluate().__dict__


@shared_task
def decide_evidence_checks() -> dict[str, int]:
    """Every minute: due evidence checks without evidence become control cases."""
    return evidence.evidence_checks_decide()
