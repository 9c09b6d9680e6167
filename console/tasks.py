"""Console tasks: thin wrappers that call services."""

import logging

from celery import shared_task

from console.selectors import audit_chain_status

logger = logging.getLogger(__name__)


@shared_task
def ping() -> str:
    """Round-trip check for the broker and worker."""
    return "pong"


@shared_task
def audit_chain_check() -> dict:
    """Periodic tamper check of the audit chain; a break is logged as an error for alerting."""
    status = audit_chain_status(refresh=True)
    if status["ok"]:
        logger.info("audit.chain_ok", extra={"checked": status["checked"], "head_hash": status["head_hash"]})
    else:
        logger.error(
            "audit.chain_broken", extra={"entry_id": status["break_entry_id"], "reason": status["break_reason"]}
        )
    return {"ok": status["ok"], "checked": status["checked"], "head_hash": status["head_hash"]}
