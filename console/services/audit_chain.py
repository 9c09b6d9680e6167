"""Recorded audit-chain checks: the hourly task and "Verify now" keep what they found for the audit page."""

import logging

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_verify
from console.models import AuditChainCheck

logger = logging.getLogger(__name__)


@transaction.atomic
def audit_chain_check_record(*, actor: str) -> AuditChainCheck:
    """Verify the chain now and keep the result (the audit page shows the last one; verify_audit compares heads)."""
    report = audit_verify()
    check = AuditChainCheck.objects.create(
        checked_at=timezone.now(),
        actor=actor,
        ok=report.ok,
        checked=report.checked,
        head_hash=report.head_hash,
        break_entry_id=report.first_break.entry_id if report.first_break else None,
        break_reason=report.first_break.reason[:300] if report.first_break else "",
    )
    log = logger.info if report.ok else logger.error
    log("audit.chain_checked", extra={"ok": report.ok, "checked": report.checked, "head_hash": report.head_hash})
    return check
