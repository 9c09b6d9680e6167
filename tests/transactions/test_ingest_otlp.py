import gzip
import json
import time

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from transactions.models import DeadLetter, Event

PROTOBUF = "application/x-protobuf"
TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
NOW_NS = 1_779_000_000_000_000_000


def attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(span_id: int, *, name="order.created", error=False, attrs=(), trace=TRACE) -> Span:
    return Span(
        trace_id=trace,
        span_id=span_id.to_bytes(8, "big"),
        name=name,
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + 250_000_000,
        attributes=[attr(k, v) for k, v in attrs],
        status=Status(
            code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK, message="boom" if error else ""
        ),
    )


def trace_request(*spans: Span, service="mulesoft-ipaas") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[attr("service.name", service)]), scope_spans=[ScopeSpans(spans=spans)]
            )
        ]
    )


@pytest.mark.django_db
def test_protobuf_spans_become_canonical_events(send):
    request = trace_request(
        span(1, attrs=[("finance.key.order", "0000012345"), ("finance.amount", "99.50"), ("finance.currency", "EUR")]),
        span(2, name="invoice.post", error=True, attrs=[("finance.event", "invoice.posted"), ("http.route", "/x")]),
    )
    response = send("/v1/traces", request.SerializeToString(), content_type=PROTOBUF)
    assert response.status_code == 200 and response["Content-Type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 0
    ok, failed = Event.objects.order_by("span_id")
    assert ok.system == "mulesoft-ipaas" and ok.kind == "order.created" and ok.channel == "otlp_traces"
    assert ok.business_keys == {"order": "12345"} and str(ok.amount) == "99.5000" and ok.duration_ms == 250
    assert ok.trace_id == TRACE.hex() and ok.span_id == "0000000000000001"
    assert failed.kind == "invoice.posted" and failed.status == "error" and failed.error["message"] == "boom"
    assert failed.attributes["http.route"] == "/x"


@pytest.mark.django_db
def test_extraction_rules_read_the_decoded_record_and_the_span_as_sent(send, source):
    from transactions.models import ExtractionRule

    # attributes[...] is the canonical record's; span.* and resource.* exist only in the span as it was sent.
    for path, key_type in [
        ('attributes["sap.salesorder"]', "order"),
        ("span.name", "journal"),
        ("resource.attributes[0].value.stringValue", "customer"),
    ]:
        ExtractionRule.objects.create(
            source=source, kind_pattern="order.*", action="business_key", path=path, key_type=key_type
        )
    request = trace_request(span(1, attrs=[("sap.salesorder", "0000012345")]), span(2, name="other.kind"))
    assert send("/v1/traces", request.SerializeToString(), content_type=PROTOBUF).status_code == 200
    matched, unmatched = Event.objects.order_by("span_id")
    assert matched.business_keys == {"order": "12345", "journal": "ORDER.CREATED", "customer": "MULESOFT-IPAAS"}
    assert unmatched.business_keys == {}


@pytest.mark.django_db
def test_json_encoding_with_hex_ids_and_partial_success(send):
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "salesforce-crm"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex().upper(),
                                "spanId": "00F067AA0BA902B7",
                                "name": "contract.approved",
                                "kind": 2,
                                "startTimeUnixNano": str(NOW_NS),
                                "endTimeUnixNano": str(NOW_NS + 1_000_000),
                                "unknownField": {"ignored": True},
                            },
                            {"traceId": "abc", "spanId": "00f067aa0ba902b8", "name": "x", "startTimeUnixNano": "1"},
                        ]
                    }
                ],
            }
        ]
    }
    response = send("/v1/traces", body, content_type="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1 and "#1" in partial["errorMessage"]
    event = Event.objects.get()
    assert event.span_id == "00f067aa0ba902b7" and event.trace_id == TRACE.hex()
    assert DeadLetter.objects.get().raw["span"]["traceId"] == "abc"


@pytest.mark.django_db
def test_undecodable_protobuf_is_400_with_a_status_body(send):
    response = send("/v1/traces", b"\xff\xff not protobuf", content_type=PROTOBUF)
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 3 and status.message


@pytest.mark.django_db
def test_empty_request_gzip_and_wrong_type(send):
    assert send("/v1/traces", b"", content_type=PROTOBUF).status_code == 200
    request = trace_request(span(7))
    assert send("/v1/traces", request.SerializeToString(), content_type=PROTOBUF, gzipped=True).status_code == 200
    assert Event.objects.count() == 1
    assert send("/v1/traces", b"x", content_type="text/plain").status_code == 415


@pytest.mark.django_db
def test_span_redelivery_is_a_duplicate(send):
    payload = trace_request(span(1), span(2)).SerializeToString()
    send("/v1/traces", payload, content_type=PROTOBUF)
    send("/v1/traces", payload, content_type=PROTOBUF)
    assert Event.objects.count() == 2


@pytest.mark.django_db
def test_logs_with_severity_and_dedup_by_content(send):
    record = LogRecord(
        time_unix_nano=NOW_NS,
        severity_number=17,
        severity_text="ERROR",
        body=AnyValue(string_value="posting failed: period 2026-04 closed"),
        attributes=[attr("finance.event", "journal.post"), attr("finance.key.journal", "0000900001")],
        trace_id=TRACE,
    )
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[attr("service.name", "sap-s4")]),
                scope_logs=[ScopeLogs(log_records=[record, record])],
            )
        ]
    )
    response = send("/v1/logs", request.SerializeToString(), content_type=PROTOBUF)
    assert ExportLogsServiceResponse.FromString(response.content).partial_success.rejected_log_records == 0
    event = Event.objects.get()  # the second, identical record is the same record delivered twice
    assert event.status == "error" and event.business_keys == {"journal": "900001"} and event.channel == "otlp_logs"


