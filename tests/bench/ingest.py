"""Ingest benchmark (make bench-ingest): the ingest API through gunicorn on PostgreSQL, against the database's own
speed measured in the same run.

Starts gunicorn as production runs it (gunicorn.conf.py's worker layout, DEBUG off) with a Redis broker and no Celery
worker (only ingest is timed), then sends:
  (a) single-event POSTs from 4 clients (how webhooks deliver), rate and p50/p95 latency;
  (b) native batches of 1,000 events;
  (c) OTLP/HTTP protobuf traces of 500 spans;
  (d) CloudEvents batches (application/cloudevents-batch+json) of 500 events.
Then, with the rows the server stored, the references: one INSERT + COMMIT per event from 4 connections, and a
binary COPY in batches of 1,000, both into a table shaped like the event table. Prints every figure, the ratios
(targets of issue 13: single >= 0.25x INSERT + COMMIT with p95 <= 20 ms, native >= 0.3x COPY, OTLP >= 0.2x COPY)
and each web worker's RSS (target < 300 MB).

Uses its own database (closeloop_bench_ingest), rebuilt on every run. `run()` measures against any running server
and the current database, which is how the test suite runs it at a tiny size.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CLIENTS = 4
REFERENCE_TABLE = "bench_event_reference"
# Columns a sender's record fills (the rest are defaults or the batch's); the references write the same values.
COLUMNS = (
    "received_at",
    "source_id",
    "batch_id",
    "channel",
    "dedup_key",
    "event_id",
    "occurred_at",
    "system",
    "kind",
    "status",
    "trace_id",
    "span_id",
    "links",
    "business_keys",
    "attributes",
)
Write = Callable[[str], None]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# ---- Bodies ----------------------------------------------------------------------------------------------------------


def _native(run_id: str, n: int, *, at: datetime | None = None) -> dict:
    """Event n of a run (four per contract); `at` for live traffic, else a fixed history one second apart."""
    at = at or datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "event_id": f"{run_id}-{n}",
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "system": "sap-s4",
        "kind": "invoice.posted",
        "status": "error" if n % 50 == 0 else "ok",
        "duration_ms": 120,
        "business_keys": {"contract": f"C-{n // 4}", "invoice": f"INV-{n}"},
        "entity": "DE01",
        "amount": "1250.00",
        "currency": "EUR",
        # Four invoices per contract, one per billing milestone (a contract billed four times without milestones is a
        # duplicate invoice to the default reconciliation rules: every contract would open a case).
        "attributes": {"sap.companycode": "DE01", "http.status_code": 201, "billing.milestone": f"M{n % 4 + 1}"},
    }


def _otlp(run_id: str, first: int, spans: int, *, start: int = 1_780_000_000_000_000_000) -> bytes:
    """Spans first.. of a run, five per trace, each starting 1 ms after the last from `start` (Unix ns)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    trace_base = uuid.uuid5(uuid.NAMESPACE_URL, run_id).int
    items = []
    for n in range(first, first + spans):
        items.append(
            Span(
                trace_id=((trace_base + n // 5) % (1 << 128)).to_bytes(16, "big"),
                span_id=(n + 1).to_bytes(8, "big"),
                name="order.sync",
                start_time_unix_nano=start + n * 1_000_000,
                end_time_unix_nano=start + n * 1_000_000 + 250_000_000,
                attributes=[
                    KeyValue(key="sap.salesorder", value=AnyValue(string_value=f"{n:010d}")),
                    KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
                ],
            )
        )
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="mulesoft-ipaas"))])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=items)])]
    )
    return request.SerializeToString()


def _cloudevents(run_id: str, first: int, count: int) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"{run_id}-ce-{n}",
            "source": "/default/sap.s4.beh/DE01",
            "type": "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1",
            "time": "2026-11-30T09:00:00Z",
            "datacontenttype": "application/json",
            "data": {"BillingDocument": f"{90000000 + n}", "CompanyCode": "DE01"},
        }
        for n in range(first, first + count)
    ]


# ---- Sending ---------------------------------------------------------------------------------------------------------


class Sender:
    """One client: a persistent HTTP/1.1 connection, as a webhook dispatcher or an exporter keeps one."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.token = token
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, path: str, body: bytes, content_type: str) -> float:
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
        began = time.perf_counter()
        try:
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # the server closed an idle keep-alive connection: reconnect once
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"POST {path} answered {response.status}: {content[:300]!r}")
        return elapsed


def _in_parallel(base: str, token: str, jobs: list[tuple[str, bytes, str]], clients: int) -> tuple[float, list[float]]:
    """Send the jobs from `clients` threads (each its own connection); (wall seconds, per-request latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [jobs[i::clients] for i in range(clients)]

    failures: list[BaseException] = []

    def work(chunk: list[tuple[str, bytes, str]]) -> None:
        try:
            sender = Sender(base, token)
            mine = [sender.post(*job) for job in chunk]
        except BaseException as exc:  # a refused request ends the benchmark, it is not a figure
            failures.append(exc)
            return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks if chunk]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a client failed: {failures[0]}")
    return time.perf_counter() - began, latencies


