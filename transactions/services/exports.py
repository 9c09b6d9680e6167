"""Exports of transaction data: what left the console, recorded in the audit trail before the file is sent."""

from console.lib.audit import audit_record


def transactions_export_record(*, actor: str, filters: dict[str, str]) -> None:
    """Record that `actor` exported the transactions matching `filters` (the list page's query, without format)."""
    audit_record(
        actor=actor, action="transactions.exported", object_type="transactions.transaction", after={"filters": filters}
    )
