"""Tests for transactions.cloudevents: pure CloudEvents 1.0 HTTP binding decoding, no Django involved."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transactions.cloudevents import (
    CONTENT_TYPE_BATCH,
    CONTENT_TYPE_STRUCTURED,
    MAX_NESTING,
    CloudEventsDecodeError,
    DecodedRecord,
    UnsupportedMediaType,
    decode_cloudevents,
    structured_body,
)
from transactions.records import BodyDecodeError

STRUCTURED = CONTENT_TYPE_STRUCTURED
BATCH = CONTENT_TYPE_BATCH

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"

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
# Realistic events
# ---------------------------------------------------------------------------------------------------------------------


def sap_sales_order_created(**overrides: Any) -> dict[str, Any]:
    """As SAP S/4HANA's Enterprise Event Enablement emits it through SAP Event Mesh."""
    event: dict[str, Any] = {
        "type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        "specversion": "1.0",
        "source": "/default/sap.s4.beh/0MYS4HANA",
        "id": "6f1c0f7e-0c5a-1edf-a5a8-7a6f2ab2c9f1",
        "time": "2026-05-18T10:15:02Z",
        "datacontenttype": "application/json",
        "sappassport": "2a54482a0300e60000756e64657465726d696e6564",
        "data": {"SalesOrder": "0000012345"},
    }
    event.update(overrides)
    return event


def sap_billing_document_created(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1",
        "specversion": "1.0",
        "source": "/default/sap.s4.beh/0MYS4HANA",
        "id": "6f1c0f7e-0c5a-1edf-a5a8-7a6f2ab2d001",
        "time": "2026-05-18T12:20:31.7342810+02:00",
        "datacontenttype": "application/json",
        "data": {"BillingDocument": "0090000123", "BillingDocumentType": "F2", "SoldToParty": "0000100017"},
    }
    event.update(overrides)
    return event


