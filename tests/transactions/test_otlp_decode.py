"""Tests for transactions.otlp: pure OTLP/HTTP decoding, no Django involved."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from transactions.otlp import (
    DecodedRecord,
    OtlpDecodeError,
    decode_logs,
    decode_traces,
    encode_response,
    encode_status,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
OTHER_TRACE_ID = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
OTHER_SPAN_ID = bytes.fromhex("1112131415161718")

START_NS = 1_779_099_302_123_456_789  # 2026-05-18T10:15:02.123456789Z
END_NS = START_NS + 250_400_000

CANONICAL_KEYS = {
    "event_id",
    "occurred_at",
    "system",
    "kind",
    "status",
    "duration_ms",
    "trace_id",
    "span_id",
    "parent_span_id",
    "links",
    "business_keys",
    "entity",
    "amount",
    "currency",
    "approval",
    "error",
    "attributes",
}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))
    return AnyValue(string_value=value)


def kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def make_span(**overrides: Any) -> Span:
    fields: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "name": "invoice.post",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": START_NS,
        "end_time_unix_nano": END_NS,
    }
    attributes = overrides.pop("attributes", {})
    fields.update(overrides)
    return Span(attributes=kvs(attributes), **fields)


def trace_request(
    *spans: Span,
    resource: dict[str, Any] | None = None,
    scope: InstrumentationScope | None = None,
) -> ExportTraceServiceRequest:
    resource_attrs = {"service.name": "erp", "deployment.environment": "prod"} if resource is None else resource
    scope_spans = ScopeSpans(spans=list(spans))
    if scope is not None:
        scope_spans.scope.CopyFrom(scope)
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=Resource(attributes=kvs(resource_attrs)), scope_spans=[scope_spans])]
    )


def make_log(**overrides: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "time_unix_nano": START_NS,
        "observed_time_unix_nano": START_NS + 5,
        "severity_number": 9,
        "severity_text": "INFO",
    }
    attributes = overrides.pop("attributes", {"finance.event": "payment.sent"})
    body = overrides.pop("body", "payment sent")
    fields.update(overrides)
    record = LogRecord(attributes=kvs(attributes), **fields)
    if body is not None:
        record.body.CopyFrom(any_value(body))
    return record


def logs_request(*records: LogRecord, resource: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    resource_attrs = {"service.name": "bank-gateway"} if resource is None else resource
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=kvs(resource_attrs)),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(name="payments"), log_records=list(records))],
            )
        ]
    )


def decode_traces_pb(request: ExportTraceServiceRequest) -> list[DecodedRecord]:
    return decode_traces(request.SerializeToString(), content_type=PROTOBUF)


def decode_logs_pb(request: ExportLogsServiceRequest) -> list[DecodedRecord]:
    return decode_logs(request.SerializeToString(), content_type=PROTOBUF)


def json_body(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def json_span(**overrides: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE_ID.hex(),
        "spanId": SPAN_ID.hex(),
        "name": "invoice.post",
        "kind": 2,
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(END_NS),
        "attributes": [{"key": "finance.event", "value": {"stringValue": "invoice.posted"}}],
    }
    span.update(overrides)
    return span


def json_traces(*spans: dict[str, Any], service: str = "erp") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "erp.tracer"}, "spans": list(spans)}],
            }
        ]
    }


# ---------------------------------------------------------------------------------------------------------------------
# Traces: protobuf
# ---------------------------------------------------------------------------------------------------------------------


def test_span_full_mapping_from_protobuf() -> None:
    span = make_span(
        parent_span_id=PARENT_ID,
        links=[Span.Link(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID)],
        attributes={
            "finance.event": "invoice.posted",
            "finance.key.invoice": "INV-1001",
            "finance.key.po": 4711,
            "finance.business_key": "BK-9",
            "finance.entity": "ACME-DE",
            "finance.amount": "1234.50",
            "finance.currency": "EUR",
            "finance.approval.actor": "alice",
            "finance.approval.decision": "approved",
            "http.route": "/invoices",
            "retry.count": 2,
            "ratio": 0.5,
            "flag": True,
            "tags": ["a", "b"],
            "nested": {"inner": 1},
            "blob": b"\x00\x01",
        },
    )
    request = trace_request(span, scope=InstrumentationScope(name="erp.tracer", version="1.0"))

    [decoded] = decode_traces_pb(request)

    assert decoded.error is None
    assert decoded.index == 0
    record = decoded.record
    assert record is not None
    assert set(record) == CANONICAL_KEYS
    assert record["event_id"] is None
    assert record["system"] == "erp"
    assert record["kind"] == "invoice.posted"
    assert record["status"] == "ok"
    assert record["error"] is None
    assert record["occurred_at"] == "2026-05-18T10:15:02.123456Z"
    assert record["duration_ms"] == 250
    assert record["trace_id"] == TRACE_ID.hex()
    assert record["span_id"] == SPAN_ID.hex()
    assert record["parent_span_id"] == PARENT_ID.hex()
    assert record["links"] == [{"trace_id": OTHER_TRACE_ID.hex(), "span_id": OTHER_SPAN_ID.hex()}]
    assert record["business_keys"] == {"invoice": "INV-1001", "po": "4711", "key": "BK-9"}
    assert record["entity"] == "ACME-DE"
    assert record["amount"] == "1234.50"
    assert record["currency"] == "EUR"
    assert record["approval"] == {"actor": "alice", "decision": "approved", "step": None}
    assert record["attributes"] == {
        "resource.deployment.environment": "prod",
        "otel.scope.name": "erp.tracer",
        "otel.span.kind": "SERVER",
        "http.route": "/invoices",
        "retry.count": 2,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", "b"],
        "nested": {"inner": 1},
        "blob": base64.b64encode(b"\x00\x01").decode(),
    }
    assert decoded.dedup_key == f"span:{TRACE_ID.hex()}:{SPAN_ID.hex()}"
    # raw must survive a JSON round trip unchanged and show ids as hex, the OTLP/JSON way
    assert json.loads(json.dumps(decoded.raw)) == decoded.raw
    assert decoded.raw["span"]["traceId"] == TRACE_ID.hex()
    assert decoded.raw["span"]["links"][0]["spanId"] == OTHER_SPAN_ID.hex()
    assert {"key": "service.name", "value": {"stringValue": "erp"}} in decoded.raw["resource"]["attributes"]


def test_span_kind_falls_back_to_name_and_optional_fields_are_empty() -> None:
    [decoded] = decode_traces_pb(trace_request(make_span(end_time_unix_nano=0, kind=Span.SPAN_KIND_UNSPECIFIED)))
    record = decoded.record
    assert record is not None
    assert record["kind"] == "invoice.post"
    assert record["duration_ms"] is None
    assert record["parent_span_id"] is None
    assert record["links"] == []
    assert record["business_keys"] == {}
    assert record["approval"] is None
    assert record["entity"] is None and record["amount"] is None and record["currency"] is None
    assert "otel.span.kind" not in record["attributes"]
    assert "otel.scope.name" not in record["attributes"]


def test_negative_duration_is_clamped_to_zero() -> None:
    [decoded] = decode_traces_pb(trace_request(make_span(end_time_unix_nano=START_NS - 1_000_000_000)))
    assert decoded.record is not None
    assert decoded.record["duration_ms"] == 0


def test_error_mapping_from_exception_event() -> None:
    span = make_span(
        status=Status(code=Status.STATUS_CODE_ERROR, message="status says no"),
        attributes={"finance.error.code": "E-42", "http.response.status_code": 502},
        events=[
            Span.Event(name="log", time_unix_nano=START_NS + 1),
            Span.Event(
                name="exception",
                time_unix_nano=START_NS + 2,
                attributes=kvs({"exception.type": "ValueError", "exception.message": "bad amount"}),
            ),
        ],
    )
    [decoded] = decode_traces_pb(trace_request(span))
    record = decoded.record
    assert record is not None
    assert record["status"] == "error"
    assert record["error"] == {"code": "E-42", "message": "bad amount", "type": "ValueError"}
    assert "finance.error.code" not in record["attributes"]
    assert record["attributes"]["http.response.status_code"] == 502


def test_error_code_falls_back_to_http_status_code_as_string() -> None:
    span = make_span(
        status=Status(code=Status.STATUS_CODE_ERROR),
        attributes={"http.response.status_code": 503},
        events=[Span.Event(name="exception", attributes=kvs({"exception.type": "Timeout"}))],
    )
    [decoded] = decode_traces_pb(trace_request(span))
    assert decoded.record is not None
    assert decoded.record["error"] == {"code": "503", "message": None, "type": "Timeout"}


def test_error_without_exception_event_uses_status_message() -> None:
    span = make_span(status=Status(code=Status.STATUS_CODE_ERROR, message="upstream timeout"))
    [decoded] = decode_traces_pb(trace_request(span))
    assert decoded.record is not None
    assert decoded.record["status"] == "error"
    assert decoded.record["error"] == {"code": None, "message": "upstream timeout", "type": None}


def test_exception_event_on_ok_span_is_not_an_error() -> None:
    span = make_span(
        status=Status(code=Status.STATUS_CODE_OK),
        events=[Span.Event(name="exception", attributes=kvs({"exception.type": "Retried"}))],
    )
    [decoded] = decode_traces_pb(trace_request(span))
    assert decoded.record is not None
    assert decoded.record["status"] == "ok"
    assert decoded.record["error"] is None


def test_missing_service_name_rejects_record() -> None:
    [decoded] = decode_traces_pb(trace_request(make_span(), resource={"host.name": "x"}))
    assert decoded.record is None
    assert decoded.dedup_key is None
    assert decoded.error == "resource has no service.name"
    assert decoded.raw["span"]["name"] == "invoice.post"


def test_missing_start_time_rejects_record() -> None:
    [decoded] = decode_traces_pb(trace_request(make_span(start_time_unix_nano=0)))
    assert decoded.record is None
    assert decoded.error == "span has no start time"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"trace_id": TRACE_ID[:8]}, "trace id must be 16 bytes"),
        ({"trace_id": b"\x00" * 16}, "trace id is all zeros"),
        ({"trace_id": b""}, "trace id is missing"),
        ({"span_id": SPAN_ID + b"\x01"}, "span id must be 8 bytes"),
        ({"span_id": b"\x00" * 8}, "span id is all zeros"),
        ({"parent_span_id": b"\x01\x02"}, "parent span id must be 8 bytes"),
        ({"links": [Span.Link(trace_id=OTHER_TRACE_ID, span_id=b"\x01")]}, "link 0 span id must be 8 bytes"),
    ],
)
def test_bad_id_rejects_only_that_span(overrides: dict[str, Any], fragment: str) -> None:
    good_before = make_span(span_id=OTHER_SPAN_ID)
    bad = make_span(**overrides)
    good_after = make_span(span_id=bytes.fromhex("2122232425262728"))

    results = decode_traces_pb(trace_request(good_before, bad, good_after))

    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].record is not None and results[2].record is not None
    assert results[1].record is None
    assert results[1].dedup_key is None
    assert results[1].error is not None and fragment in results[1].error


def test_all_zero_parent_span_id_means_root() -> None:
    [decoded] = decode_traces_pb(trace_request(make_span(parent_span_id=b"\x00" * 8)))
    assert decoded.record is not None
    assert decoded.record["parent_span_id"] is None


def test_index_follows_resource_scope_span_traversal() -> None:
    request = trace_request(make_span(name="a"), make_span(name="b"))
    second = trace_request(make_span(name="c"), resource={"service.name": "bank"})
    request.resource_spans.extend(second.resource_spans)
    request.resource_spans[0].scope_spans.append(ScopeSpans(spans=[make_span(name="a2")]))

    results = decode_traces_pb(request)

    assert [(r.index, r.record["kind"] if r.record else None) for r in results] == [
        (0, "a"),
        (1, "b"),
        (2, "a2"),
        (3, "c"),
    ]
    assert results[3].record is not None and results[3].record["system"] == "bank"


def test_span_attribute_wins_over_resource_prefixed_collision() -> None:
    span = make_span(attributes={"resource.deployment.environment": "from-span"})
    [decoded] = decode_traces_pb(trace_request(span))
    assert decoded.record is not None
    assert decoded.record["attributes"]["resource.deployment.environment"] == "from-span"


# ---------------------------------------------------------------------------------------------------------------------
# Traces: JSON
# ---------------------------------------------------------------------------------------------------------------------


def test_json_hex_ids_upper_case_string_ints_enum_ints_and_unknown_fields() -> None:
    span = json_span(
        traceId=TRACE_ID.hex().upper(),
        spanId=SPAN_ID.hex().upper(),
        parentSpanId=PARENT_ID.hex(),
        status={"code": 2, "message": "boom"},
        links=[{"traceId": OTHER_TRACE_ID.hex().upper(), "spanId": OTHER_SPAN_ID.hex(), "futureField": 1}],
        somethingNew={"nested": True},
    )
    document = json_traces(span)
    document["futureTopLevel"] = "ignored"

    [decoded] = decode_traces(json_body(document), content_type=JSON)

    record = decoded.record
    assert decoded.error is None
    assert record is not None
    assert record["trace_id"] == TRACE_ID.hex()
    assert record["span_id"] == SPAN_ID.hex()
    assert record["parent_span_id"] == PARENT_ID.hex()
    assert record["links"] == [{"trace_id": OTHER_TRACE_ID.hex(), "span_id": OTHER_SPAN_ID.hex()}]
    assert record["occurred_at"] == "2026-05-18T10:15:02.123456Z"
    assert record["duration_ms"] == 250
    assert record["kind"] == "invoice.posted"
    assert record["status"] == "error"
    assert record["error"] == {"code": None, "message": "boom", "type": None}
    assert record["attributes"]["otel.span.kind"] == "SERVER"
    assert record["attributes"]["otel.scope.name"] == "erp.tracer"
    assert decoded.dedup_key == f"span:{TRACE_ID.hex()}:{SPAN_ID.hex()}"
    assert decoded.raw["span"]["traceId"] == TRACE_ID.hex()


def test_json_accepts_numbers_enum_names_and_snake_case_keys() -> None:
    document = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "erp"}}]},
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": TRACE_ID.hex(),
                                "span_id": SPAN_ID.hex(),
                                "parent_span_id": "",
                                "name": "invoice.post",
                                "kind": "SPAN_KIND_CLIENT",
                                "start_time_unix_nano": START_NS,
                                "end_time_unix_nano": END_NS,
                                "status": {"code": "STATUS_CODE_ERROR"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    [decoded] = decode_traces(json_body(document), content_type=JSON)
    record = decoded.record
    assert record is not None
    assert record["trace_id"] == TRACE_ID.hex()
    assert record["parent_span_id"] is None
    assert record["attributes"]["otel.span.kind"] == "CLIENT"
    assert record["status"] == "error"
    assert record["occurred_at"] == "2026-05-18T10:15:02.123456Z"


def test_json_and_protobuf_decode_identically() -> None:
    span = make_span(
        parent_span_id=PARENT_ID,
        links=[Span.Link(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID)],
        status=Status(code=Status.STATUS_CODE_ERROR, message="x"),
        attributes={"finance.event": "invoice.posted", "finance.key.invoice": "INV-1", "n": 5, "l": [1, "a"]},
    )
    request = trace_request(span, scope=InstrumentationScope(name="s"))
    # Produce spec-compliant OTLP/JSON: protobuf's own JSON uses base64 ids, OTLP/JSON uses hex.
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    doc_span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    doc_span["traceId"] = TRACE_ID.hex()
    doc_span["spanId"] = SPAN_ID.hex()
    doc_span["parentSpanId"] = PARENT_ID.hex()
    doc_span["links"][0] = {"traceId": OTHER_TRACE_ID.hex(), "spanId": OTHER_SPAN_ID.hex()}

    from_pb = decode_traces_pb(request)
    from_json = decode_traces(json_body(document), content_type=JSON)

    assert from_pb == from_json


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("traceId", base64.b64encode(TRACE_ID).decode(), "traceId is not a hex string"),
        ("traceId", "W47/95gDgQPSabYzgT/GDA", "traceId is not a hex string"),
        ("traceId", TRACE_ID.hex()[:-2], "trace id must be 16 bytes"),
        ("traceId", TRACE_ID.hex() + "0", "traceId is not a hex string"),
        ("traceId", "0" * 32, "trace id is all zeros"),
        ("traceId", 12345, "traceId must be a hex string"),
        ("spanId", "0x" + SPAN_ID.hex()[2:], "spanId is not a hex string"),
        ("spanId", "00" * 8, "span id is all zeros"),
        ("spanId", SPAN_ID.hex() * 2, "span id must be 8 bytes"),
        ("parentSpanId", "zz" * 8, "parentSpanId is not a hex string"),
    ],
)
def test_json_bad_id_rejects_only_that_span(field: str, value: Any, fragment: str) -> None:
    bad = json_span(**{field: value})
    good = json_span(spanId=OTHER_SPAN_ID.hex())

    results = decode_traces(json_body(json_traces(good, bad, good)), content_type=JSON)

    assert [r.record is not None for r in results] == [True, False, True]
    assert results[1].error is not None and fragment in results[1].error
    # unparseable ids are kept verbatim for the dead-letter store; parseable ones are normalised to lowercase hex
    expected_raw = value if "hex string" in fragment else value.lower()
    assert results[1].raw["span"][field] == expected_raw


def test_json_bad_link_id_rejects_span_and_keeps_original_in_raw() -> None:
    bad = json_span(links=[{"traceId": "not-hex", "spanId": OTHER_SPAN_ID.hex()}])
    [decoded] = decode_traces(json_body(json_traces(bad)), content_type=JSON)
    assert decoded.record is None
    assert decoded.error is not None and "links.0.traceId" in decoded.error
    assert decoded.raw["span"]["links"][0] == {"traceId": "not-hex", "spanId": OTHER_SPAN_ID.hex()}


def test_json_null_id_is_treated_as_absent() -> None:
    [decoded] = decode_traces(json_body(json_traces(json_span(parentSpanId=None))), content_type=JSON)
    assert decoded.record is not None
    assert decoded.record["parent_span_id"] is None


def test_json_duplicate_camel_and_snake_keys_is_a_decode_error() -> None:
    document = json_traces(json_span())
    document["resource_spans"] = document["resourceSpans"]
    with pytest.raises(OtlpDecodeError, match="both"):
        decode_traces(json_body(document), content_type=JSON)


# ---------------------------------------------------------------------------------------------------------------------
# Whole-body errors and empty requests
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decode", [decode_traces, decode_logs])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe\xfd not protobuf", PROTOBUF),
        (b"\x0a\x05\x0a\x03", PROTOBUF),  # truncated nested message
        (b"not json", JSON),
        (b"\xff\xfe\x00garbage", JSON),
        (b"[1, 2, 3]", JSON),
        (b'"a string"', JSON),
        (b"42", JSON),
        (b"null", JSON),
        (b'{"resourceSpans": 5, "resourceLogs": 5}', JSON),
        (b'{"resourceSpans": [1], "resourceLogs": [1]}', JSON),
        (b'{"resourceSpans": [{"scopeSpans": "x"}], "resourceLogs": [{"scopeLogs": "x"}]}', JSON),
        (b"{}", "text/plain"),
    ],
)
def test_garbage_body_raises_decode_error(decode: Any, body: bytes, content_type: str) -> None:
    with pytest.raises(OtlpDecodeError) as excinfo:
        decode(body, content_type=content_type)
    assert str(excinfo.value)


def test_json_negative_timestamp_is_a_decode_error() -> None:
    with pytest.raises(OtlpDecodeError):
        decode_traces(json_body(json_traces(json_span(startTimeUnixNano="-1"))), content_type=JSON)


@pytest.mark.parametrize("decode", [decode_traces, decode_logs])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", PROTOBUF), (b"", JSON), (b"  \n", JSON), (b"{}", JSON)],
)
def test_empty_body_or_request_decodes_to_nothing(decode: Any, body: bytes, content_type: str) -> None:
    assert decode(body, content_type=content_type) == []


def test_empty_request_messages_decode_to_nothing() -> None:
    assert decode_traces_pb(ExportTraceServiceRequest()) == []
    assert decode_logs_pb(ExportLogsServiceRequest()) == []
    assert decode_traces(json_body({"resourceSpans": []}), content_type=JSON) == []
    assert decode_logs(json_body({"resourceLogs": [{"scopeLogs": [{"logRecords": []}]}]}), content_type=JSON) == []


# ---------------------------------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------------------------------


def test_log_mapping_info_record() -> None:
    record_pb = make_log(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        attributes={"finance.event": "payment.sent", "finance.key.payment": "PAY-7", "finance.amount": 99.5},
    )
    [decoded] = decode_logs_pb(logs_request(record_pb, resource={"service.name": "bank-gateway", "region": "eu"}))

    record = decoded.record
    assert decoded.error is None
    assert record is not None
    assert set(record) == CANONICAL_KEYS
    assert record["system"] == "bank-gateway"
    assert record["kind"] == "payment.sent"
    assert record["status"] == "ok"
    assert record["error"] is None
    assert record["occurred_at"] == "2026-05-18T10:15:02.123456Z"
    assert record["duration_ms"] is None
    assert record["trace_id"] == TRACE_ID.hex()
    assert record["span_id"] == SPAN_ID.hex()
    assert record["parent_span_id"] is None
    assert record["links"] == []
    assert record["business_keys"] == {"payment": "PAY-7"}
    assert record["amount"] == "99.5"
    assert record["attributes"] == {
        "resource.region": "eu",
        "otel.scope.name": "payments",
        "log.body": "payment sent",
        "log.severity": "INFO",
    }
    assert decoded.dedup_key is not None and decoded.dedup_key.startswith("log:")
    assert len(decoded.dedup_key) == len("log:") + 64
    assert decoded.raw["logRecord"]["traceId"] == TRACE_ID.hex()
    assert json.loads(json.dumps(decoded.raw)) == decoded.raw


@pytest.mark.parametrize(
    ("severity", "status"),
    [(0, "ok"), (9, "ok"), (13, "ok"), (16, "ok"), (17, "error"), (21, "error"), (24, "error")],
)
def test_log_severity_maps_to_status(severity: int, status: str) -> None:
    [decoded] = decode_logs_pb(logs_request(make_log(severity_number=severity)))
    assert decoded.record is not None
    assert decoded.record["status"] == status
    assert (decoded.record["error"] is None) == (status == "ok")


def test_log_error_from_exception_attributes() -> None:
    log = make_log(
        severity_number=17,
        severity_text="ERROR",
        attributes={
            "finance.event": "payment.failed",
            "exception.type": "BankRejected",
            "exception.message": "IBAN invalid",
            "error.code": "AC01",
        },
    )
    [decoded] = decode_logs_pb(logs_request(log))
    assert decoded.record is not None
    assert decoded.record["status"] == "error"
    assert decoded.record["error"] == {"code": "AC01", "message": "IBAN invalid", "type": "BankRejected"}
    assert decoded.record["attributes"]["log.severity"] == "ERROR"


def test_log_error_message_falls_back_to_body() -> None:
    log = make_log(severity_number=18, body="could not reach bank")
    [decoded] = decode_logs_pb(logs_request(log))
    assert decoded.record is not None
    assert decoded.record["error"] == {"code": None, "message": "could not reach bank", "type": None}


def test_log_structured_body_goes_to_attributes() -> None:
    [decoded] = decode_logs_pb(logs_request(make_log(body={"msg": "hi", "n": [1, 2]})))
    assert decoded.record is not None
    assert decoded.record["attributes"]["log.body"] == {"msg": "hi", "n": [1, 2]}


def test_log_kind_resolution_order() -> None:
    records = [
        make_log(event_name="from.field", attributes={"finance.event": "from.finance", "event.name": "from.attr"}),
        make_log(event_name="from.field", attributes={"event.name": "from.attr"}),
        make_log(attributes={"event.name": "from.attr"}),
        make_log(attributes={"other": 1}),
    ]
    results = decode_logs_pb(logs_request(*records))
    assert [r.record["kind"] if r.record else None for r in results] == [
        "from.finance",
        "from.field",
        "from.attr",
        None,
    ]
    assert results[3].error == "log record has no finance.event or event name"


def test_log_time_falls_back_to_observed_time_and_rejects_without_any() -> None:
    results = decode_logs_pb(
        logs_request(
            make_log(time_unix_nano=0, observed_time_unix_nano=START_NS),
            make_log(time_unix_nano=0, observed_time_unix_nano=0),
        )
    )
    assert results[0].record is not None
    assert results[0].record["occurred_at"] == "2026-05-18T10:15:02.123456Z"
    assert results[1].record is None
    assert results[1].error is not None and "time" in results[1].error


def test_log_ids_optional_but_validated() -> None:
    results = decode_logs_pb(
        logs_request(
            make_log(),
            make_log(trace_id=b"\x00" * 16, span_id=b"\x00" * 8),
            make_log(trace_id=TRACE_ID[:4]),
            make_log(trace_id=TRACE_ID, span_id=SPAN_ID[:7]),
        )
    )
    assert results[0].record is not None and results[0].record["trace_id"] is None
    assert results[1].record is not None and results[1].record["trace_id"] is None
    assert results[2].record is None and results[2].error is not None and "trace id" in results[2].error
    assert results[3].record is None and results[3].error is not None and "span id" in results[3].error


def test_log_missing_service_name_rejects() -> None:
    [decoded] = decode_logs_pb(logs_request(make_log(), resource={}))
    assert decoded.error == "resource has no service.name"


def test_log_json_with_hex_ids_and_string_ints() -> None:
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bank-gateway"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(START_NS),
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "traceId": TRACE_ID.hex().upper(),
                                "spanId": SPAN_ID.hex(),
                                "body": {"stringValue": "declined"},
                                "attributes": [{"key": "finance.event", "value": {"stringValue": "payment.failed"}}],
                                "unknown": [1, 2, 3],
                            },
                            {"timeUnixNano": START_NS, "traceId": "W47/95gDgQPSabYzgT/GDA==", "eventName": "x"},
                        ]
                    }
                ],
            }
        ]
    }
    first, second = decode_logs(json_body(document), content_type=JSON)
    assert first.record is not None
    assert first.record["trace_id"] == TRACE_ID.hex()
    assert first.record["status"] == "error"
    assert first.record["error"] == {"code": None, "message": "declined", "type": None}
    assert second.record is None
    assert second.error is not None and "traceId is not a hex string" in second.error
    assert second.raw["logRecord"]["traceId"] == "W47/95gDgQPSabYzgT/GDA=="


def test_log_dedup_key_stable_for_identical_records_and_distinct_otherwise() -> None:
    first = decode_logs_pb(logs_request(make_log(), make_log()))
    again = decode_logs_pb(logs_request(make_log()))
    different_body = decode_logs_pb(logs_request(make_log(body="payment sent twice")))
    different_time = decode_logs_pb(logs_request(make_log(time_unix_nano=START_NS + 1)))
    different_resource = decode_logs_pb(logs_request(make_log(), resource={"service.name": "other"}))

    key = first[0].dedup_key
    assert key is not None
    assert first[1].dedup_key == key
    assert again[0].dedup_key == key
    assert different_body[0].dedup_key != key
    assert different_time[0].dedup_key != key
    assert different_resource[0].dedup_key != key


def test_log_dedup_key_is_the_same_for_json_and_protobuf() -> None:
    request = logs_request(make_log(trace_id=TRACE_ID, span_id=SPAN_ID))
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    doc_record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    doc_record["traceId"] = TRACE_ID.hex().upper()
    doc_record["spanId"] = SPAN_ID.hex()

    [from_pb] = decode_logs_pb(request)
    [from_json] = decode_logs(json_body(document), content_type=JSON)
    assert from_pb.dedup_key == from_json.dedup_key
    assert from_pb == from_json


# ---------------------------------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "response_cls", "counter"),
    [
        ("traces", ExportTraceServiceResponse, "rejected_spans"),
        ("logs", ExportLogsServiceResponse, "rejected_log_records"),
    ],
)
def test_encode_response_partial_success_round_trips(signal: str, response_cls: Any, counter: str) -> None:
    body = encode_response(signal=signal, rejected=3, message="3 records rejected", content_type=PROTOBUF)
    parsed = response_cls.FromString(body)
    assert parsed.HasField("partial_success")
    assert getattr(parsed.partial_success, counter) == 3
    assert parsed.partial_success.error_message == "3 records rejected"

    json_bytes = encode_response(signal=signal, rejected=3, message="3 records rejected", content_type=JSON)
    from_json = json_format.Parse(json_bytes, response_cls())
    assert from_json == parsed


@pytest.mark.parametrize(
    ("signal", "response_cls"),
    [("traces", ExportTraceServiceResponse), ("logs", ExportLogsServiceResponse)],
)
def test_encode_response_full_success_has_no_partial_success(signal: str, response_cls: Any) -> None:
    body = encode_response(signal=signal, rejected=0, message="", content_type=PROTOBUF)
    assert not response_cls.FromString(body).HasField("partial_success")
    assert json.loads(encode_response(signal=signal, rejected=0, message="", content_type=JSON)) == {}


def test_encode_response_rejects_unknown_signal() -> None:
    with pytest.raises(ValueError, match="signal"):
        encode_response(signal="metrics", rejected=0, message="", content_type=PROTOBUF)


def test_encode_status_protobuf_and_json() -> None:
    from google.rpc import status_pb2

    body = encode_status(code=3, message="body is not valid JSON", content_type=PROTOBUF)
    status = status_pb2.Status.FromString(body)
    assert (status.code, status.message) == (3, "body is not valid JSON")
    assert json.loads(encode_status(code=3, message="nope", content_type=JSON)) == {"code": 3, "message": "nope"}


# ---------------------------------------------------------------------------------------------------------------------
# Property: arbitrary input never escapes as anything but OtlpDecodeError
# ---------------------------------------------------------------------------------------------------------------------


def _assert_decodes_or_decode_error(decode: Any, body: bytes, content_type: str) -> None:
    try:
        results = decode(body, content_type=content_type)
    except OtlpDecodeError as exc:
        assert str(exc)
        return
    for position, result in enumerate(results):
        assert result.index == position
        assert (result.record is None) == (result.error is not None) == (result.dedup_key is None)
        json.dumps(result.raw, allow_nan=False)
        if result.record is not None:
            assert set(result.record) == CANONICAL_KEYS
            json.dumps(result.record, allow_nan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=512),
    content_type=st.sampled_from([PROTOBUF, JSON]),
    decode=st.sampled_from([decode_traces, decode_logs]),
)
def test_arbitrary_bytes_only_raise_decode_error(body: bytes, content_type: str, decode: Any) -> None:
    _assert_decodes_or_decode_error(decode, body, content_type)


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    # Byte flips on a valid request reach far deeper into the decoder than uniformly random bytes do.
    return st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=8).map(
        lambda edits: bytes(
            b if all(i != pos for pos, _ in edits) else next(v for pos, v in edits if pos == i)
            for i, b in enumerate(seed)
        )
    )


_TRACE_SEED = trace_request(
    make_span(
        links=[Span.Link(trace_id=OTHER_TRACE_ID, span_id=OTHER_SPAN_ID)],
        status=Status(code=Status.STATUS_CODE_ERROR),
        attributes={"finance.event": "e", "d": 1.5, "l": [1, {"k": b"v"}]},
        events=[Span.Event(name="exception", attributes=kvs({"exception.type": "T"}))],
    )
).SerializeToString()
_LOG_SEED = logs_request(make_log(trace_id=TRACE_ID, span_id=SPAN_ID, body={"a": [1.0, True]})).SerializeToString()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), signal=st.sampled_from(["traces", "logs"]))
def test_mutated_valid_protobuf_only_raises_decode_error(data: st.DataObject, signal: str) -> None:
    seed, decode = (_TRACE_SEED, decode_traces) if signal == "traces" else (_LOG_SEED, decode_logs)
    body = data.draw(_mutations(seed))
    _assert_decodes_or_decode_error(decode, body, PROTOBUF)


_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=40)
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_overrides=st.dictionaries(st.sampled_from(sorted(json_span())), _JSON_VALUES, max_size=3))
def test_json_with_arbitrary_field_values_only_raises_decode_error(span_overrides: dict[str, Any]) -> None:
    body = json_body(json_traces(json_span(**span_overrides)))
    _assert_decodes_or_decode_error(decode_traces, body, JSON)
