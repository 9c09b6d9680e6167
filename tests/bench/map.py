"""Integration map benchmark (make bench-map): p50/p95 of the map page, its interface table and the interfaces API
over a large store, and the time of a full rebuild of the map (hops, then daily rollups), on PostgreSQL.

1. Generates the store directly in the database (COPY on PostgreSQL, bulk inserts elsewhere; never through ingest,
   which bench-correlate measures): --events events in transactions that walk chains of systems of a realistic
   finance estate (CRM, iPaaS, ERP, billing, payments, tax, banks, procurement...), spread over --days days; some
   steps fail, arrive late, repeat a hand-over, or carry trace context (parent/child spans, span links).
2. Times `interface_map_rebuild` over every day (what `rebuild_interface_map` and a new installation run): deriving
   the hops of every transaction, then the daily rollups; then the rollups alone again from the stored hops.
3. Prints p50/p95 of GET /map/ (7 days, 30 days, a year, sorted by a figure), GET /api/v1/interfaces/ and
   GET /api/v1/systems/; target p95 < 500 ms. The pages read only the rollups.

Uses its own database (closeloop_bench_map), rebuilt on every run. Full size: 1,000,000 events
(BENCH_ARGS="--events 1000000", the default). With --reuse, a database a previous run left is kept: it is migrated,
its rollups are rebuilt from the stored hops (what a rollup change needs) and the pages are timed again, without
generating the store or deriving the hops again (minutes at full size); --events and --days are then ignored.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench_map")

from tests.bench.dashboards import _insert, _measure, _recreate_database, _reset_sequences, percentile  # noqa: E402

TARGET_P95_MS = 500
CHUNK = 20_000
ERROR_SHARE = 0.02
LATE_SHARE = 0.03
REPEAT_SHARE = 0.02
TRACED_SHARE = 0.4

# Chains of (system, kind, declared channel) that transactions walk, with a weight: the hand-overs between
# consecutive systems are the estate's interfaces (about 40 of them among 24 systems).
CHAINS: list[tuple[int, list[tuple[str, str, str]]]] = [
    (
        30,
        [
            ("salesforce-crm", "order.created", "api"),
            ("mulesoft-ipaas", "order.routed", "event"),
            ("sap-s4", "order.posted", "api"),
            ("sap-s4", "billing_document.created", ""),
            ("zuora-billing", "invoice.created", "api"),
            ("avalara-tax", "tax.calculated", "api"),
            ("stripe-payments", "payment.captured", "event"),
            ("sap-s4", "payment.posted", "file"),
        ],
    ),
    (
        15,
        [
            ("coupa-procurement", "purchase_order.approved", "api"),
            ("boomi-ipaas", "purchase_order.routed", "event"),
            ("sap-s4", "purchase_order.posted", "api"),
            ("coupa-procurement", "supplier_invoice.received", "api"),
            ("sap-s4", "supplier_invoice.posted", "api"),
            ("kyriba-treasury", "payment.release", "file"),
            ("jpmorgan-bank", "payment.executed", "file"),
            ("sap-s4", "bank_statement.posted", "file"),
        ],
    ),
    (
        12,
        [
            ("salesforce-crm", "customer.updated", "event"),
            ("mulesoft-ipaas", "customer.routed", "event"),
            ("sap-mdg", "customer.validated", "api"),
            ("sap-s4", "customer.replicated", "api"),
            ("zuora-billing", "account.synced", "api"),
        ],
    ),
    (
        10,
        [
            ("shopify-store", "order.created", "api"),
            ("mulesoft-ipaas", "order.routed", "event"),
            ("netsuite-erp", "order.posted", "api"),
            ("adyen-payments", "payment.captured", "event"),
            ("netsuite-erp", "payment.posted", "api"),
        ],
    ),
    (
        8,
        [
            ("sap-s4", "journal.posted", "batch"),
            ("blackline-close", "reconciliation.prepared", "batch"),
            ("workiva-reporting", "evidence.captured", "file"),
            ("compliance-vault", "evidence.archived", "api"),
        ],
    ),
    (
        8,
        [
            ("workday-hcm", "expense.approved", "api"),
            ("concur-expense", "expense.exported", "file"),
            ("sap-s4", "expense.posted", "file"),
            ("hsbc-bank", "payment.executed", "file"),
        ],
    ),
    (
        7,
        [
            ("stripe-payments", "payout.paid", "event"),
            ("boomi-ipaas", "payout.routed", "event"),
            ("netsuite-erp", "deposit.posted", "api"),
            ("blackline-close", "reconciliation.matched", "batch"),
        ],
    ),
    (
        5,
        [
            ("ariba-network", "supplier_invoice.received", "event"),
            ("sap-s4", "supplier_invoice.posted", "api"),
            ("vertex-tax", "tax.validated", "api"),
            ("sap-s4", "supplier_invoice.released", ""),
            ("kyriba-treasury", "payment.release", "file"),
        ],
    ),
    (
        5,
        [
            ("hubspot-crm", "deal.won", "api"),
            ("chargebee-billing", "subscription.created", "api"),
            ("avalara-tax", "tax.calculated", "api"),
            ("netsuite-erp", "invoice.posted", "api"),
        ],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store (default 1,000,000)")
    parser.add_argument("--days", type=int, default=365, help="days of history the store spans (default 365)")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (default 40)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the store a previous run left (migrate it, rebuild the rollups, time the pages)",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench-map runs on PostgreSQL: set DATABASE_URL=postgres://...")
    if "bench" not in db["NAME"]:
        # The database is dropped and created again: never one that is not a benchmark's own.
        sys.exit(f"refusing to rebuild database {db['NAME']!r}: its name must contain 'bench'")
    from django.core.management import call_command

    if args.reuse and _has_store():
        call_command("migrate", verbosity=0)
        results = rerun(requests=args.requests)
    else:
        _recreate_database()
        call_command("migrate", verbosity=0)
        call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        results = run(events=args.events, days=args.days, requests=args.requests, seed=args.seed)
    for line in report_lines(results):
        print(line)


def run(*, events: int, days: int, requests: int, seed: int) -> dict:
    """Generate, rebuild and measure in the current database (reference data loaded); returns the figures."""
    from django.db import connection

    from transactions.services import interface_earliest_day, interface_map_rebuild
    from transactions.services.interfaces import interface_days_rebuild, local_day

    began = time.perf_counter()
    counts = generate(events=events, days=days, rng=random.Random(seed))
    generated = time.perf_counter() - began
    _analyze(connection)
    print(f"bench: generated {counts} in {generated:.0f} s", flush=True)

    today = local_day(datetime.now(UTC))
    first = interface_earliest_day() or today
    began = time.perf_counter()
    rebuilt = interface_map_rebuild(first=first, last=today)
    rebuild = time.perf_counter() - began
    print(f"bench: rebuilt the map ({rebuilt}) in {rebuild:.1f} s", flush=True)
    _analyze(connection)
    all_days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    began = time.perf_counter()
    rows = interface_days_rebuild(days=all_days)
    rollups = time.perf_counter() - began
    print(f"bench: rebuilt the daily rollups alone ({rows:,} rows) in {rollups:.1f} s", flush=True)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # Pages are timed in a steady state, not while autovacuum and the checkpointer write out the fresh rows.
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")
        print(f"bench: vacuumed and checkpointed in {time.perf_counter() - began:.1f} s", flush=True)
    return {
        "counts": {**counts, "hops": rebuilt["hops"], "daily_rows": rows},
        "generate_s": generated,
        "rebuild_s": rebuild,
        "rollups_s": rollups,
        "rebuilt": rebuilt,
        **measure(requests, today=today),
    }


def _has_store() -> bool:
    """Whether the benchmark's database exists and holds a store a previous run generated and derived."""
    import psycopg
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname="postgres"
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('transactions_interfacehop') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT EXISTS (SELECT 1 FROM transactions_interfacehop)")
        return cursor.fetchone()[0]


