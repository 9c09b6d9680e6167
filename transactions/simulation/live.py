"""Live mode: the estate in real time through the real HTTP ingest paths of a running console.

OTLP systems export spans with the OpenTelemetry SDK (one TracerProvider per system, BatchSpanProcessor and the
OTLP/HTTP exporter), native systems POST JSON arrays to /api/v1/events, CloudEvents systems POST batches to
/api/v1/cloudevents. Each system authenticates with a token created for this run (and revoked after it) in the
database this command uses, so the console under `url` must use the same database.

Needs the dev dependencies opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http (which bring `requests`).
"""

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import requests
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from console.lib.errors import DomainError
from transactions.simulation import wire
from transactions.simulation.builder import SimEvent
from transactions.simulation.catalogue import CLOUDEVENTS, NATIVE, OTLP, SYSTEMS
from transactions.simulation.estate import Scenario, deliveries, generate
from transactions.simulation.progress import Progress, RunStats, Write
from transactions.simulation.sources import (
    simulator_sources_ensure,
    simulator_tokens_create,
    simulator_tokens_revoke,
)

# Due deliveries are collected for this long before they are sent, so that each source gets a few requests a second.
TICK = 0.25
REQUEST_TIMEOUT = 15.0
RETRIES = 3
_SPAN_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
_PATHS = {NATIVE: "/api/v1/events", CLOUDEVENTS: "/api/v1/cloudevents"}
_CONTENT_TYPES = {NATIVE: "application/json", CLOUDEVENTS: "application/cloudevents-batch+json"}


class SimulatedFailure(Exception):
    """What a simulated system's span records as its exception; its type is set from the error's own type."""


