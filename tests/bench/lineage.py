"""Lineage benchmark (make bench-lineage): an auditor's sample of N transactions exported as one evidence package.

1. Ingests and correlates N order-to-cash transactions (a contract approval, an order, a billing review, an invoice;
   one in seven approved twice by the same person, so that the segregation-of-duties rule finds something).
2. Builds the bulk evidence package of the whole period in a child process, as a worker would
   (console.services.evidence_job_run), and prints rows/s and the child's peak RSS (target: under 300 MB at 100,000
   transactions); then re-verifies the package.

Uses its own database (closeloop_bench_lineage), rebuilt on every run.
"""

import argparse
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench_lineage")

START = datetime(2026, 3, 1, tzinfo=UTC)
INGEST_BATCH = 1000
TARGET_PEAK_MB = 300


def transaction_records(n: int, rng: random.Random) -> list[dict]:
    """The four events of transaction n, keyed by its contract and order numbers."""
    at = START + timedelta(minutes=n)
    contract, order = f"C-{n}", f"SO-{n}"
    reviewer = "j.doe" if n % 7 == 0 else rng.choice(["a.lee", "b.kim", "c.ray"])

    def record(suffix: str, kind: str, minutes: int, approval: dict | None = None, **keys: str) -> dict:
        return {
            "event_id": f"{n}-{suffix}",
            "occurred_at": (at + timedelta(minutes=minutes)).isoformat(),
            "system": "salesforce-crm" if suffix in ("a", "r") else "sap-s4",
            "kind": kind,
            "status": "ok",
            "business_keys": keys,
            "entity": "DE01" if n % 2 else "FR01",
            "approval": approval,
        }

    return [
        record(
            "a",
            "contract.approved",
            0,
            {"actor": "j.doe", "decision": "approved", "step": "deal-desk"},
            contract=contract,
        ),
        record("o", "order.created", 5, contract=contract, order=order),
        record(
            "r",
            "billing.reviewed",
            9,
            {"actor": reviewer, "decision": "approved", "step": "billing-review"},
            order=order,
        ),
        record("i", "invoice.posted", 10, order=order, invoice=f"INV-{n}"),
    ]


def seed(transactions: int, *, rng: random.Random, progress: bool = False) -> tuple[datetime, datetime]:
    """Ingest and correlate the transactions and the SoD rule; returns the period that holds them all."""
    from console.models import SodRule
    from transactions.records import DecodedRecord
    from transactions.services import batch_correlate, ingest_source_create, records_ingest

    SodRule.objects.get_or_create(first_step="deal-desk", second_step="billing-review")
    source = ingest_source_create(name=f"bench-{rng.randrange(10**9)}", actor="system:bench")
    per_batch = max(1, INGEST_BATCH // 4)
    for first in range(0, transactions, per_batch):
        records = [r for n in range(first, min(transactions, first + per_batch)) for r in transaction_records(n, rng)]
        decoded = [DecodedRecord(i, r, f"event:{r['event_id']}", None, r) for i, r in enumerate(records)]
        outcome = records_ingest(source=source, channel="native", records=decoded)
        batch_correlate(batch_id=outcome.batch_id)
        if progress:
            print(f"\rseeded {min(transactions, first + per_batch):,} / {transactions:,}", end="", flush=True)
    if progress:
        print()
    return START - timedelta(days=1), START + timedelta(minutes=transactions) + timedelta(days=1)


def export(since: datetime, until: datetime, directory: str) -> dict:
    """Build the package as the worker does; returns its counts, the time it took and where it is."""
    from django.test import override_settings

    from console.models import EvidenceJob
    from console.services import evidence_job_run

    job = EvidenceJob.objects.create(requested_by="system:bench", since=since, until=until)
    began = time.perf_counter()
    with override_settings(EVIDENCE_DIR=directory):
        job = evidence_job_run(job_id=str(job.pk))
    seconds = time.perf_counter() - began
    return {
        "status": job.status,
        "error": job.error,
        "rows": job.rows,
        "transactions": job.total,
        "seconds": seconds,
        "path": job.path,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--export-only", nargs=3, metavar=("SINCE", "UNTIL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    if args.export_only:
        # The child: only the export runs here, so its peak RSS is the worker's.
        since, until, directory = args.export_only
        result = export(datetime.fromisoformat(since), datetime.fromisoformat(until), directory)
        print("|".join(str(result[k]) for k in ("status", "rows", "transactions", "seconds", "path", "error")))
        return

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench-lineage runs on PostgreSQL: set DATABASE_URL=postgres://...")
    if "bench" not in db["NAME"]:
        sys.exit(f"refusing to rebuild database {db['NAME']!r}: its name must contain 'bench'")
    from django.core.management import call_command

    from tests.bench.exceptions import _recreate_database

    _recreate_database()
    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    began = time.perf_counter()
    since, until = seed(args.transactions, rng=random.Random(args.seed), progress=True)
    print(f"seeded {args.transactions:,} transactions in {time.perf_counter() - began:.0f} s")

    with tempfile.TemporaryDirectory() as directory:
        child = subprocess.run(
            [sys.executable, __file__, "--export-only", since.isoformat(), until.isoformat(), directory],
            capture_output=True,
            text=True,
            check=True,
            # As a production worker runs: without DEBUG, which keeps the last 9,000 queries' SQL in memory.
            env={**os.environ, "DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40)},
        )
        status, rows, transactions, seconds, path, error = child.stdout.strip().splitlines()[-1].split("|")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
        if status != "done":
            sys.exit(f"export {status}: {error}")
        from console.evidence import package_verify

        check = package_verify(path)
        print(
            f"exported {int(transactions):,} transactions, {int(rows):,} rows in {float(seconds):.1f} s: "
            f"{int(rows) / float(seconds):,.0f} rows/s"
        )
        print(
            f"worker peak RSS {peak_mb:.0f} MB (target < {TARGET_PEAK_MB} MB); package "
            f"{Path(path).stat().st_size / 1e6:.1f} MB, {'verifies' if check.ok else 'BROKEN: ' + str(check.problems)}"
        )


if __name__ == "__main__":
    main()
