"""Console tasks: thin wrappers that call services."""

import logging

from celery import shared_task

from console.lib.audit import audit_verify

logger = logging.getLogger(__name__)


@shared_task
def ping() -> str:
    """Round-trip check for the broker and worker."""
    return "pong"


@shared_task
def audit_chain_check() -> dict:
    """Periodic tamper check of the audit chain; a break is logged as an error for alerting."""
    report = audit_verify()
    if report.ok:
        logger.info("audit.chain_ok", extra={"checked": report.checked, "head_hash": report.head_hash})
    else:
        logger.error(
            "audit.chain_broken",
            extra={"entry_id": report.first_break.entry_id, "reason": report.first_break.reason},
        )
    return {"ok": report.ok, "checked": report.checked, "head_hash": report.head_hash}
