"""SLA benchmark (make bench-slas): one evaluation pass over N running clocks, and one over M volume monitors.

1. Creates N transactions, each with a running clock of one of the default SLA definitions (started at realistic
   moments so that some go at risk and none breach), then times `clocks_evaluate_live` at a Monday noon in Berlin
   (the first pass writes every clock), a minute later (only changes of state are written) and ten minutes later
   (time drift is stored too: every running clock is written). Prints each pass's time and clocks/s (target: one
   pass under 10 s at 100,000 clocks on this 2-core machine) and the ratio to a plain SELECT of the same rows in the
   same order and chunks (what the pass reads).
2. Ingests E events over the 26 hours before that moment and creates M volume monitors of the kinds the estate
   needs (windows of working or clock time, daily deadlines, entity filters), then times `volume_monitors_evaluate`:
   one aggregate query for all of them. Prints the pass time, the counting query's, and the ratio to a plain GROUP BY
   count of the same events.

Uses its own database (closeloop_bench_slas), rebuilt on every run. `run()` works on the current database, which is
how the test suite runs it at a tiny size.
"""

import argparse
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 10.0
# Monday 30 November 2026, 12:00 in Berlin: mid working day on the default calendar ("de").
NOW = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
INGEST_BATCH = 1000
SYSTEMS = {
    "sap-s4": [
        "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1",
        "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1",
        "sap.s4.beh.supplierinvoice.v1.SupplierInvoice.Created.v1",
        "sap.s4.beh.businesspartner.v1.BusinessPartner.Created.v1",
    ],
    "mulesoft-ipaas": ["order.sync", "payment.sync", "customer.replicated", "supplier_invoice.sync"],
    "salesforce-crm": ["contract.approved", "account.created"],
    "stripe-payments": ["payment_intent.succeeded", "invoice.paid", "charge.succeeded"],
    "zuora-billing": ["invoice.posted", "invoice.cleared"],
    "avalara-tax": ["tax.calculated", "tax.committed"],
    "conga-clm": ["contract.activated"],
    "compliance-vault": ["evidence.captured", "evidence.approved"],
}
ENTITIES = ["DE01", "US01", "GB01", "FR01", "NL01", "SG01"]
Write = Callable[[str], None]


def run(*, clocks: int, monitors: int, events: int, seed: int = 7, write: Write = print) -> dict[str, float]:
    """Both measurements on the current (migrated, reference-loaded) database; returns the figures printed."""
    rng = random.Random(seed)
    figures = {}
    figures.update(_clock_pass(clocks, rng, write))
    figures.update(_volume_pass(monitors, events, rng, write))
    return figures


# ---- Clocks ---------------------------------------------------------------------------------------------------------


