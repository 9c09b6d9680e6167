"""Encode simulated events the way their systems send them: native JSON arrays, CloudEvents batches, OTLP spans.

Pure module (no Django, no ORM). History mode hands these bodies to the ingest decoders; live mode sends the JSON
bodies over HTTP and builds its spans with the OpenTelemetry SDK from the same `span_attributes`.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from transactions.simulation.builder import SimEvent
from transactions.simulation.catalogue import SYSTEMS

AttributeValue = str | bool | int | float
SCOPE_NAME = "closeloop.simulator"
ENVIRONMENT = "production"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPAN_KINDS = {
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
    "internal": Span.SPAN_KIND_INTERNAL,
}


def native_body(events: Sequence[SimEvent]) -> bytes:
    """A native API body: a JSON array of canonical events."""
    return json.dumps([event.record for event in events], separators=(",", ":")).encode("utf-8")


def cloudevents_body(events: Sequence[SimEvent]) -> bytes:
    """A CloudEvents batch-mode body (application/cloudevents-batch+json)."""
    return json.dumps([event.cloudevent for event in events], separators=(",", ":")).encode("utf-8")


def unix_nanos(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp would round away the microseconds.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def resource_attributes(system: str) -> dict[str, str]:
    return {"service.name": system, "deployment.environment.name": ENVIRONMENT}


def span_attributes(event: SimEvent) -> dict[str, AttributeValue]:
    """The span attributes that carry a canonical event (Closeloop's `finance.*` conventions, ARCHITECTURE.md)."""
    record = event.record
    attributes: dict[str, AttributeValue] = {"finance.event": record["kind"]}
    for key_type, value in record["business_keys"].items():
        attributes[f"finance.key.{key_type}"] = value
    for name in ("entity", "amount", "currency"):
        if record[name] is not None:
            attributes[f"finance.{name}"] = record[name]
    for name, value in (record["approval"] or {}).items():
        attributes[f"finance.approval.{name}"] = value
    if record["error"] and record["error"]["code"]:
        attributes["finance.error.code"] = record["error"]["code"]
    attributes.update(record["attributes"])
    return attributes


def _any_value(value: AttributeValue) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _key_values(attributes: dict[str, AttributeValue]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in attributes.items()]


def _span(event: SimEvent) -> Span:
    record = event.record
    start = unix_nanos(event.occurred_at)
    end = start + (record["duration_ms"] or 0) * 1_000_000
    span = Span(
        trace_id=bytes.fromhex(record["trace_id"]),
        span_id=bytes.fromhex(record["span_id"]),
        parent_span_id=bytes.fromhex(record["parent_span_id"]) if record["parent_span_id"] else b"",
        name=record["kind"],
        kind=_SPAN_KINDS[SYSTEMS[event.system].span_kind],
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_key_values(span_attributes(event)),
        links=[
            Span.Link(trace_id=bytes.fromhex(link["trace_id"]), span_id=bytes.fromhex(link["span_id"]))
            for link in record["links"]
        ],
    )
    error = record["error"]
    if error:
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error["message"]))
        # What the SDK's record_exception writes: the error's type and message on an "exception" event.
        span.events.append(
            Span.Event(
                name="exception",
                time_unix_nano=end,
                attributes=_key_values({"exception.type": error["type"], "exception.message": error["message"]}),
            )
        )
    return span


def otlp_traces_request(events: Sequence[SimEvent]) -> ExportTraceServiceRequest:
    """An OTLP export request carrying `events` as spans, one resource per system, as an SDK exporter batches them."""
    spans: dict[str, list[Span]] = {}
    for event in events:
        spans.setdefault(event.system, []).append(_span(event))
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_key_values(dict(resource_attributes(system)))),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name=SCOPE_NAME), spans=system_spans)],
            )
            for system, system_spans in spans.items()
        ]
    )
