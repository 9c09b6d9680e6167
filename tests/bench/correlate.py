"""Correlation benchmark (make bench-correlate): ingest + correlate N simulated events on PostgreSQL.

Prints events/s, the per-batch correlation time when the store holds 10% of N and when it holds N (the ratio shows
whether a batch's cost grows with the store: it must stay under 1.5), and p50/p95 of the search and timeline APIs.
Correlation is timed alone; the tasks it hands on (classification, interface discovery, reconciliation, SLA
evaluation, stall and evidence checks) run after each batch, timed one by one, and are printed as the pipeline's
cost per 1,000 events (--no-follow-ups skips them, for a quicker flat-cost check).
Baselines are measured in the same run. Uses its own database (closeloop_bench), rebuilt on every run.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("LOG_LEVEL", "WARNING")

BATCH = 1000
PROBE_BATCHES = 15
SYSTEMS = ["salesforce-crm", "conga-clm", "mulesoft-ipaas", "sap-s4", "zuora-billing", "stripe-payments"]
STEPS = [
    ("salesforce-crm", "contract.approved"),
    ("sap-s4", "order.created"),
    ("zuora-billing", "invoice.posted"),
    ("stripe-payments", "payment.received"),
    ("compliance-vault", "evidence.captured"),
]


def records_for(txn_no: int, rng: random.Random, start: datetime) -> list[dict]:
    """One order-to-cash transaction: 5 steps plus 0-3 middleware spans, linked by trace and business keys."""
    trace = f"{txn_no:032x}"
    at = start + timedelta(seconds=txn_no * 7)
    keys = [
        {"contract": f"C-{txn_no}", "customer": f"CUST-{txn_no % 5000}"},
        {"contract": f"C-{txn_no}", "order": f"{txn_no:010d}"},
        {"order": f"{txn_no}", "invoice": f"INV-{txn_no}"},
        {"invoice": f"INV-{txn_no}", "payment": f"PAY-{txn_no}"},
        {"payment": f"PAY-{txn_no}"},
    ]
    records = []
    for step, ((system, kind), business_keys) in enumerate(zip(STEPS, keys, strict=True)):
        at += timedelta(minutes=rng.randint(1, 240))
        failed = rng.random() < 0.03
        records.append(
            {
                "event_id": f"{txn_no}-{step}",
                "occurred_at": at.isoformat(),
                "system": system,
                "kind": kind,
                "status": "error" if failed else "ok",
                "error": {"code": "E42", "message": "simulated failure", "type": "Bench"} if failed else None,
                "duration_ms": rng.randint(5, 900),
                "trace_id": trace if step < 2 else None,
                "span_id": f"{txn_no * 16 + step + 1:016x}" if step < 2 else None,
                "business_keys": business_keys,
                "amount": "1250.00",
                "currency": "EUR",
                "attributes": {"region": rng.choice(["EMEA", "AMER", "APAC"])},
            }
        )
    for hop in range(rng.randint(0, 3)):
        records.append(
            {
                "event_id": f"{txn_no}-hop{hop}",
                "occurred_at": (at - timedelta(minutes=hop)).isoformat(),
                "system": "mulesoft-ipaas",
                "kind": "sap.call",
                "duration_ms": rng.randint(50, 3000),
                "trace_id": trace,
                "span_id": f"{(txn_no * 16 + 8 + hop):016x}",
                "business_keys": {},
            }
        )
    return records


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-requests", type=int, default=300, help="timed requests per API (default 300)")
    parser.add_argument(
        "--no-follow-ups", dest="follow_ups", action="store_false", help="correlation only, not the tasks it hands on"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench-correlate runs on PostgreSQL: set DATABASE_URL=postgres://...")
    from django.core.management import call_command
    from django.db import connection

    _recreate_database()
    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115

    from celery import Task

    from transactions.models import Event, Transaction, TransactionKey
    from transactions.records import DecodedRecord
    from transactions.services import batch_correlate, ingest_source_create, records_ingest

    # Correlation is timed on its own below, so ingest must not also run it through the eager task; the tasks a pass
    # hands on are queued here instead of running inside it, then run and timed one by one.
    handed_on: list[tuple[Task, tuple, dict]] = []
    follow_up_seconds: dict[str, float] = {}

    def enqueue(task: Task, *task_args: object, **task_kwargs: object) -> None:
        if task.name != "transactions.tasks.correlate_batch" and args.follow_ups:
            handed_on.append((task, task_args, task_kwargs))

    Task.delay = enqueue

    def run_follow_ups() -> None:
        while handed_on:
            task, args, kwargs = handed_on.pop(0)
            t0 = time.perf_counter()
            task.run(*args, **kwargs)
            name = task.name.rsplit(".", 1)[-1]
            follow_up_seconds[name] = follow_up_seconds.get(name, 0.0) + time.perf_counter() - t0

    source = ingest_source_create(name="bench", actor="system:bench")
    rng = random.Random(args.seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pending: list[dict] = []
    txn_no = 0
    stored = 0
    ingest_seconds = correlate_seconds = 0.0
    probes: dict[str, list[float]] = {}
    probe_points = {"10%": args.events // 10, "100%": args.events}
    began = time.perf_counter()
    last_print = began

    def one_batch(records: list[dict]) -> float:
        nonlocal ingest_seconds, correlate_seconds, stored
        decoded = [DecodedRecord(i, r, f"event:{r['event_id']}", None, r) for i, r in enumerate(records)]
        t0 = time.perf_counter()
        outcome = records_ingest(source=source, channel="native", records=decoded)
        t1 = time.perf_counter()
        batch_correlate(batch_id=outcome.batch_id)
        t2 = time.perf_counter()
        run_follow_ups()
        ingest_seconds += t1 - t0
        correlate_seconds += t2 - t1
        stored += outcome.accepted
        return t2 - t1

    while stored < args.events:
        while len(pending) < BATCH:
            pending += records_for(txn_no, rng, start)
            txn_no += 1
        batch, pending = pending[:BATCH], pending[BATCH:]
        probing = [
            label
            for label, point in probe_points.items()
            if stored >= point - PROBE_BATCHES * BATCH and len(probes.get(label, [])) < PROBE_BATCHES
        ]
        if probing and not probes.get(probing[0]):
            # Both probes start from the same steady state: autovacuum catching up with a million fresh rows in
            # the middle of one probe but not the other would measure the vacuum, not the store's size.
            _vacuum()
        elapsed = one_batch(batch)
        for label in probing:
            probes.setdefault(label, []).append(elapsed)
        now = time.perf_counter()
        if now - last_print > 5:
            rate = stored / (now - began)
            print(
                f"bench: {stored:,}/{args.events:,} events, {rate:,.0f} ev/s, ETA {(args.events - stored) / rate:.0f}s"
            )
            last_print = now
    total = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    print()
    print(f"events stored:            {Event.objects.count():,} in {Transaction.objects.count():,} transactions")
    print(f"ingest + correlate:       {stored / total:,.0f} events/s ({total:.0f} s)")
    print(f"ingest only (COPY):       {stored / ingest_seconds:,.0f} events/s")
    print(f"correlation only:         {stored / correlate_seconds:,.0f} events/s")
    small, large = statistics.median(probes["10%"]), statistics.median(probes["100%"])
    print(f"per-batch correlation at {probe_points['10%']:,} events: {small * 1000:.1f} ms (median of {PROBE_BATCHES})")
    print(
        f"per-batch correlation at {probe_points['100%']:,} events: {large * 1000:.1f} ms (median of {PROBE_BATCHES})"
    )
    print(f"ratio (target < 1.5):     {large / small:.2f}")
    if follow_up_seconds:
        follow_ups = sum(follow_up_seconds.values())
        print(
            f"handed-on tasks:          {follow_ups / stored * 1000 * 1000:,.0f} ms per 1,000 events "
            f"({correlate_seconds / stored * 1000 * 1000:,.0f} ms for correlation itself)"
        )
        for name, seconds in sorted(follow_up_seconds.items(), key=lambda item: -item[1]):
            print(f"    {name + ':':<34}{seconds / stored * 1000 * 1000:,.0f} ms per 1,000 events")
        print(f"correlation + handed-on:   {stored / (correlate_seconds + follow_ups):,.0f} events/s")

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user("bench-reader")
    user.groups.add(Group.objects.get(name="finance_ops"))
    client = Client()
    client.force_login(user)
    keys = list(
        TransactionKey.objects.filter(key_type="contract").values_list("value", flat=True)[
            :: max(1, txn_no // args.api_requests)
        ]
    )
    search = _measure(client, [f"/api/v1/transactions/?business_key={k}" for k in keys[: args.api_requests]])
    txn_ids = list(
        Transaction.objects.exclude(status="merged").values_list("id", flat=True)[
            :: max(1, txn_no // args.api_requests)
        ]
    )
    timeline = _measure(client, [f"/api/v1/transactions/{i}/" for i in txn_ids[: args.api_requests]])
    listing = _measure(
        client, ["/api/v1/transactions/?status=failed", "/api/v1/transactions/"] * (args.api_requests // 6)
    )
    for label, samples in (("search by business key", search), ("timeline", timeline), ("list (first page)", listing)):
        print(
            f"{label + ' API:':<26}p50 {percentile(samples, 0.5):.1f} ms, p95 {percentile(samples, 0.95):.1f} ms "
            f"(target p95 < 100 ms, {len(samples)} requests)"
        )


def _measure(client: object, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


def _vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "transactions_event",
            "transactions_transaction",
            "transactions_transactionevent",
            "transactions_transactionkey",
            "transactions_idempotencykey",
            "transactions_ingestbatch",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("CHECKPOINT")


def _recreate_database() -> None:
    import psycopg
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    connection.close()
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')


if __name__ == "__main__":
    main()