def rerun(*, requests: int) -> dict:
    """Rebuild the rollups of a kept store from its hops, then time the pages (no generation, no hop derivation)."""
    from django.db import connection

    from transactions.models import Event, InterfaceHop, Transaction
    from transactions.services import interface_earliest_day
    from transactions.services.interfaces import interface_days_rebuild, local_day

    today = local_day(datetime.now(UTC))
    first = interface_earliest_day() or today
    all_days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    began = time.perf_counter()
    rows = interface_days_rebuild(days=all_days)
    rollups = time.perf_counter() - began
    print(f"bench: kept store; rebuilt the rollups from its hops ({rows:,} daily rows) in {rollups:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    transactions = Transaction.objects.count()
    hops = InterfaceHop.objects.count()
    counts = {"events": Event.objects.count(), "transactions": transactions}
    return {
        "counts": {**counts, "hops": hops, "daily_rows": rows},
        "generate_s": 0.0,
        "rebuild_s": 0.0,
        "rollups_s": rollups,
        "rebuilt": {"transactions": transactions, "hops": hops, "days": len(all_days), "kept": True},
        **measure(requests, today=today),
    }


def _analyze(connection: object) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def report_lines(results: dict) -> list[str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [f"store:                    {results['counts']}"]
    if results["rebuilt"].get("kept"):
        lines.append("map rebuild (all days):   not run (--reuse: the store and its hops were kept)")
    else:
        lines.append(
            f"map rebuild (all days):   {results['rebuild_s']:.1f} s ({results['rebuilt']['transactions']:,} "
            f"transactions, {results['rebuilt']['hops']:,} hops, {results['rebuilt']['days']} days)"
        )
    lines.append(f"rollups alone (all days): {results['rollups_s']:.1f} s, {results['counts']['daily_rows']:,} rows")
    for label, samples in results["pages"].items():
        p95 = percentile(samples, 0.95)
        verdict = "met" if p95 < TARGET_P95_MS else "MISSED"
        lines.append(
            f"{label}:\n    p50 {percentile(samples, 0.5):.1f} ms, p95 {p95:.1f} ms, max {max(samples):.1f} ms "
            f"(target p95 < {TARGET_P95_MS} ms: {verdict}; {len(samples)} requests)"
        )
    if load:
        lines.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    return lines


# ---- Generation -----------------------------------------------------------------------------------------------------


def generate(*, events: int, days: int, rng: random.Random) -> dict:
    """Fill the store; explicit ids keep every row's references simple, sequences are moved past them after."""
    from transactions.models import Event, IngestBatch, IngestSource, Transaction, TransactionEvent

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    source = IngestSource.objects.create(name="bench")
    batch = IngestBatch.objects.create(
        source=source, channel="native", received_at=now, accepted=events, correlated_at=now
    )
    weights = [w for w, _ in CHAINS]
    event_rows: list[dict] = []
    member_rows: list[dict] = []
    txn_rows: list[dict] = []
    event_id = txn_id = 0
    while event_id < events:
        txn_id += 1
        chain = rng.choices([c for _, c in CHAINS], weights=weights)[0]
        reached = len(chain) if rng.random() < 0.85 else rng.randrange(2, len(chain) + 1)
        steps = list(chain[:reached])
        if rng.random() < REPEAT_SHARE:
            steps.append(steps[-1])  # the same hand-over sent again: a duplicate
        started = start + timedelta(seconds=rng.randrange(days * 86400))
        traced = rng.random() < TRACED_SHARE
        trace_id = f"{txn_id:032x}" if traced else None
        at = started
        systems: list[str] = []
        failed = count = 0
        parent_span = None
        for position, (system, kind, channel) in enumerate(steps):
            if event_id >= events:
                break
            event_id += 1
            count += 1
            error = rng.random() < ERROR_SHARE
            failed += error
            received = at + (timedelta(hours=rng.randrange(1, 12)) if rng.random() < LATE_SHARE else timedelta(0))
            span_id = f"{event_id:016x}" if traced else None
            links = "[]"
            parent = None
            if traced and position and parent_span:
                if channel == "event" and rng.random() < 0.5:
                    links = json.dumps([{"trace_id": trace_id, "span_id": parent_span}])
                else:
                    parent = parent_span
            attributes = json.dumps({"finance.channel": channel} if channel else {})
            event_rows.append(
                {
                    "id": event_id,
                    "received_at": received,
                    "source_id": source.pk,
                    "batch_id": batch.pk,
                    "channel": "native",
                    "dedup_key": f"e:{event_id}",
                    "event_id": f"e-{event_id}",
                    "occurred_at": at,
                    "system": system,
                    "kind": kind,
                    "status": "error" if error else "ok",
                    "duration_ms": rng.randrange(20, 5000),
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "parent_span_id": parent,
                    "links": links,
                    "business_keys": "{}",
                    "attributes": attributes,
                }
            )
            member_rows.append(
                {
                    "txn_id": txn_id,
                    "event_id": event_id,
                    "event_received_at": received,
                    "occurred_at": at,
                    "system": system,
                    "kind": kind,
                    "status": "error" if error else "ok",
                }
            )
            if system not in systems:
                systems.append(system)
            parent_span = span_id
            last = at
            # Batch and file hand-overs wait hours for their run; API and event ones take seconds to minutes.
            wait = rng.randrange(600, 6 * 3600) if channel in ("batch", "file") else rng.randrange(1, 900)
            at = min(at + timedelta(seconds=wait), now)
        txn_rows.append(
            {
                "id": txn_id,
                "status": "failed" if failed else "completed",
                "started_at": started,
                "last_event_at": last,
                "event_count": count,
                "error_count": failed,
                "systems": json.dumps(systems),
                "business_keys": "{}",
                "step_facts": "{}",
                "created_at": started,
                "updated_at": last,
                "version": 1,
            }
        )
        if len(event_rows) >= CHUNK:
            _insert(Transaction, txn_rows)
            _insert(Event, event_rows)
            _insert(TransactionEvent, member_rows)
            txn_rows, event_rows, member_rows = [], [], []
    _insert(Transaction, txn_rows)
    _insert(Event, event_rows)
    _insert(TransactionEvent, member_rows)
    _reset_sequences([Transaction, Event, TransactionEvent])
    return {"events": event_id, "transactions": txn_id}


# ---- Measurement ----------------------------------------------------------------------------------------------------


def measure(requests: int, *, today: object) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-manager")
    user.groups.add(Group.objects.get(name="manager"))
    client = Client(SERVER_NAME="localhost")  # a host ALLOWED_HOSTS accepts (the test client's is "testserver")
    client.force_login(user)
    month = f"since={today - timedelta(days=29)}&until={today}"
    year = f"since={today - timedelta(days=365)}&until={today}"
    pages = {
        "map, 7 days GET /map/": "/map/",
        "map, 30 days": f"/map/?{month}",
        "map, a year (366 days)": f"/map/?{year}",
        "map, a year, table by p95 latency": f"/map/?{year}&sort=latency_p95_ms&desc=on",
        "interfaces API, default range (30 days) GET /api/v1/interfaces/": "/api/v1/interfaces/",
        "interfaces API, 30 days": f"/api/v1/interfaces/?{month}",
        "interfaces API, a year": f"/api/v1/interfaces/?{year}",
        "systems API, a year GET /api/v1/systems/": f"/api/v1/systems/?{year}",
    }
    return {"pages": {label: _measure(client, url, requests) for label, url in pages.items()}}


if __name__ == "__main__":
    main()
