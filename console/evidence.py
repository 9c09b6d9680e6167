"""Lineage as files: CSV and JSON shapes, the evidence package's manifest, and its verification. No database.

A package is a zip of `lineage.csv`, `lineage.json`, `report.html` and `manifest.json`; the manifest lists the SHA-256
of every other file, so one altered byte in any of them is found by `verify_evidence` (or by anyone with sha256sum).
"""

import csv
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from console.lib.exports import safe_cell
from console.lineage import Finding, LineageRow

CSV_HEADER = [
    "at",
    "kind",
    "transaction",
    "actor",
    "what",
    "system",
    "step",
    "decision",
    "detail",
    "ref",
    "link",
    "findings",
]
MANIFEST = "manifest.json"
PACKAGE_FILES = ("lineage.csv", "lineage.json", "report.html")


def csv_row(row: LineageRow) -> list[object]:
    """One lineage row as CSV cells; the findings about it are a column (codes separated by spaces)."""
    return [
        row.at.isoformat(),
        row.kind,
        row.txn_id or "",
        row.actor,
        row.what,
        row.system,
        row.step,
        row.decision,
        row.detail,
        row.ref,
        row.link,
        " ".join(row.findings),
    ]


def csv_lines(rows: Iterable[LineageRow], *, header: bool = True) -> Iterator[str]:
    """CSV text line by line, every cell neutralised against spreadsheet formulas (console.lib.exports.safe_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([safe_cell(v) for v in csv_row(row)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def row_json(row: LineageRow) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "kind": row.kind,
        "transaction": row.txn_id,
        "actor": row.actor,
        "what": row.what,
        "system": row.system,
        "step": row.step,
        "decision": row.decision,
        "detail": row.detail,
        "ref": row.ref,
        "link": row.link,
        "findings": list(row.findings),
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "title": finding.title,
        "transaction": finding.txn_id,
        "detail": finding.detail,
        "refs": list(finding.refs),
        "at": finding.at.isoformat(),
    }


def lineage_document(
    *, query: str, transactions: list[dict], rows: list[LineageRow], findings: list[Finding], generated_at: datetime
) -> dict[str, Any]:
    """The JSON export: what was asked, the transactions found, the findings and the rows in time order."""
    return {
        "query": query,
        "generated_at": generated_at.isoformat(),
        "transactions": [
            {"id": t["id"], "process": t.get("process__name"), "status": t["status"], "absorbed": t["absorbed_ids"]}
            for t in transactions
        ],
        "findings": [finding_json(f) for f in findings],
        "rows": [row_json(r) for r in rows],
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _HashingMember:
    """A zip member being written: the bytes go to the archive and into the member's SHA-256 as they pass."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.digest, self.size = stream, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.stream.write(data)


class PackageWriter:
    """Writes a package member by member, never holding a member in memory (bulk exports of 100,000 transactions),
    then the manifest with every member's SHA-256."""

    def __init__(self, out: IO[bytes]) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.files: dict[str, dict[str, Any]] = {}

    def member(self, name: str, chunks: Iterable[bytes]) -> None:
        with self.archive.open(name, "w", force_zip64=True) as stream:
            member = _HashingMember(stream)
            for chunk in chunks:
                member.write(chunk)
        self.files[name] = {"sha256": member.digest.hexdigest(), "bytes": member.size}

    def close(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        full = {**manifest, "files": dict(self.files)}
        with self.archive:
            self.archive.writestr(MANIFEST, json.dumps(full, indent=2, sort_keys=True))
        return full


def package_write(out: IO[bytes], *, files: Mapping[str, bytes], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Write the zip: the files, then manifest.json naming each file's SHA-256 and size. Returns the manifest."""
    writer = PackageWriter(out)
    for name, data in files.items():
        writer.member(name, [data])
    return writer.close(manifest)


@dataclass(frozen=True)
class PackageCheck:
    ok: bool
    problems: list[str]
    manifest: dict[str, Any] | None


def package_verify(source: str | IO[bytes]) -> PackageCheck:
    """Re-check a package: every file the manifest names is present with its SHA-256; nothing else was slipped in."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        return PackageCheck(False, [f"not a readable zip: {exc}"], None)
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            return PackageCheck(False, [f"{MANIFEST}: missing"], None)
        try:
            manifest = json.loads(archive.read(MANIFEST))
            listed = manifest["files"]
        except (ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            return PackageCheck(False, [f"{MANIFEST}: unreadable ({exc})"], None)
        problems = []
        for name, expected in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name}: missing")
                continue
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, zlib.error, EOFError):
                # A changed byte inside a compressed member fails decompression or zip's own CRC check before ours.
                problems.append(f"{name}: altered (does not match its SHA-256)")
                continue
            if sha256(data) != expected.get("sha256"):
                problems.append(f"{name}: altered (does not match its SHA-256)")
        for name in sorted(names - set(listed) - {MANIFEST}):
            problems.append(f"{name}: not listed in the manifest")
        return PackageCheck(not problems, problems, manifest)