@pytest.mark.django_db
def test_otlp_needs_a_token(client):
    response = client.post("/v1/traces", b"", content_type=PROTOBUF)
    assert response.status_code == 401
    assert status_pb2.Status.FromString(response.content).code == 16


@pytest.mark.django_db
def test_body_over_the_limit_is_413(send, settings):
    settings.INGEST_MAX_BODY_BYTES = 1024
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))
    response = send("/v1/traces", bomb, content_type=PROTOBUF, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413


@pytest.mark.django_db
def test_throttling_answers_429_with_retry_after(send, settings):
    settings.INGEST_THROTTLE_RATE = "2/min"
    for _ in range(2):
        assert send("/v1/traces", b"", content_type=PROTOBUF).status_code == 200
    response = send("/v1/traces", b"", content_type=PROTOBUF)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert status_pb2.Status.FromString(response.content).code == 8


@pytest.mark.django_db
def test_dead_lettered_span_can_be_repaired_and_replayed(send):
    from transactions.services import dead_letter_replay

    bad = span(3)
    bad.ClearField("name")
    send("/v1/traces", trace_request(bad).SerializeToString(), content_type=PROTOBUF)
    letter = DeadLetter.objects.get()
    repaired = json.loads(json.dumps(letter.raw))
    repaired["span"]["name"] = "order.created"
    outcome = dead_letter_replay(dead_letter=letter, actor="user:ingo", expected_version=letter.version, raw=repaired)
    assert outcome.accepted == 1
    letter.refresh_from_db()
    assert letter.status == "replayed" and letter.last_replay_outcome.startswith("stored as event")
    assert Event.objects.get().kind == "order.created"


@pytest.mark.django_db(transaction=True)
def test_the_real_opentelemetry_sdk_exporter_just_works(live_server, source, token):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource as SdkResource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.trace import Status as SdkStatus
    from opentelemetry.trace import StatusCode

    results = []

    class Recording(OTLPSpanExporter):
        def export(self, spans):
            results.append(super().export(spans))
            return results[-1]

    for compression in (Compression.NoCompression, Compression.Gzip):
        provider = TracerProvider(resource=SdkResource.create({"service.name": "salesforce-crm"}))
        exporter = Recording(
            endpoint=f"{live_server.url}/v1/traces",
            headers={"Authorization": f"Bearer {token}"},
            compression=compression,
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("closeloop-test")
        with tracer.start_as_current_span("contract.approved") as parent:
            parent.set_attribute("finance.key.contract", f"C-{compression.name}")
            with tracer.start_as_current_span("quote.sync") as child:
                child.set_status(SdkStatus(StatusCode.ERROR, "CPQ unreachable"))
                child.record_exception(TimeoutError("CPQ timed out after 30s"))
        provider.shutdown()
    assert results == [SpanExportResult.SUCCESS] * 4
    deadline = time.time() + 5
    while Event.objects.count() < 4 and time.time() < deadline:
        time.sleep(0.1)
    assert Event.objects.filter(kind="quote.sync", status="error").count() == 2
    timeout = Event.objects.filter(kind="quote.sync").first().error
    assert timeout["type"] == "TimeoutError" and "30s" in timeout["message"]
    parents = Event.objects.filter(kind="contract.approved").order_by("business_keys")
    assert [p.business_keys["contract"] for p in parents] == ["C-GZIP", "C-NOCOMPRESSION"]


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_a_message_nested_past_the_decoder_limit_is_400_with_the_reason_and_nothing_half_stored(send, encoding):
    # OTLP sends one message per request: a message that cannot be decoded is refused whole (400, which the
    # exporter does not retry), never a 500 and never a 200 with part of it kept.
    if encoding == "protobuf":
        # Built by hand: the protobuf library itself refuses to build a message past its depth limit (100).
        value = _field(1, b"leaf")  # AnyValue.string_value
        for _ in range(150):
            value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))  # AnyValue.kvlist_value.values[0]
        nested = span(2).SerializeToString() + _field(9, _field(1, b"deep") + _field(2, value))  # Span.attributes
        body = trace_request(span(1)).SerializeToString() + _field(1, _field(2, _field(2, nested)))
        content_type = PROTOBUF
    else:
        deep = '{"kvlistValue":{"values":[{"key":"k","value":' * 10_000 + '{"stringValue":"x"}' + "}]}}" * 10_000
        spans = [
            {"traceId": TRACE.hex(), "spanId": "00f067aa0ba902b7", "name": "ok"},
            {
                "traceId": TRACE.hex(),
                "spanId": "00f067aa0ba902b8",
                "name": "n",
                "attributes": [{"key": "deep", "value": "X"}],
            },
        ]
        text = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
        body, content_type = text.replace('"X"', deep).encode(), "application/json"
    response = send("/v1/traces", body, content_type=content_type)
    assert response.status_code == 400 and response.content  # a google.rpc.Status saying why
    assert Event.objects.count() == 0


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    length, size = b"", len(payload)
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return bytes([number << 3 | 2]) + length + payload