def measure_api(base: str, token: str, *, singles: int, batches: int, otlp: int, cloudevents: int) -> dict:
    run_id = uuid.uuid4().hex[:8]
    figures: dict = {}
    # Warm both workers (their first request pays for imports and connections) with a few single events.
    warm = [("/api/v1/events", json.dumps([_native(run_id + "w", n)]).encode(), "application/json") for n in range(8)]
    _in_parallel(base, token, warm, CLIENTS)

    jobs = [
        ("/api/v1/events", json.dumps([_native(run_id + "s", n)]).encode(), "application/json") for n in range(singles)
    ]
    wall, latencies = _in_parallel(base, token, jobs, CLIENTS)
    figures["single"] = {
        "events": singles,
        "seconds": wall,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
    }

    jobs = [
        (
            "/api/v1/events",
            json.dumps([_native(run_id + "b", b * 1000 + n) for n in range(1000)]).encode(),
            "application/json",
        )
        for b in range(batches)
    ]
    wall, latencies = _in_parallel(base, token, jobs, CLIENTS)
    figures["native"] = {"events": batches * 1000, "seconds": wall, "p95": percentile(latencies, 0.95)}

    jobs = [("/v1/traces", _otlp(run_id, b * 500, 500), "application/x-protobuf") for b in range(otlp)]
    wall, latencies = _in_parallel(base, token, jobs, CLIENTS)
    figures["otlp"] = {"events": otlp * 500, "seconds": wall, "p95": percentile(latencies, 0.95)}

    jobs = [
        (
            "/api/v1/cloudevents",
            json.dumps(_cloudevents(run_id, b * 500, 500)).encode(),
            "application/cloudevents-batch+json",
        )
        for b in range(cloudevents)
    ]
    wall, latencies = _in_parallel(base, token, jobs, CLIENTS)
    figures["cloudevents"] = {"events": cloudevents * 500, "seconds": wall, "p95": percentile(latencies, 0.95)}
    return figures


# ---- The database's own speed ----------------------------------------------------------------------------------------


def measure_references(database_url: str, *, singles: int, batch_rows: int) -> dict:
    """One INSERT + COMMIT per row from CLIENTS connections, and a binary COPY in batches of 1,000, of rows the server
    stored, into a table shaped like the event table (same columns, defaults and indexes; not partitioned)."""
    import psycopg

    columns = ", ".join(COLUMNS)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {REFERENCE_TABLE}")
        admin.execute(
            f"CREATE TABLE {REFERENCE_TABLE} "
            "(LIKE transactions_event INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
        rows = admin.execute(
            f"SELECT {columns} FROM transactions_event WHERE channel = 'native' ORDER BY id LIMIT %s",
            [max(singles, batch_rows)],
        ).fetchall()
        types = [
            row[0]
            for row in admin.execute(
                "SELECT atttypid::int FROM pg_attribute a JOIN unnest(%s::text[]) WITH ORDINALITY"
                " AS c(name, n) ON a.attname = c.name WHERE attrelid = %s::regclass ORDER BY c.n",
                [list(COLUMNS), REFERENCE_TABLE],
            ).fetchall()
        ]
    if not rows:
        raise SystemExit("no stored native events to take as the reference rows")
    from psycopg.types.json import Jsonb

    def adapt(row: tuple) -> tuple:
        return tuple(Jsonb(v) if isinstance(v, dict | list) else v for v in row)

    single_rows = [adapt(rows[i % len(rows)]) for i in range(singles)]
    insert = f"INSERT INTO {REFERENCE_TABLE} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    suffix = iter(range(10**9))

    def inserts(chunk: list[tuple]) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for row in chunk:
                values = list(row)
                values[COLUMNS.index("dedup_key")] = f"ref-{next(suffix)}"
                conn.execute(insert, values)  # autocommit: each its own COMMIT

    failures: list[BaseException] = []

    def guarded(chunk: list[tuple]) -> None:
        try:
            inserts(chunk)
        except BaseException as exc:  # reported below: a reference that failed must not print as a figure
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(single_rows[i::CLIENTS],)) for i in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    insert_seconds = time.perf_counter() - began
    if failures:
        raise SystemExit(f"the INSERT reference failed: {failures[0]!r}")

    copy_rows = [rows[i % len(rows)] for i in range(batch_rows)]
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {REFERENCE_TABLE}")
        conn.commit()
        began = time.perf_counter()
        for start in range(0, len(copy_rows), 1000):
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {REFERENCE_TABLE} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(types)
                for row in copy_rows[start : start + 1000]:
                    copy.write_row(row)
            conn.commit()
        copy_seconds = time.perf_counter() - began
        conn.execute(f"DROP TABLE {REFERENCE_TABLE}")
        conn.commit()
    return {
        "insert_commit": {"events": singles, "seconds": insert_seconds},
        "copy": {"events": batch_rows, "seconds": copy_seconds},
    }


