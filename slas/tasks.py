"""Thin Celery tasks of the slas app: they take ids and call services; running one twice is harmless."""

from celery import shared_task

from slas.services import clocks
from slas.services.rollups import rollups_refresh_recent


@shared_task(acks_late=True)
def evaluate_transactions(txn_ids: list[int]) -> dict[str, int]:
    """After correlation: start, stop, pause and forecast the clocks of these transactions."""
    return clocks.clocks_evaluate_transactions(txn_ids=txn_ids)


@shared_task(acks_late=True)
def follow_merged_transactions(survivor_id: int, absorbed_ids: list[int]) -> dict[str, int]:
    """The clocks of absorbed transactions follow the survivor, which is then re-evaluated from all its events."""
    moved = clocks.clocks_follow_merge(survivor_id=survivor_id, absorbed_ids=absorbed_ids)
    return {"moved": moved, **clocks.clocks_evaluate_transactions(txn_ids=[survivor_id])}


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