def _clock_pass(count: int, rng: random.Random, write: Write) -> dict[str, float]:
    from django.db.models import Count

    from console.lib.bulk import values_rows
    from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus
    from slas.models import SlaClock, SlaDefinition
    from slas.services.clocks import LIVE_CHUNK, READ_FIELDS, clocks_evaluate_live
    from transactions.models import Transaction

    definitions = list(SlaDefinition.objects.filter(is_active=True).order_by("slug"))
    if not definitions:
        raise SystemExit("no active SLA definitions: run load_reference_data first")
    began = time.perf_counter()
    txns = Transaction.objects.bulk_create(
        [Transaction(status="in_flight", started_at=NOW, last_event_at=NOW) for _ in range(count)], batch_size=5000
    )
    rows = []
    for n, txn in enumerate(txns):
        definition = definitions[n % len(definitions)]
        # Started well inside the target: four-hour SLAs this morning, the longer ones since Friday.
        if definition.target <= timedelta(hours=8):
            started = NOW - timedelta(minutes=rng.uniform(5, 210))
        else:
            started = NOW - timedelta(hours=rng.uniform(0.2, 74))
        rows.append(
            SlaClock(
                definition=definition,
                txn=txn,
                status=ClockStatus.RUNNING,
                entity=rng.choice(ENTITIES),
                started_at=started,
                start_event_id=n + 1,
            )
        )
    SlaClock.objects.bulk_create(rows, batch_size=5000)
    _analyze()
    write(f"clocks: {count:,} running clocks of {len(definitions)} definitions set up in {_since(began):.1f} s")

    # The baseline: the rows the pass reads, in its order and chunks, read the same way, and nothing else.
    began = time.perf_counter()
    last_id, read = 0, 0
    while True:
        chunk = values_rows(
            SlaClock.objects.filter(status__in=LIVE_CLOCK_STATUSES, id__gt=last_id)
            .order_by("id")
            .values_list(*READ_FIELDS)[:LIVE_CHUNK]
        )
        if not chunk:
            break
        last_id, read = chunk[-1][0], read + len(chunk)
    baseline = _since(began)

    logging.getLogger("slas").setLevel(logging.WARNING)
    passes = []
    for offset in (timedelta(0), timedelta(minutes=1), timedelta(minutes=10)):
        began = time.perf_counter()
        result = clocks_evaluate_live(now=NOW + offset)
        passes.append((_since(began), result))
    first, second, tenth = passes
    statuses = dict(SlaClock.objects.values_list("status").annotate(n=Count("id")).order_by())
    for label, (seconds, result) in (("first pass", first), ("a minute later", second), ("ten minutes on", tenth)):
        verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
        write(
            f"  {label}: {seconds:.2f} s, {result['clocks'] / max(seconds, 1e-9):,.0f} clocks/s, "
            f"{result['written']:,} written, {result['breached']:,} breached (target < {TARGET_SECONDS:g} s: {verdict})"
        )
    write(
        f"  baseline SELECT of the same {read:,} rows: {baseline:.2f} s; pass / baseline = "
        f"{first[0] / max(baseline, 1e-9):.1f}x"
    )
    write("  clocks by status after the passes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())))
    return {
        "clock_pass_seconds": first[0],
        "clock_second_pass_seconds": second[0],
        "clock_tenth_minute_pass_seconds": tenth[0],
        "clocks_per_second": first[1]["clocks"] / max(first[0], 1e-9),
        "clock_baseline_seconds": baseline,
    }


# ---- Volume monitors ------------------------------------------------------------------------------------------------


def _volume_pass(count: int, events: int, rng: random.Random, write: Write) -> dict[str, float]:
    from django.db.models import Count

    from slas.models import BusinessCalendar, VolumeMonitor
    from slas.services.monitors import volume_monitors_evaluate
    from transactions.models import Event, IngestBatch
    from transactions.partitions import event_partition_ensure
    from transactions.selectors import event_counts_by_window
    from transactions.services import ingest_source_create

    source = ingest_source_create(name="bench-slas", actor="system:bench")
    began = time.perf_counter()
    span = timedelta(hours=26)
    batches = max(1, -(-events // INGEST_BATCH))
    for b in range(batches):
        # Stored as ingest stores them (a batch per delivery, daily partitions by receive time), without the
        # correlation that ingest enqueues: it is bench-correlate's to measure, and counting does not read it.
        received = NOW - span + span * (b + 1) / batches
        event_partition_ensure(received)
        size = min(INGEST_BATCH, events - b * INGEST_BATCH)
        batch = IngestBatch.objects.create(source=source, channel="native", received_at=received, accepted=size)
        rows = []
        for i in range(size):
            system = rng.choice(list(SYSTEMS))
            n = b * INGEST_BATCH + i
            rows.append(
                Event(
                    received_at=received,
                    source=source,
                    batch=batch,
                    channel="native",
                    dedup_key=f"event:vol-{n}",
                    event_id=f"vol-{n}",
                    occurred_at=received - timedelta(seconds=rng.uniform(0, span.total_seconds() / batches)),
                    system=system,
                    kind=rng.choice(SYSTEMS[system]),
                    status="ok",
                    entity=rng.choice(ENTITIES),
                )
            )
        Event.objects.bulk_create(rows, batch_size=INGEST_BATCH)
    write(f"volume: {events:,} events over the 26 h before the pass stored in {_since(began):.1f} s")

    calendar = BusinessCalendar.objects.get(slug="de")
    windows = [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2), timedelta(hours=4)]
    monitors = []
    for n in range(count):
        system = rng.choice(list(SYSTEMS))
        kind = rng.choice([*SYSTEMS[system], "*", f"{SYSTEMS[system][0].split('.')[0]}.*"])
        daily = n % 5 == 0
        monitors.append(
            VolumeMonitor(
                slug=f"bench-{n}",
                name=f"bench monitor {n}",
                system=system,
                kind=kind,
                entity=rng.choice([*ENTITIES, "", ""]),
                calendar=calendar,
                mode="daily_deadline" if daily else "window",
                window=None if daily else rng.choice(windows),
                deadline_time=rng.choice([clock_time(6), clock_time(10), clock_time(18)]) if daily else None,
                min_count=rng.choice([1, 1, 5, 20, 200]),
                max_count=rng.choice([None, None, None, 5000]),
                working_hours_only=rng.random() < 0.7,
            )
        )
    VolumeMonitor.objects.bulk_create(monitors, batch_size=1000)
    _analyze()

    # The baseline: the same events counted per (system, kind, entity), one plain GROUP BY over the widest window.
    widest = NOW - timedelta(hours=26)
    began = time.perf_counter()
    groups = list(
        Event.objects.filter(received_at__gte=widest, occurred_at__gte=widest, occurred_at__lt=NOW)
        .values("system", "kind", "entity")
        .annotate(n=Count("id"))
        .order_by()
    )
    baseline = _since(began)
    began = time.perf_counter()
    counted = event_counts_by_window(starts=[widest, NOW - timedelta(hours=1)], until=NOW)
    two_windows = _since(began)

    logging.getLogger("slas").setLevel(logging.CRITICAL)  # cases that cannot be opened are logged per monitor
    began = time.perf_counter()
    result = volume_monitors_evaluate(now=NOW)
    seconds = _since(began)
    began = time.perf_counter()
    again = volume_monitors_evaluate(now=NOW + timedelta(minutes=1))
    steady = _since(began)
    write(
        f"  pass over {result.monitors:,} monitors: {seconds:.2f} s ({result.monitors / max(seconds, 1e-9):,.0f} "
        f"monitors/s), {result.violated:,} violated, {result.opened:,} cases opened"
    )
    write(f"  a minute later: {steady:.2f} s, {again.opened:,} opened, {again.resolved:,} resolved")
    ratio = seconds / max(baseline, 1e-9)
    write(
        f"  baseline GROUP BY of the same events ({len(groups):,} groups): {baseline:.3f} s; the counting query with "
        f"two windows ({len(counted):,} rows): {two_windows:.3f} s; pass / baseline = {ratio:.1f}x"
    )
    return {"volume_pass_seconds": seconds, "volume_baseline_seconds": baseline, "volume_steady_seconds": steady}


def _analyze() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _since(began: float) -> float:
    return time.perf_counter() - began


# ---- Command line ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clocks", type=int, default=100_000, help="running clocks to evaluate (default 100,000)")
    parser.add_argument("--monitors", type=int, default=1_000, help="volume monitors to evaluate (default 1,000)")
    parser.add_argument("--events", type=int, default=100_000, help="events in the monitors' windows (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # Set here, not on import: the test suite imports this module and must keep its own database.
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench_slas")

    import django

    django.setup()
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench-slas runs on PostgreSQL: set DATABASE_URL=postgres://...")
    if "bench" not in db["NAME"]:
        # The database is dropped and created again: never one that is not a benchmark's own.
        sys.exit(f"refusing to rebuild database {db['NAME']!r}: its name must contain 'bench'")
    from django.core.management import call_command

    _recreate_database()
    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    logging.getLogger("transactions").setLevel(logging.WARNING)
    print(f"bench-slas: {args.clocks:,} clocks, {args.monitors:,} volume monitors, {args.events:,} events")
    run(clocks=args.clocks, monitors=args.monitors, events=args.events, seed=args.seed)


def _recreate_database() -> None:
    import psycopg
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
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
