"""Writes the console owns: `accounts` (saved views, API tokens) and `lineage` (compliance exports, evidence packages,
control cases for findings), `sod_rules`, `audit_chain` (recorded chain checks). Callers import the names from here."""

from console.services.accounts import (
    API_TOKEN_SHOWN_CHARS,
    api_token_create,
    api_tokens_revoke,
    saved_view_delete,
    saved_view_save,
)
from console.services.audit_chain import audit_chain_check_record
from console.services.evidence_jobs import evidence_job_create, evidence_job_run
from console.services.lineage import (
    evidence_package_bytes,
    evidence_package_write,
    lineage_export_record,
    lineage_findings_signal,
)
from console.services.sod_rules import sod_rule_create, sod_rule_delete, sod_rule_snapshot, sod_rule_update

__all__ = [
    "API_TOKEN_SHOWN_CHARS",
    "api_token_create",
    "api_tokens_revoke",
    "audit_chain_check_record",
    "evidence_job_create",
    "evidence_job_run",
    "evidence_package_bytes",
    "evidence_package_write",
    "lineage_export_record",
    "lineage_findings_signal",
    "saved_view_delete",
    "saved_view_save",
    "sod_rule_create",
    "sod_rule_delete",
    "sod_rule_snapshot",
    "sod_rule_update",
]
