"""Console tasks: thin wrappers that call services."""

import logging

from celery import shared_task

from console.selectors import lineage_get
from console.services import audit_chain_check_record, evidence_job_run, lineage_findings_signal

logger = logging.getLogger(__name__)


@shared_task
def ping() -> str:
    """Round-trip check for the broker and worker."""
    return "pong"


@shared_task
def audit_chain_check() -> dict:
    """Periodic tamper check of the audit chain, recorded for the audit page; a break is logged as an error."""
    check = audit_chain_check_record(actor="system:audit-chain-check")
    if not check.ok:
        logger.error("audit.chain_broken", extra={"entry_id": check.break_entry_id, "reason": check.break_reason})
    return {"ok": check.ok, "checked": check.checked, "head_hash": check.head_hash}


@shared_task
def lineage_findings_check(*, txn_ids: list[int]) -> int:
    """Re-check these transactions' controls and open control cases for the findings whose rule asks for one
    (idempotent: a finding already recorded changes nothing)."""
    return lineage_findings_signal(findings=lineage_get(txn_ids=txn_ids).findings)


@shared_task
def evidence_job_build(*, job_id: str) -> str:
    """Build a bulk evidence package (idempotent: a job already claimed or done is left alone)."""
    return evidence_job_run(job_id=job_id).status
