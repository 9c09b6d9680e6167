"""Bulk evidence packages: an auditor's sample (every transaction of a period, optionally of one legal entity) built
by a worker, streamed chunk by chunk into a zip on disk so that memory stays flat whatever the sample's size."""

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from console.evidence import CSV_HEADER, PackageWriter, csv_lines, finding_json, row_json
from console.lib.audit import audit_record, audit_verify
from console.lib.errors import DomainError
from console.models import EvidenceJob
from console.selectors import lineage_get
from transactions.selectors import transaction_ids_in_period

logger = logging.getLogger(__name__)
CHUNK = 500  # transactions per lineage read: big enough to amortise queries, small enough for flat memory


@transaction.atomic
def evidence_job_create(*, actor: str, since: datetime, until: datetime, entity: str = "") -> EvidenceJob:
    """Queue the bulk export of a period's transactions; the worker builds it (console.tasks.evidence_job_build)."""
    from console.tasks import evidence_job_build  # the task module imports this one: resolved at call time

    if until <= since:
        raise DomainError("the period ends before it starts")
    job = EvidenceJob.objects.create(requested_by=actor, since=since, until=until, entity=entity.strip())
    audit_record(
        actor=actor,
        action="evidence.requested",
        obj=job,
        after={"since": since, "until": until, "entity": job.entity},
    )
    transaction.on_commit(lambda: evidence_job_build.delay(job_id=str(job.pk)))
    return job


def _json_member(query: str, txn_ids: list[int], findings: list[dict], rows_file: Path, at: str) -> Iterator[bytes]:
    head = {"query": query, "generated_at": at, "transactions": txn_ids, "findings": findings}
    # The rows were spooled to disk during the first pass; they close the document without ever being held whole.
    yield json.dumps(head)[:-1].encode() + b', "rows": ['
    with open(rows_file, "rb") as rows:
        first = True
        for line in rows:
            yield (b"" if first else b",") + line.rstrip(b"\n")
            first = False
    yield b"]}"


def evidence_job_run(*, job_id: str, chunk: int = CHUNK) -> EvidenceJob:
    """Build the package of a pending job (a job already claimed or finished is left alone: idempotent)."""
    if not EvidenceJob.objects.filter(pk=job_id, status=EvidenceJob.Status.PENDING).update(
        status=EvidenceJob.Status.RUNNING
    ):
        return EvidenceJob.objects.get(pk=job_id)
    job = EvidenceJob.objects.get(pk=job_id)
    try:
        _build(job, chunk)
    except Exception as exc:
        logger.exception("evidence.job_failed", extra={"job_id": job_id})
        EvidenceJob.objects.filter(pk=job_id).update(
            status=EvidenceJob.Status.FAILED, error=str(exc)[:500], finished_at=timezone.now()
        )
    return EvidenceJob.objects.get(pk=job_id)


def _build(job: EvidenceJob, chunk: int) -> None:
    ids = transaction_ids_in_period(since=job.since, until=job.until, entity=job.entity)
    EvidenceJob.objects.filter(pk=job.pk).update(total=len(ids))
    query = f"{job.since:%Y-%m-%d}..{job.until:%Y-%m-%d}" + (f" entity {job.entity}" if job.entity else "")
    directory = Path(settings.EVIDENCE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{job.pk}.zip"
    findings: list[dict[str, Any]] = []
    counts = {"rows": 0, "done": 0, "audit_entries": 0}
    now = timezone.now()
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        rows_file = Path(scratch) / "rows.ndjson"
        part = Path(scratch) / "package.zip"

        def csv_member() -> Iterator[bytes]:
            yield (",".join(CSV_HEADER) + "\r\n").encode()
            with open(rows_file, "wb") as spool:
                for start in range(0, len(ids), chunk):
                    result = lineage_get(txn_ids=ids[start : start + chunk])
                    findings.extend(finding_json(f) for f in result.findings)
                    for line in csv_lines(result.rows, header=False):
                        yield line.encode()
                    for row in result.rows:
                        spool.write(json.dumps(row_json(row)).encode() + b"\n")
                    counts["rows"] += len(result.rows)
                    counts["audit_entries"] += len(result.audit_entry_ids)
                    counts["done"] = min(start + chunk, len(ids))
                    EvidenceJob.objects.filter(pk=job.pk).update(done=counts["done"], rows=counts["rows"])

        report = audit_verify()
        chain = {
            "ok": report.ok,
            "checked": report.checked,
            "head_hash": report.head_hash,
            "first_break": None
            if report.ok
            else {"entry_id": report.first_break.entry_id, "reason": report.first_break.reason},
        }
        with open(part, "wb") as out:
            writer = PackageWriter(out)
            writer.member("lineage.csv", csv_member())
            chain["entries_included"] = counts["audit_entries"]
            writer.member("lineage.json", _json_member(query, ids, findings, rows_file, now.isoformat()))
            html = render_to_string(
                "console/evidence_bulk_report.html",
                {
                    "job": job,
                    "query": query,
                    "transactions": len(ids),
                    "rows": counts["rows"],
                    "findings": findings,
                    "chain": chain,
                    "exported_at": now.isoformat(),
                },
            )
            writer.member("report.html", [html.encode()])
            writer.close(
                {
                    "query": query,
                    "exported_by": job.requested_by,
                    "exported_at": now.isoformat(),
                    "rows": counts["rows"],
                    "findings": len(findings),
                    "transactions": len(ids),
                    "audit_chain": chain,
                }
            )
        os.replace(part, final)
    digest = _file_sha256(final)
    with transaction.atomic():
        EvidenceJob.objects.filter(pk=job.pk).update(
            status=EvidenceJob.Status.DONE,
            path=str(final),
            sha256=digest,
            finished_at=timezone.now(),
            done=len(ids),
            rows=counts["rows"],
        )
        audit_record(
            actor=job.requested_by,
            action="lineage.exported",
            obj=job,
            after={
                "format": "evidence",
                "query": query,
                "rows": counts["rows"],
                "findings": len(findings),
                "transactions": len(ids),
                "sha256": digest,
            },
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
