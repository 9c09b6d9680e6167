"""Property tests: arbitrary bytes through every ingest decoder, over HTTP, end to end (issue 12, item 11).

Whatever arrives, the answer is a 4xx, or a 200 whose counts are exactly what was stored: never a 500, never a batch
written in part. Bounded for CI: a few hundred examples in all, and the number that ran is printed.
"""

import json
from collections import Counter

import pytest
from google.protobuf.json_format import MessageToJson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tests.factories import canonical
from tests.transactions.test_ingest_cloudevents import sap_event
from tests.transactions.test_ingest_otlp import PROTOBUF, span, trace_request
from transactions.models import DeadLetter, Event, IngestBatch

EXAMPLES_PER_DECODER = 35
RAN: Counter[str] = Counter()


def _logs_request() -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=1_779_000_000_000_000_000,
        severity_number=17,
        body=AnyValue(string_value="posting failed"),
        attributes=[KeyValue(key="finance.key.invoice", value=AnyValue(string_value="INV-9"))],
    )
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="sap-s4"))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[record])])]
    )


_TRACES = trace_request(span(1), span(2, error=True))
_CE_BINARY_HEADERS = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/sap/s4", "ce-type": "order.created"}

# (path, Content-Type, extra headers, a valid body that the mutations start from)
DECODERS = {
    "native-json": ("/api/v1/events", "application/json", {}, json.dumps([canonical(event_id="p-1")]).encode()),
    "native-ndjson": (
        "/api/v1/events",
        "application/x-ndjson",
        {},
        b"\n".join(json.dumps(canonical(event_id=f"p-{i}")).encode() for i in range(2)),
    ),
    "cloudevents-structured": (
        "/api/v1/cloudevents",
        "application/cloudevents+json",
        {},
        json.dumps(sap_event("s-1")).encode(),
    ),
    "cloudevents-batch": (
        "/api/v1/cloudevents",
        "application/cloudevents-batch+json",
        {},
        json.dumps([sap_event("b-1"), sap_event("b-2")]).encode(),
    ),
    "cloudevents-binary": ("/api/v1/cloudevents", "application/json", _CE_BINARY_HEADERS, b'{"order": "4711"}'),
    "otlp-traces-protobuf": ("/v1/traces", PROTOBUF, {}, _TRACES.SerializeToString()),
    "otlp-traces-json": ("/v1/traces", "application/json", {}, MessageToJson(_TRACES).encode()),
    "otlp-logs-protobuf": ("/v1/logs", PROTOBUF, {}, _logs_request().SerializeToString()),
    "otlp-logs-json": ("/v1/logs", "application/json", {}, MessageToJson(_logs_request()).encode()),
}

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def _mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid body with a slice replaced by arbitrary bytes: mostly well-formed, wrong in one place."""
    start = draw(st.integers(0, len(valid)))
    end = draw(st.integers(start, min(len(valid), start + 16)))
    return valid[:start] + draw(st.binary(max_size=16)) + valid[end:]


def _bodies(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=512),
        _mutated(valid),
        _json_values.map(lambda value: json.dumps(value).encode()),
        st.lists(_json_values, max_size=3).map(lambda lines: b"\n".join(json.dumps(v).encode() for v in lines)),
    )


def _stored_state() -> tuple[int, int, int]:
    return Event.objects.count(), IngestBatch.objects.count(), DeadLetter.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_arbitrary_bytes_answer_4xx_or_are_stored_whole_never_500(decoder, send, record_property):
    path, content_type, headers, valid = DECODERS[decoder]

    @settings(
        max_examples=EXAMPLES_PER_DECODER,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_bodies(valid))
    def check(body: bytes) -> None:
        RAN[decoder] += 1
        events, batches, _ = _stored_state()
        response = send(path, body, content_type=content_type, headers=headers)
        assert response.status_code < 500, (response.status_code, response.content[:300])
        after_events, after_batches, _ = _stored_state()
        if response.status_code != 200:
            assert 400 <= response.status_code < 500
            assert (after_events, after_batches) == (events, batches)  # nothing written for a refused body
            return
        assert after_batches == batches + 1
        batch = IngestBatch.objects.latest("id")
        # The batch's counts are what is in the store: every accepted record, and no other, was written.
        assert Event.objects.filter(batch_id=batch.pk).count() == batch.accepted == after_events - events
        if not path.startswith("/v1/"):
            result = response.json()
            assert (result["accepted"], result["duplicates"], len(result["rejected"])) == (
                batch.accepted,
                batch.duplicates,
                batch.rejected,
            )

    check()
    # Summed and printed at the end of the run (tests/transactions/conftest.py), with xdist too.
    record_property("ingest_property_examples", RAN[decoder])