def stripe_invoice_payment_failed(**overrides: Any) -> dict[str, Any]:
    """A Stripe webhook relayed (e.g. by an event gateway) as a CloudEvent."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt_1PQxYZ2eZvKYlo2C0a1b2c3d",
        "source": "https://api.stripe.com/v1/events",
        "type": "invoice.payment_failed",
        "time": "2026-05-18T10:16:00Z",
        "subject": "in_123",
        "datacontenttype": "application/json",
        "traceparent": TRACEPARENT,
        "stripeaccount": "acct_1032D82eZvKYlo2C",
        "stripelivemode": True,
        "stripeapiversion": "2024-06-20",
        "data": {"object": {"id": "in_123", "customer": "cus_9", "amount_due": 125000, "currency": "eur"}},
    }
    event.update(overrides)
    return event


SALESFORCE_DATA = {
    "schema": "Dh8rJg9K1n0nQTjXDrN5Ow",
    "payload": {
        "CreatedDate": "2026-05-18T10:17:45.000Z",
        "CreatedById": "005xx000001X8Uz",
        "Order_Number__c": "ORD-1001",
        "Amount__c": 4999.5,
    },
    "event": {"replayId": 18231},
}


def salesforce_binary_headers(**overrides: str) -> dict[str, str]:
    """A Salesforce Platform Event relayed in binary content mode, header names as a proxy might case them."""
    headers = {
        "Ce-Specversion": "1.0",
        "Ce-Id": "e2a1c3f0-9d5b-4c1a-8f0e-3b7d6a5c4e21",
        "Ce-Source": "https://mycompany.my.salesforce.com/event/Order_Event__e",
        "Ce-Type": "com.salesforce.platformevent.Order_Event__e",
        "Ce-Time": "2026-05-18T10:17:45.000Z",
        "Ce-Subject": "Order%20ORD-1001%20%E2%82%AC",
        "Ce-Sforeplayid": "18231",
        "Content-Length": "231",
        "User-Agent": "relay/1.4",
    }
    headers.update(overrides)
    return headers


def structured(event: dict[str, Any]) -> list[DecodedRecord]:
    return decode_cloudevents(json.dumps(event).encode(), content_type=STRUCTURED, headers={})


def one(results: list[DecodedRecord]) -> DecodedRecord:
    assert len(results) == 1
    return results[0]


def accepted(result: DecodedRecord) -> dict[str, Any]:
    assert result.error is None, result.error
    assert result.record is not None
    assert set(result.record) == CANONICAL_KEYS
    return result.record


def rejected(result: DecodedRecord) -> str:
    assert result.record is None
    assert result.dedup_key is None
    assert result.error
    return result.error


def replayed(result: DecodedRecord) -> DecodedRecord:
    return one(decode_cloudevents(structured_body(result.raw), content_type=STRUCTURED, headers={}))


# ---------------------------------------------------------------------------------------------------------------------
# Structured mode
# ---------------------------------------------------------------------------------------------------------------------


def test_sap_sales_order_created_structured() -> None:
    event = sap_sales_order_created()
    result = one(structured(event))
    assert result.index == 0
    assert accepted(result) == {
        "event_id": None,
        "occurred_at": "2026-05-18T10:15:02.000000Z",
        "system": "/default/sap.s4.beh/0MYS4HANA",
        "kind": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        "status": "ok",
        "duration_ms": None,
        "trace_id": None,
        "span_id": None,
        "parent_span_id": None,
        "links": [],
        "business_keys": {},
        "entity": None,
        "amount": None,
        "currency": None,
        "approval": None,
        "error": None,
        "attributes": {
            "data": {"SalesOrder": "0000012345"},
            "cloudevents": {
                "datacontenttype": "application/json",
                "sappassport": "2a54482a0300e60000756e64657465726d696e6564",
            },
        },
    }
    assert result.dedup_key == "ce:/default/sap.s4.beh/0MYS4HANA\n6f1c0f7e-0c5a-1edf-a5a8-7a6f2ab2c9f1"
    assert result.raw == event


def test_sap_billing_document_time_with_offset_and_sub_microseconds() -> None:
    record = accepted(one(structured(sap_billing_document_created())))
    assert record["kind"] == "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"
    # +02:00 converted to UTC; the 7th fractional digit (.NET ticks) is truncated, not rounded.
    assert record["occurred_at"] == "2026-05-18T10:20:31.734281Z"
    assert record["attributes"]["data"]["BillingDocument"] == "0090000123"


def test_stripe_payment_failed_relayed_keeps_status_ok_and_reads_traceparent() -> None:
    record = accepted(one(structured(stripe_invoice_payment_failed())))
    # Failure is decided later by the service's rules, never by the decoder.
    assert record["status"] == "ok"
    assert record["error"] is None
    assert record["system"] == "https://api.stripe.com/v1/events"
    assert record["kind"] == "invoice.payment_failed"
    assert record["trace_id"] == TRACE_ID
    assert record["span_id"] == SPAN_ID
    assert record["parent_span_id"] is None
    assert record["attributes"]["data"] == {
        "object": {"id": "in_123", "customer": "cus_9", "amount_due": 125000, "currency": "eur"}
    }
    assert record["attributes"]["cloudevents"] == {
        "subject": "in_123",
        "datacontenttype": "application/json",
        "stripeaccount": "acct_1032D82eZvKYlo2C",
        "stripelivemode": True,
        "stripeapiversion": "2024-06-20",
    }


def test_content_type_is_case_insensitive_and_may_carry_parameters() -> None:
    body = json.dumps(sap_sales_order_created()).encode()
    for content_type in ("application/cloudevents+json; charset=utf-8", "Application/CloudEvents+JSON ;charset=UTF-8"):
        accepted(one(decode_cloudevents(body, content_type=content_type, headers={})))


def test_structured_mode_ignores_ce_headers() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "other", "ce-source": "/other", "ce-type": "other"}
    body = json.dumps(sap_sales_order_created()).encode()
    result = one(decode_cloudevents(body, content_type=STRUCTURED, headers=headers))
    assert accepted(result)["kind"] == "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1"
    assert result.dedup_key == "ce:/default/sap.s4.beh/0MYS4HANA\n6f1c0f7e-0c5a-1edf-a5a8-7a6f2ab2c9f1"


def test_null_attributes_are_unset() -> None:
    event = sap_sales_order_created(subject=None, time=None, traceparent=None, unsetextension=None)
    record = accepted(one(structured(event)))
    assert record["occurred_at"] is None  # None means "use the receive time"
    assert record["trace_id"] is None
    assert "subject" not in record["attributes"]["cloudevents"]
    assert "unsetextension" not in record["attributes"]["cloudevents"]


def test_missing_time_leaves_occurred_at_to_the_caller() -> None:
    event = sap_sales_order_created()
    del event["time"]
    assert accepted(one(structured(event)))["occurred_at"] is None


def test_data_absent_or_null_omits_the_data_key() -> None:
    event = sap_sales_order_created()
    del event["data"]
    assert accepted(one(structured(event)))["attributes"] == {
        "cloudevents": {
            "datacontenttype": "application/json",
            "sappassport": "2a54482a0300e60000756e64657465726d696e6564",
        }
    }
    assert "data" not in accepted(one(structured(sap_sales_order_created(data=None))))["attributes"]


@pytest.mark.parametrize("data", ['<much wow="xml"/>', 0, False, [], {}, ["a", 1]])
def test_any_json_data_is_kept(data: Any) -> None:
    record = accepted(one(structured(sap_sales_order_created(data=data))))
    assert record["attributes"]["data"] == data


def test_data_base64_is_kept_apart_from_data() -> None:
    event = sap_sales_order_created(datacontenttype="application/octet-stream", data_base64="AAEC/w==")
    del event["data"]
    record = accepted(one(structured(event)))
    assert record["attributes"]["data_base64"] == "AAEC/w=="
    assert "data" not in record["attributes"]
    assert record["attributes"]["cloudevents"]["datacontenttype"] == "application/octet-stream"


def test_data_and_data_base64_are_mutually_exclusive() -> None:
    error = rejected(one(structured(sap_sales_order_created(data_base64="AAEC"))))
    assert "mutually exclusive" in error
    # null counts as unset, so it does not conflict.
    accepted(one(structured(sap_sales_order_created(data_base64=None))))


@pytest.mark.parametrize("value", ["not base64!", "AAE", 12, "ÄÖÜ="])
def test_invalid_data_base64_is_rejected(value: Any) -> None:
    event = sap_sales_order_created(data_base64=value)
    del event["data"]
    assert "data_base64 is not a base64 string" in rejected(one(structured(event)))


def test_record_does_not_share_mutable_objects_with_raw() -> None:
    result = one(structured(sap_sales_order_created()))
    record = accepted(result)
    record["attributes"]["data"]["SalesOrder"] = "***"
    record["attributes"]["cloudevents"]["sappassport"] = "***"
    assert result.raw["data"] == {"SalesOrder": "0000012345"}
    assert result.raw["sappassport"] == "2a54482a0300e60000756e64657465726d696e6564"


def test_deeply_nested_data_is_rejected_per_event() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_NESTING + 5):
        nested = [nested]
    assert "nested more than" in rejected(one(structured(sap_sales_order_created(data=nested))))
    shallow: Any = "leaf"
    for _ in range(MAX_NESTING - 5):
        shallow = {"x": shallow}
    accepted(one(structured(sap_sales_order_created(data=shallow))))


# ---------------------------------------------------------------------------------------------------------------------
# Required attributes and specversion
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_missing_required_attribute(name: str) -> None:
    event = sap_sales_order_created()
    del event[name]
    assert rejected(one(structured(event))) == f"{name} is missing"


@pytest.mark.parametrize("name", ["id", "source", "type"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "is missing"), ("", "is empty"), (42, "must be a string"), (["a"], "must be a string")],
)
def test_invalid_required_attribute(name: str, value: Any, reason: str) -> None:
    error = rejected(one(structured(sap_sales_order_created(**{name: value}))))
    assert error.startswith(f"{name} {reason}")


def test_all_problems_of_an_event_are_reported_together() -> None:
    event = {"specversion": "1.0", "id": "", "time": "yesterday", "traceparent": "00-zz"}
    error = rejected(one(structured(event)))
    for part in ("id is empty", "source is missing", "type is missing", "time is not", "traceparent is not"):
        assert part in error


@pytest.mark.parametrize(("value", "shown"), [(None, "missing"), ("0.3", "'0.3'"), (1.0, "a number"), ("1", "'1'")])
def test_specversion_must_be_1_0(value: Any, shown: str) -> None:
    event = sap_sales_order_created(specversion=value)
    if value is None:
        del event["specversion"]
    error = rejected(one(structured(event)))
    assert error.startswith("specversion must be '1.0'")
    assert shown in error


@pytest.mark.parametrize("name", ["subject", "datacontenttype", "dataschema"])
def test_optional_string_attributes_must_be_strings(name: str) -> None:
    assert f"{name} must be a string" in rejected(one(structured(sap_sales_order_created(**{name: 5}))))


def test_extensions_of_any_spec_type_are_kept() -> None:
    record = accepted(
        one(structured(sap_sales_order_created(comexampleothervalue=5, flag=False, dataschema="urn:x", subject="s")))
    )
    assert record["attributes"]["cloudevents"] == {
        "datacontenttype": "application/json",
        "sappassport": "2a54482a0300e60000756e64657465726d696e6564",
        "comexampleothervalue": 5,
        "flag": False,
        "dataschema": "urn:x",
        "subject": "s",
    }


def test_tracestate_is_not_copied_into_attributes() -> None:
    event = sap_sales_order_created(traceparent=TRACEPARENT, tracestate="congo=t61rcWkgMzE")
    assert accepted(one(structured(event)))["attributes"]["cloudevents"] == {
        "datacontenttype": "application/json",
        "sappassport": "2a54482a0300e60000756e64657465726d696e6564",
    }


def test_source_is_kept_as_is() -> None:
    source = "urn:SAP:S4:Tenant 1/ünicode:?x=1#frag"
    result = one(structured(sap_sales_order_created(source=source, id="a:b")))
    assert accepted(result)["system"] == source
    assert result.dedup_key == f"ce:{source}\na:b"


def test_dedup_key_separator_keeps_colons_apart() -> None:
    first = one(structured(sap_sales_order_created(source="a:b", id="c")))
    second = one(structured(sap_sales_order_created(source="a", id="b:c")))
    assert first.dedup_key != second.dedup_key


# ---------------------------------------------------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-18T10:15:02Z", "2026-05-18T10:15:02.000000Z"),
        ("2026-05-18t10:15:02z", "2026-05-18T10:15:02.000000Z"),
        ("2026-05-18T12:15:02+02:00", "2026-05-18T10:15:02.000000Z"),
        ("2026-05-18T05:45:02.5-04:30", "2026-05-18T10:15:02.500000Z"),
        ("2026-05-18T10:15:02.123456789+00:00", "2026-05-18T10:15:02.123456Z"),
        ("2026-05-18T10:15:02-00:00", "2026-05-18T10:15:02.000000Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000000Z"),
        ("2026-05-18T23:30:00-05:00", "2026-05-19T04:30:00.000000Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z"),
        ("0999-05-18T10:15:02Z", "0999-05-18T10:15:02.000000Z"),
    ],
)
def test_time_is_converted_to_utc(value: str, expected: str) -> None:
    assert accepted(one(structured(sap_sales_order_created(time=value))))["occurred_at"] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-05-18T10:15:02", "time has no UTC offset"),
        ("2026-05-18 10:15:02Z", "time is not an RFC 3339 timestamp"),
        ("2026-05-18", "time is not an RFC 3339 timestamp"),
        ("18.05.2026 10:15", "time is not an RFC 3339 timestamp"),
        ("", "time is not an RFC 3339 timestamp"),
        ("2026-05-18T10:15:02+0200", "time is not an RFC 3339 timestamp"),
        ("2026-05-18T10:15:02.Z", "time is not an RFC 3339 timestamp"),
        ("\uff12\uff10\uff12\uff16-05-18T10:15:02Z", "time is not an RFC 3339 timestamp"),  # full-width digits
        ("2026-02-30T10:15:02Z", "time is not a valid date and time"),
        ("2026-05-18T24:00:00Z", "time is not a valid date and time"),
        ("2026-05-18T10:15:02+24:00", "time is not a valid date and time"),
        ("2026-05-18T10:15:02+02:60", "time is not a valid date and time"),
        ("0000-01-01T00:00:00Z", "time is not a valid date and time"),
        ("9999-12-31T23:59:59-01:00", "time is not a valid date and time"),
        ("0001-01-01T00:00:00+01:00", "time is not a valid date and time"),
        (1779099302, "time must be an RFC 3339 timestamp string"),
    ],
)
def test_invalid_time_is_rejected_with_a_reason(value: Any, reason: str) -> None:
    error = rejected(one(structured(sap_sales_order_created(time=value))))
    assert error.startswith(reason)
    if isinstance(value, str) and value:
        assert repr(value) in error


# ---------------------------------------------------------------------------------------------------------------------
# traceparent
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        TRACEPARENT,
        f"00-{TRACE_ID}-{SPAN_ID}-00",
        f"01-{TRACE_ID}-{SPAN_ID}-01",
        f"cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-will-bring",
    ],
)
def test_valid_traceparent(value: str) -> None:
    record = accepted(one(structured(sap_sales_order_created(traceparent=value))))
    assert (record["trace_id"], record["span_id"]) == (TRACE_ID, SPAN_ID)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"00-{TRACE_ID.upper()}-{SPAN_ID}-01", "traceparent is not"),
        (f"00-{TRACE_ID}-{SPAN_ID}", "traceparent is not"),
        (f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01", "traceparent is not"),
        (f"00-{TRACE_ID}-{SPAN_ID}x-01", "traceparent is not"),
        (f" {TRACEPARENT}", "traceparent is not"),
        (f"{TRACE_ID}-{SPAN_ID}", "traceparent is not"),
        ("", "traceparent is not"),
        (f"ff-{TRACE_ID}-{SPAN_ID}-01", "traceparent version ff is invalid"),
        (f"00-{TRACE_ID}-{SPAN_ID}-01-extra", "traceparent version 00 has exactly four fields"),
        (f"00-{'0' * 32}-{SPAN_ID}-01", "traceparent trace id is all zeros"),
        (f"00-{TRACE_ID}-{'0' * 16}-01", "traceparent parent id is all zeros"),
        (12, "traceparent must be a string"),
    ],
)
def test_invalid_traceparent_rejects_the_event(value: Any, reason: str) -> None:
    assert rejected(one(structured(sap_sales_order_created(traceparent=value)))).startswith(reason)


# ---------------------------------------------------------------------------------------------------------------------
# Batch mode
# ---------------------------------------------------------------------------------------------------------------------


def test_batch_with_one_bad_event_among_good_ones() -> None:
    bad = sap_billing_document_created()
    del bad["id"]
    events = [sap_sales_order_created(), bad, stripe_invoice_payment_failed(), "not an event"]
    results = decode_cloudevents(json.dumps(events).encode(), content_type=BATCH, headers={})
    assert [result.index for result in results] == [0, 1, 2, 3]
    assert accepted(results[0])["kind"] == "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1"
    assert rejected(results[1]) == "id is missing"
    assert results[1].raw == bad
    assert accepted(results[2])["kind"] == "invoice.payment_failed"
    assert rejected(results[3]) == "batch entry must be a JSON object, got a string"
    assert results[3].raw == {"batch_entry": "not an event"}
    assert [result.raw for result in results[:3]] == events[:3]


def test_empty_batch_has_no_records() -> None:
    assert decode_cloudevents(b"[]", content_type=BATCH, headers={}) == []
    assert decode_cloudevents(b" [ ]\n", content_type=f"{BATCH}; charset=utf-8", headers={}) == []


def test_batch_duplicates_are_left_to_the_service() -> None:
    event = sap_sales_order_created()
    results = decode_cloudevents(json.dumps([event, event]).encode(), content_type=BATCH, headers={})
    assert [result.dedup_key for result in results] == [results[0].dedup_key] * 2


# ---------------------------------------------------------------------------------------------------------------------
# Whole-body errors
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [STRUCTURED, BATCH])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'specversion': '1.0'}",
        b"\xff\xfe\x00garbage",
        b'{"data": NaN}',
        b'[{"data": Infinity}]',
        b'{"data": -Infinity}',
        b"[" * 100_000,
    ],
)
def test_invalid_json_rejects_the_whole_body(content_type: str, body: bytes) -> None:
    with pytest.raises(CloudEventsDecodeError, match="not valid JSON"):
        decode_cloudevents(body, content_type=content_type, headers={})


@pytest.mark.parametrize("body", [b"[]", b'"event"', b"null", b"42", b"true"])
def test_structured_body_must_be_an_object(body: bytes) -> None:
    with pytest.raises(CloudEventsDecodeError, match="must be a JSON object"):
        decode_cloudevents(body, content_type=STRUCTURED, headers={})


@pytest.mark.parametrize("body", [json.dumps(sap_sales_order_created()).encode(), b"null", b'"x"'])
def test_batch_body_must_be_an_array(body: bytes) -> None:
    with pytest.raises(CloudEventsDecodeError, match="must be a JSON array"):
        decode_cloudevents(body, content_type=BATCH, headers={})


def test_error_hierarchy() -> None:
    assert issubclass(CloudEventsDecodeError, BodyDecodeError)
    assert issubclass(UnsupportedMediaType, CloudEventsDecodeError)


@pytest.mark.parametrize(
    ("content_type", "headers"),
    [
        ("application/json", {}),
        ("application/json", {"ce-id": "1", "ce-source": "/s", "ce-type": "t"}),
        ("text/plain", {"specversion": "1.0"}),
        ("", {}),
        ("application/cloudevents+xml", {"ce-specversion": "1.0"}),
        ("application/cloudevents+avro", {}),
        ("application/cloudevents-batch+protobuf", {}),
        ("application/cloudevents", {}),
    ],
)
def test_unsupported_media_type(content_type: str, headers: dict[str, str]) -> None:
    body = json.dumps(sap_sales_order_created()).encode()
    with pytest.raises(UnsupportedMediaType):
        decode_cloudevents(body, content_type=content_type, headers=headers)


# ---------------------------------------------------------------------------------------------------------------------
# Binary mode
# ---------------------------------------------------------------------------------------------------------------------


def test_binary_salesforce_platform_event_with_json_data() -> None:
    body = json.dumps(SALESFORCE_DATA).encode()
    result = one(
        decode_cloudevents(body, content_type="application/json; charset=utf-8", headers=salesforce_binary_headers())
    )
    record = accepted(result)
    assert record["system"] == "https://mycompany.my.salesforce.com/event/Order_Event__e"
    assert record["kind"] == "com.salesforce.platformevent.Order_Event__e"
    assert record["occurred_at"] == "2026-05-18T10:17:45.000000Z"
    assert record["attributes"] == {
        "data": SALESFORCE_DATA,
        "cloudevents": {
            "subject": "Order ORD-1001 €",
            "sforeplayid": "18231",
            "datacontenttype": "application/json; charset=utf-8",
        },
    }
    assert result.dedup_key == (
        "ce:https://mycompany.my.salesforce.com/event/Order_Event__e\ne2a1c3f0-9d5b-4c1a-8f0e-3b7d6a5c4e21"
    )
    # raw is the structured form: header names lower-cased without ce-, data parsed, non-ce headers dropped.
    assert result.raw == {
        "specversion": "1.0",
        "id": "e2a1c3f0-9d5b-4c1a-8f0e-3b7d6a5c4e21",
        "source": "https://mycompany.my.salesforce.com/event/Order_Event__e",
        "type": "com.salesforce.platformevent.Order_Event__e",
        "time": "2026-05-18T10:17:45.000Z",
        "subject": "Order ORD-1001 €",
        "sforeplayid": "18231",
        "datacontenttype": "application/json; charset=utf-8",
        "data": SALESFORCE_DATA,
    }


def test_binary_sap_event_with_traceparent_header() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "6f1c0f7e-0c5a-1edf-a5a8-7a6f2ab2c9f1",
        "ce-source": "/default/sap.s4.beh/0MYS4HANA",
        "ce-type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        "ce-time": "2026-05-18T10:15:02Z",
        "ce-traceparent": TRACEPARENT,
        "ce-tracestate": "sap=abc",
        "traceparent": "00-11111111111111111111111111111111-2222222222222222-01",  # the relay's own hop
    }
    result = one(decode_cloudevents(b'{"SalesOrder": "0000012345"}', content_type="application/json", headers=headers))
    record = accepted(result)
    assert (record["trace_id"], record["span_id"]) == (TRACE_ID, SPAN_ID)
    assert record["attributes"] == {
        "data": {"SalesOrder": "0000012345"},
        "cloudevents": {"datacontenttype": "application/json"},
    }
    # Same event sent structured gets the same dedup key, so a sender switching modes is not double-counted.
    assert result.dedup_key == one(structured(sap_sales_order_created())).dedup_key


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "application/merge-patch+json; charset=utf-8"])
def test_binary_json_suffix_types_are_parsed(content_type: str) -> None:
    record = accepted(one(decode_cloudevents(b'{"a": [1, 2]}', content_type=content_type, headers=minimal_headers())))
    assert record["attributes"]["data"] == {"a": [1, 2]}


def minimal_headers(**overrides: str) -> dict[str, str]:
    headers = {"ce-specversion": "1.0", "ce-id": "42", "ce-source": "/crm", "ce-type": "crm.note.added"}
    headers.update(overrides)
    return headers


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/csv; charset=utf-8"])
def test_binary_text_data_is_kept_as_string(content_type: str) -> None:
    body = '<Order id="ORD-1001">Zahlung über 4.999,50 €</Order>'.encode()
    result = one(decode_cloudevents(body, content_type=content_type, headers=minimal_headers()))
    assert accepted(result)["attributes"] == {
        "data": body.decode(),
        "cloudevents": {"datacontenttype": content_type},
    }


def test_binary_json_lookalike_text_is_not_parsed() -> None:
    record = accepted(one(decode_cloudevents(b'{"a": 1}', content_type="text/plain", headers=minimal_headers())))
    assert record["attributes"]["data"] == '{"a": 1}'


def test_binary_non_utf8_data_becomes_data_base64() -> None:
    body = b"\x00\x01\xfe\xff%PDF-1.7\x80"
    result = one(decode_cloudevents(body, content_type="application/pdf", headers=minimal_headers()))
    record = accepted(result)
    assert base64.b64decode(record["attributes"]["data_base64"]) == body
    assert "data" not in record["attributes"]
    assert result.raw["data_base64"] == record["attributes"]["data_base64"]


def test_binary_without_content_type() -> None:
    result = one(decode_cloudevents(b"hello", content_type="", headers=minimal_headers()))
    assert accepted(result)["attributes"] == {"data": "hello", "cloudevents": {}}
    assert "datacontenttype" not in result.raw


@pytest.mark.parametrize("body", [b"", b"null", b" null "])
def test_binary_empty_or_null_body_has_no_data(body: bytes) -> None:
    record = accepted(one(decode_cloudevents(body, content_type="application/json", headers=minimal_headers())))
    assert "data" not in record["attributes"]


@pytest.mark.parametrize("body", [b"{", b"<xml/>", b'{"amount": NaN}', b"\xff\xff"])
def test_binary_declared_json_that_does_not_parse_rejects_the_body(body: bytes) -> None:
    with pytest.raises(CloudEventsDecodeError, match="not valid JSON"):
        decode_cloudevents(body, content_type="application/json", headers=minimal_headers())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"),
        ("%e2%82%ac", "€"),  # decoding accepts lower-case hex
        ("%41%42C", "ABC"),  # unnecessarily encoded is accepted
        ("100%25", "100%"),
        ('"quoted value with \\"escapes\\""', 'quoted value with "escapes"'),
        ('"%22inner%22"', '"inner"'),  # quoted-string first, then one round of percent-decoding
        ("%2541", "%41"),  # exactly one round
        ("  padded\t", "padded"),
        ("50%", "50%"),  # a malformed escape is left alone
    ],
)
def test_binary_header_values_are_decoded(header: str, expected: str) -> None:
    result = one(decode_cloudevents(b"", content_type="text/plain", headers=minimal_headers(**{"ce-subject": header})))
    assert accepted(result)["attributes"]["cloudevents"]["subject"] == expected
    assert result.raw["subject"] == expected


@pytest.mark.parametrize("header", ["%C0%A0", "%FF", "%E2%82", "%ED%A0%80"])
def test_binary_header_with_invalid_utf8_rejects_the_event(header: str) -> None:
    result = one(decode_cloudevents(b"x", content_type="text/plain", headers=minimal_headers(**{"ce-subject": header})))
    assert rejected(result) == f"header ce-subject is not percent-encoded UTF-8: {header!r}"
    assert result.raw["subject"] == header  # what was sent stays visible in the dead-letter store


def test_binary_percent_encoded_required_attributes() -> None:
    headers = minimal_headers(**{"CE-ID": "order%3A1001", "ce-source": "%2Fsap%2Fs4", "ce-type": "x%20y"})
    result = one(decode_cloudevents(b"", content_type="text/plain", headers=headers))
    record = accepted(result)
    assert (record["system"], record["kind"]) == ("/sap/s4", "x y")
    assert result.dedup_key == "ce:/sap/s4\norder:1001"


def test_binary_header_names_are_case_insensitive() -> None:
    headers = {"CE-SPECVERSION": "1.0", "Ce-Id": "1", "cE-sOuRcE": "/erp", "CE-Type": "erp.posted", "CE-MyExt": "v"}
    result = one(decode_cloudevents(b"", content_type="text/plain", headers=headers))
    assert accepted(result)["attributes"]["cloudevents"] == {"myext": "v", "datacontenttype": "text/plain"}


def test_binary_content_type_wins_over_ce_datacontenttype_and_data_headers() -> None:
    headers = minimal_headers(**{"ce-datacontenttype": "text/xml", "ce-data": "nope", "ce-data_base64": "AAAA"})
    result = one(decode_cloudevents(b'{"a": 1}', content_type="application/json", headers=headers))
    assert accepted(result)["attributes"] == {"data": {"a": 1}, "cloudevents": {"datacontenttype": "application/json"}}


@pytest.mark.parametrize(("name", "value"), [("ce-specversion", "0.3"), ("ce-specversion", "")])
def test_binary_wrong_specversion_rejects_the_event(name: str, value: str) -> None:
    result = one(decode_cloudevents(b"", content_type="text/plain", headers=minimal_headers(**{name: value})))
    assert rejected(result).startswith("specversion must be '1.0'")


@pytest.mark.parametrize("name", ["ce-id", "ce-source", "ce-type"])
def test_binary_missing_required_header(name: str) -> None:
    headers = minimal_headers()
    del headers[name]
    result = one(decode_cloudevents(b"", content_type="text/plain", headers=headers))
    assert rejected(result) == f"{name[3:]} is missing"


def test_binary_invalid_traceparent_and_time() -> None:
    headers = minimal_headers(**{"ce-traceparent": "00-xyz", "ce-time": "2026-05-18T10:15:02"})
    error = rejected(one(decode_cloudevents(b"", content_type="text/plain", headers=headers)))
    assert "time has no UTC offset" in error
    assert "traceparent is not a W3C trace context value" in error


# ---------------------------------------------------------------------------------------------------------------------
# Dead-letter replay
# ---------------------------------------------------------------------------------------------------------------------


def _replay_cases() -> list[tuple[bytes, str, dict[str, str]]]:
    return [
        (json.dumps(sap_sales_order_created()).encode(), STRUCTURED, {}),
        (json.dumps(stripe_invoice_payment_failed()).encode(), STRUCTURED, {}),
        (
            json.dumps(
                [sap_billing_document_created(), stripe_invoice_payment_failed(), {"specversion": "1.0"}]
            ).encode(),
            BATCH,
            {},
        ),
        (json.dumps(SALESFORCE_DATA).encode(), "application/json; charset=utf-8", salesforce_binary_headers()),
        ("Zahlung über 4.999,50 €".encode(), "text/plain", minimal_headers(**{"ce-traceparent": TRACEPARENT})),
        (b"\x00\x01\xfe\xff", "application/octet-stream", minimal_headers(**{"ce-time": "2026-05-18T12:00:00+02:00"})),
        (b"", "application/json", minimal_headers()),
        (b'"just a string"', "application/json", minimal_headers(**{"ce-subject": "%22q%22"})),
    ]


@pytest.mark.parametrize(("body", "content_type", "headers"), _replay_cases())
def test_replay_through_structured_body_gives_the_same_result(
    body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    for result in decode_cloudevents(body, content_type=content_type, headers=headers):
        again = replayed(result)
        assert again.record == result.record
        assert again.dedup_key == result.dedup_key
        assert again.error == result.error
        assert again.raw == result.raw


def test_structured_body_is_ascii_json_and_survives_lone_surrogates() -> None:
    event = sap_sales_order_created(data={"note": "\ud800 broken", "name": "Müller"})
    body = json.dumps(event).encode()
    result = one(decode_cloudevents(body, content_type=STRUCTURED, headers={}))
    replay_body = structured_body(result.raw)
    assert replay_body.isascii()
    assert json.loads(replay_body) == event
    assert replayed(result).record == result.record


def test_rejected_binary_event_can_be_corrected_and_replayed() -> None:
    headers = minimal_headers(**{"ce-time": "2026-05-18T10:15:02"})
    result = one(decode_cloudevents(b"{}", content_type="application/json", headers=headers))
    rejected(result)
    fixed = {**result.raw, "time": "2026-05-18T10:15:02Z"}
    record = accepted(one(decode_cloudevents(structured_body(fixed), content_type=STRUCTURED, headers={})))
    assert record["occurred_at"] == "2026-05-18T10:15:02.000000Z"
    assert record["attributes"]["data"] == {}


# ---------------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_BINARY_CONTENT_TYPES = ["application/json", "text/plain", "application/octet-stream", "application/vnd.x+json", ""]


def _check_results(results: list[DecodedRecord]) -> None:
    for position, result in enumerate(results):
        assert isinstance(result, DecodedRecord)
        assert result.index == position
        assert isinstance(result.raw, dict)
        assert (result.record is None) == (result.error is not None) == (result.dedup_key is None)
        if result.record is not None:
            assert set(result.record) == CANONICAL_KEYS
            assert result.dedup_key is not None and result.dedup_key.startswith("ce:")
        structured_body(result.raw)  # every raw is replayable JSON


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.text(max_size=256).map(lambda text: text.encode("utf-8", "surrogatepass")),
        _JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    ),
    mode=st.sampled_from(["structured", "batch", *(f"binary:{ct}" for ct in _BINARY_CONTENT_TYPES)]),
)
def test_arbitrary_bytes_only_raise_cloudevents_decode_error(body: bytes, mode: str) -> None:
    if mode.startswith("binary:"):
        content_type, headers = mode.removeprefix("binary:"), minimal_headers()
    else:
        content_type, headers = (STRUCTURED if mode == "structured" else BATCH), {}
    try:
        results = decode_cloudevents(body, content_type=content_type, headers=headers)
    except CloudEventsDecodeError:
        return
    _check_results(results)
    if mode.startswith("binary:"):
        assert len(results) == 1
        accepted(results[0])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(
        st.one_of(
            st.sampled_from(["ce-id", "ce-source", "ce-type", "ce-time", "ce-traceparent", "ce-subject", "CE-X"]),
            st.text(max_size=12).map(lambda name: "ce-" + name),
            st.text(max_size=12),
        ),
        st.text(max_size=40),
        max_size=8,
    ),
    content_type=st.one_of(st.sampled_from(_BINARY_CONTENT_TYPES), st.text(max_size=30)),
    body=st.binary(max_size=64),
)
def test_arbitrary_binary_headers_only_raise_cloudevents_decode_error(
    headers: dict[str, str], content_type: str, body: bytes
) -> None:
    headers["ce-specversion"] = "1.0"
    try:
        results = decode_cloudevents(body, content_type=content_type, headers=headers)
    except CloudEventsDecodeError:
        return
    _check_results(results)


_ATTRIBUTE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(["1.0", "2026-05-18T10:15:02Z", "2026-05-18T12:15:02.123+02:00", TRACEPARENT, "AAEC", ""]),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            ["specversion", "id", "source", "type", "time", "traceparent", "subject", "data", "data_base64", "ext"]
        ),
        _ATTRIBUTE_VALUES,
        max_size=4,
    ),
    drop=st.lists(st.sampled_from(["specversion", "id", "source", "type", "time", "data"]), max_size=2),
)
def test_generated_events_replay_to_the_same_result(overrides: dict[str, Any], drop: list[str]) -> None:
    event = sap_sales_order_created(**overrides)
    for name in drop:
        event.pop(name, None)
    result = one(structured(event))
    _check_results([result])
    assert result.raw == event
    again = replayed(result)
    assert (again.record, again.dedup_key, again.error) == (result.record, result.dedup_key, result.error)
