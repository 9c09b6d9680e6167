"""Thin Celery tasks of the slas app: they take ids, call a service, and running one twice is harmless."""

from celery import shared_task

from slas.services import monitors, stalls


@shared_task(acks_late=True)
def raise_stall_cases(txn_ids: list[int]) -> int:
    return stalls.stalled_transactions_raise(txn_ids=txn_ids)


@shared_task(acks_late=True)
def scan_evidence(txn_ids: list[int]) -> dict[str, int]:
    return monitors.evidence_monitors_scan(txn_ids=txn_ids)


@shared_task
def evaluate_volume_monitors() -> dict[str, int]:
    return monitors.volume_monitors_evaluate().__dict__


@shared_task
def decide_evidence_checks() -> dict[str, int]:
    return monitors.evidence_checks_decide()