def report(figures: dict, references: dict, rss_mb: list[float], write: Write = print) -> dict[str, float]:
    def rate(part: dict) -> float:
        return part["events"] / part["seconds"]

    insert_rate, copy_rate = rate(references["insert_commit"]), rate(references["copy"])
    single, native, otlp, ce = (figures[k] for k in ("single", "native", "otlp", "cloudevents"))
    ratios = {
        "single": rate(single) / insert_rate,
        "native": rate(native) / copy_rate,
        "otlp": rate(otlp) / copy_rate,
        "cloudevents": rate(ce) / copy_rate,
    }

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    write(
        f"(a) single-event POSTs, {CLIENTS} clients: {rate(single):,.0f} events/s, p50 {single['p50'] * 1000:.1f} ms, "
        f"p95 {single['p95'] * 1000:.1f} ms (target <= 20 ms: {verdict(single['p95'] <= 0.020)})"
    )
    write(f"    reference: one INSERT + COMMIT per event from {CLIENTS} connections: {insert_rate:,.0f} events/s")
    write(f"    ratio {ratios['single']:.3f}x (target >= 0.25x: {verdict(ratios['single'] >= 0.25)}; goal 0.5x)")
    write(f"(b) native batches of 1,000: {rate(native):,.0f} events/s, p95 per batch {native['p95'] * 1000:.0f} ms")
    write(f"    reference: binary COPY of the same rows in batches of 1,000: {copy_rate:,.0f} rows/s")
    write(f"    ratio {ratios['native']:.3f}x (target >= 0.3x: {verdict(ratios['native'] >= 0.3)}; goal 0.5x)")
    write(f"(c) OTLP protobuf, 500 spans a request: {rate(otlp):,.0f} spans/s, p95 {otlp['p95'] * 1000:.0f} ms")
    write(f"    ratio to COPY {ratios['otlp']:.3f}x (target >= 0.2x: {verdict(ratios['otlp'] >= 0.2)})")
    write(f"(d) CloudEvents batches of 500: {rate(ce):,.0f} events/s, p95 {ce['p95'] * 1000:.0f} ms")
    write(f"    ratio to COPY {ratios['cloudevents']:.3f}x")
    if rss_mb:
        worst = max(rss_mb)
        shown = ", ".join(f"{mb:.0f}" for mb in rss_mb)
        write(f"web worker RSS: {shown} MB (target < 300 MB: {verdict(worst < 300)})")
    return {f"{k}_ratio": v for k, v in ratios.items()}


# ---- Running it -----------------------------------------------------------------------------------------------------


def _children_rss_mb(pid: int) -> list[float]:
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(pid):
            sizes.append(int(fields.get("VmRSS", "0 kB").split()[0]) / 1024)
    return sorted(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--singles", type=int, default=4000, help="single-event POSTs (default 4,000)")
    parser.add_argument("--batches", type=int, default=40, help="native batches of 1,000 (default 40)")
    parser.add_argument("--otlp", type=int, default=40, help="OTLP requests of 500 spans (default 40)")
    parser.add_argument("--cloudevents", type=int, default=40, help="CloudEvents batches of 500 (default 40)")
    args = parser.parse_args()
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench_ingest")
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql" or "bench" not in db["NAME"]:
        sys.exit("bench-ingest runs on PostgreSQL in a database whose name contains 'bench' (it is rebuilt)")
    from tests.bench.server import gunicorn_serving
    from tests.bench.slas import _recreate_database

    _recreate_database()
    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    from transactions.models import IngestSource
    from transactions.services import ingest_token_create

    source = IngestSource.objects.create(name="bench-ingest")
    _, token = ingest_token_create(source=source, actor="system:bench")
    database_url = os.environ["DATABASE_URL"]

    env = {
        "CELERY_BROKER_URL": broker,
        # The rate limit guards production from a runaway sender; the benchmark is that sender on purpose.
        "INGEST_THROTTLE_RATE": "1000000/second",
        "LOG_LEVEL": "WARNING",
    }
    layout: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), layout)  # noqa: S102
    with gunicorn_serving(env) as (base, server):  # production's worker layout, from gunicorn.conf.py
        print(
            f"bench-ingest: gunicorn {layout['worker_class']} {layout['workers']} workers x {layout['threads']} "
            f"threads, PostgreSQL, broker {broker} (no worker); "
            f"{args.singles:,} single events, {args.batches} x 1,000 native, {args.otlp} x 500 OTLP spans, "
            f"{args.cloudevents} x 500 CloudEvents"
        )
        figures = measure_api(
            base, token, singles=args.singles, batches=args.batches, otlp=args.otlp, cloudevents=args.cloudevents
        )
        rss = _children_rss_mb(server.pid)
    references = measure_references(database_url, singles=args.singles, batch_rows=args.batches * 1000)
    report(figures, references, rss)


if __name__ == "__main__":
    main()
