"""Writes of the compliance lineage: audited exports, evidence packages, and control cases for findings."""

import io
import json
from typing import IO, Any

from django.template.loader import render_to_string
from django.utils import timezone

from console.evidence import PACKAGE_FILES, csv_lines, lineage_document, package_write
from console.lib.audit import audit_record, audit_verify
from console.lineage import FINDING_CODES, Finding
from console.selectors import LineageResult
from exceptions.services import signal_record

LINEAGE_ACTOR = "system:lineage"


def lineage_export_record(*, actor: str, fmt: str, query: str, result: LineageResult) -> None:
    """Write the audit entry of an export (who, what, when, how many rows) before the file leaves."""
    audit_record(
        actor=actor,
        action="lineage.exported",
        object_type="lineage",
        object_id=query[:100],
        object_repr=f"lineage {query}"[:300],
        after={
            "format": fmt,
            "query": query,
            "rows": len(result.rows),
            "findings": len(result.findings),
            "transactions": [t["id"] for t in result.transactions],
        },
    )


def _report_html(result: LineageResult, *, exported_by: str, exported_at: str, chain: dict[str, Any]) -> bytes:
    context = {"result": result, "exported_by": exported_by, "exported_at": exported_at, "chain": chain}
    return render_to_string("console/evidence_report.html", context).encode()


def evidence_package_write(*, result: LineageResult, actor: str, out: IO[bytes]) -> dict[str, Any]:
    """Write the evidence package of a lineage into `out` and record the export; returns the manifest.

    The manifest carries the audit-chain verification at export time and the hashes of the entries the lineage
    includes, so that a reviewer can later tell whether those entries are still the ones in the database.
    """
    now = timezone.now()
    report = audit_verify()
    included = result.audit_entry_ids
    chain = {
        "ok": report.ok,
        "checked": report.checked,
        "head_hash": report.head_hash,
        "first_break": None
        if report.ok
        else {"entry_id": report.first_break.entry_id, "reason": report.first_break.reason},
        "entries_included": len(included),
        "last_included_entry": included[-1] if included else None,
    }
    document = lineage_document(
        query=result.query,
        transactions=result.transactions,
        rows=result.rows,
        findings=result.findings,
        generated_at=now,
    )
    files = dict(
        zip(
            PACKAGE_FILES,
            [
                "".join(csv_lines(result.rows)).encode(),
                json.dumps(document, indent=2).encode(),
                _report_html(result, exported_by=actor, exported_at=now.isoformat(), chain=chain),
            ],
            strict=True,
        )
    )
    manifest = package_write(
        out,
        files=files,
        manifest={
            "query": result.query,
            "exported_by": actor,
            "exported_at": now.isoformat(),
            "rows": len(result.rows),
            "findings": len(result.findings),
            "audit_chain": chain,
        },
    )
    lineage_export_record(actor=actor, fmt="evidence", query=result.query, result=result)
    return manifest


def evidence_package_bytes(*, result: LineageResult, actor: str) -> bytes:
    buffer = io.BytesIO()
    evidence_package_write(result=result, actor=actor, out=buffer)
    return buffer.getvalue()


def lineage_findings_signal(*, findings: list[Finding], actor: str = LINEAGE_ACTOR) -> int:
    """Open (or grow) a `control` case for each finding whose rule says so; repeats of a finding change nothing
    (signal_record is idempotent per key) and findings of one rule group into one case by fingerprint."""
    opened = 0
    for finding in findings:
        if not finding.opens_case:
            continue
        signal_record(
            signal_key=finding.signal_key,
            category_slug="control",
            system="closeloop",
            kind=f"lineage.{finding.code}",
            title=finding.title,
            message=f"{FINDING_CODES[finding.code]}: {finding.detail}",
            occurred_at=finding.at,
            txn_id=finding.txn_id,
            fingerprint_parts=(finding.code, finding.subject),
            actor=actor,
        )
        opened += 1
    return opened