class _PlannedIds(IdGenerator):
    """Hands the SDK the ids the estate planned, so that a span is the same record whichever mode sends it."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _CountingExporter(SpanExporter):
    """Counts what the OTLP exporter delivered; the SDK itself only logs export failures."""

    def __init__(self, inner: SpanExporter, stats: RunStats, lock: threading.Lock) -> None:
        self.inner = inner
        self.stats = stats
        self.lock = lock

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        with self.lock:
            if result == SpanExportResult.SUCCESS:
                self.stats.spans_exported += len(spans)
            else:
                self.stats.spans_failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _OtlpSystem:
    """One OpenTelemetry-instrumented system: its own TracerProvider, exporter and token."""

    def __init__(self, *, system: str, url: str, token: str, stats: RunStats, lock: threading.Lock) -> None:
        self.ids = _PlannedIds()
        self.provider = TracerProvider(
            resource=Resource.create(wire.resource_attributes(system)), id_generator=self.ids
        )
        exporter = OTLPSpanExporter(
            endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(_CountingExporter(exporter, stats, lock), schedule_delay_millis=500)
        )
        self.tracer = self.provider.get_tracer(wire.SCOPE_NAME)
        self.kind = _SPAN_KINDS[SYSTEMS[system].span_kind]

    def emit(self, event: SimEvent) -> None:
        record = event.record
        trace_id = int(record["trace_id"], 16)
        context = None
        if record["parent_span_id"]:
            parent = SpanContext(
                trace_id, int(record["parent_span_id"], 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            )
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        links = [
            Link(SpanContext(int(link["trace_id"], 16), int(link["span_id"], 16), is_remote=True))
            for link in record["links"]
        ]
        start = wire.unix_nanos(event.occurred_at)
        end = start + (record["duration_ms"] or 0) * 1_000_000
        self.ids.trace_id, self.ids.span_id = trace_id, int(record["span_id"], 16)
        span = self.tracer.start_span(
            record["kind"],
            context=context,
            kind=self.kind,
            attributes=wire.span_attributes(event),
            links=links,
            start_time=start,
        )
        error = record["error"]
        if error:
            span.set_status(Status(StatusCode.ERROR, error["message"]))
            span.record_exception(
                SimulatedFailure(error["message"]), attributes={"exception.type": error["type"]}, timestamp=end
            )
        span.end(end_time=end)

    def close(self) -> None:
        self.provider.force_flush()
        self.provider.shutdown()


class _Sender:
    def __init__(self, *, url: str, tokens: dict[str, str], stats: RunStats) -> None:
        self.url = url
        self.tokens = tokens
        self.stats = stats
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.otlp = {
            name: _OtlpSystem(system=name, url=url, token=tokens[name], stats=stats, lock=self.lock)
            for name, system in SYSTEMS.items()
            if system.channel == OTLP
        }

    def send(self, events: list[SimEvent]) -> None:
        batches: dict[tuple[str, str], list[SimEvent]] = {}
        for event in events:
            batches.setdefault((event.system, event.channel), []).append(event)
        for (system, channel), batch in batches.items():
            if channel == OTLP:
                for event in batch:
                    self.otlp[system].emit(event)
            else:
                body = wire.native_body(batch) if channel == NATIVE else wire.cloudevents_body(batch)
                answer = self.post(system, channel, body)
                with self.lock:
                    self.stats.count_answer(
                        accepted=answer["accepted"], duplicates=answer["duplicates"], rejected=len(answer["rejected"])
                    )
            with self.lock:
                self.stats.count_delivery(system=system, channel=channel, count=len(batch))

    def post(self, system: str, channel: str, body: bytes) -> dict:
        url = self.url + _PATHS[channel]
        headers = {"Authorization": f"Bearer {self.tokens[system]}", "Content-Type": _CONTENT_TYPES[channel]}
        for attempt in range(1, RETRIES + 1):
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as exc:
                raise DomainError(f"cannot reach {url}: {exc}") from exc
            # Overload answers carry Retry-After: honour it, as any well-behaved sender would.
            if response.status_code in (429, 503) and attempt < RETRIES:
                time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), 10.0))
                continue
            break
        if response.status_code == 401:
            raise DomainError(
                f"{url} refused the simulator's ingest token: the console there must use this command's database "
                "(the same DATABASE_URL)"
            )
        if response.status_code != 200:
            raise DomainError(f"{url} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def close(self) -> None:
        for system in self.otlp.values():
            system.close()
        self.session.close()


def _check_reachable(url: str) -> None:
    try:
        response = requests.get(f"{url}/healthz", timeout=5)
    except requests.RequestException as exc:
        raise DomainError(
            f"nothing answers at {url} ({exc.__class__.__name__}); start the console first "
            "(make demo, or manage.py runserver) or pass --url"
        ) from exc
    if response.status_code != 200:
        raise DomainError(f"{url}/healthz answered {response.status_code}; is this a Closeloop console?")


def live_run(*, scenario: Scenario, url: str, write: Write | None = None) -> RunStats:
    """Send the scenario in real time: each delivery goes out when its moment comes, until `scenario.end`."""
    url = url.rstrip("/")
    _check_reachable(url)
    started = time.monotonic()
    transactions = list(generate(scenario))
    stats = RunStats()
    stats.count_transactions(transactions)
    queue = deliveries(transactions)
    sources = simulator_sources_ensure()
    tokens = simulator_tokens_create(sources=sources)
    deadline = started + (scenario.end - datetime.now(UTC)).total_seconds()
    progress = Progress(total=len(queue), write=write, deadline=deadline)
    sender = _Sender(url=url, tokens={name: secret for name, (_, secret) in tokens.items()}, stats=stats)
    try:
        position = 0
        while position < len(queue):
            tick_started = time.monotonic()
            now = datetime.now(UTC)
            due = []
            while position < len(queue) and queue[position].deliver_at <= now:
                due.append(queue[position])
                position += 1
            if due:
                sender.send(due)
                progress.advance(len(due))
            if position < len(queue):
                wait = (queue[position].deliver_at - datetime.now(UTC)).total_seconds()
                pause = max(wait, TICK - (time.monotonic() - tick_started))
                time.sleep(min(max(pause, 0.0), 1.0))
    finally:
        sender.close()
        simulator_tokens_revoke(tokens=tokens)
    progress.finish()
    stats.seconds = time.monotonic() - started
    return stats
