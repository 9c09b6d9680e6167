"""Closeloop's OpenTelemetry semantic conventions: one span or log record, with its resource and scope, as a canonical
event dict (see the OpenTelemetry mapping in ARCHITECTURE.md).

Pure module: no Django, no ORM; transactions.otlp decodes request bodies and hands each record to this mapping.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from transactions.canonical import empty_record

JsonDict = dict[str, Any]

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_SEVERITY_ERROR = 17
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Attributes that become first-class canonical fields and therefore must not be duplicated in `attributes`.
_ATTR_EVENT = "finance.event"
_ATTR_BUSINESS_KEY = "finance.business_key"
_ATTR_KEY_PREFIX = "finance.key."
_ATTR_ENTITY = "finance.entity"
_ATTR_AMOUNT = "finance.amount"
_ATTR_CURRENCY = "finance.currency"
_ATTR_APPROVAL_PREFIX = "finance.approval."
_APPROVAL_FIELDS = ("actor", "decision", "step")
_ATTR_FINANCE_ERROR_CODE = "finance.error.code"
_ERROR_CODE_ATTRS = (_ATTR_FINANCE_ERROR_CODE, "error.code", "http.response.status_code")
_SERVICE_NAME = "service.name"


class RecordRejectedError(Exception):
    """One record is unusable; carries the reason for DecodedRecord.error (transactions.otlp catches it)."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------------------------------
# Canonical mapping
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceView:
    """What each record takes from its resource, converted once per resource instead of once per record."""

    service_name: str | None
    attributes: JsonDict  # the resource's other attributes, named resource.<name> as the records' attributes hold them


def resource_view(resource: Resource) -> ResourceView:
    attributes = _attributes_to_dict(resource.attributes)
    return ResourceView(
        service_name=_canonical_json_string(attributes.get(_SERVICE_NAME)),
        attributes={f"resource.{name}": value for name, value in attributes.items() if name != _SERVICE_NAME},
    )


def span_to_canonical(resource: ResourceView, scope: InstrumentationScope | None, span: Span) -> JsonDict:
    trace_id = _required_id(span.trace_id, _TRACE_ID_BYTES, "trace id")
    span_id = _required_id(span.span_id, _SPAN_ID_BYTES, "span id")
    parent_span_id = _optional_id(span.parent_span_id, _SPAN_ID_BYTES, "parent span id")
    links = [
        {
            "trace_id": _required_id(link.trace_id, _TRACE_ID_BYTES, f"link {position} trace id"),
            "span_id": _required_id(link.span_id, _SPAN_ID_BYTES, f"link {position} span id"),
        }
        for position, link in enumerate(span.links)
    ]
    if not span.start_time_unix_nano:
        raise RecordRejectedError("span has no start time")

    attributes = _attributes_to_dict(span.attributes)
    event = _canonical_json_string(attributes.get(_ATTR_EVENT))
    kind = event or span.name
    if not kind:
        raise RecordRejectedError("span has no name or finance.event")

    record = empty_record()
    record["system"] = _service_name(resource)
    record["kind"] = kind
    record["occurred_at"] = _iso_from_unix_nano(span.start_time_unix_nano)
    if span.end_time_unix_nano:
        # Clock skew can put end before start; a negative duration would only confuse aggregates.
        record["duration_ms"] = max(0, (span.end_time_unix_nano - span.start_time_unix_nano) // 1_000_000)
    record["trace_id"] = trace_id
    record["span_id"] = span_id
    record["parent_span_id"] = parent_span_id
    record["links"] = links

    if span.status.code == Status.STATUS_CODE_ERROR:
        record["status"] = "error"
        record["error"] = _span_error(span, attributes)

    _apply_finance_attributes(record, attributes)
    record["attributes"] = _extra_attributes(attributes, resource, scope)
    kind_name = _span_kind_name(span.kind)
    if kind_name is not None:
        record["attributes"]["otel.span.kind"] = kind_name
    return record


def log_to_canonical(resource: ResourceView, scope: InstrumentationScope | None, log_record: LogRecord) -> JsonDict:
    # SDKs commonly send zero-filled ids for logs emitted outside a span; that means "no trace", not a broken record.
    trace_id = _optional_id(log_record.trace_id, _TRACE_ID_BYTES, "trace id")
    span_id = _optional_id(log_record.span_id, _SPAN_ID_BYTES, "span id")

    timestamp = log_record.time_unix_nano or log_record.observed_time_unix_nano
    if not timestamp:
        raise RecordRejectedError("log record has no time_unix_nano or observed_time_unix_nano")

    attributes = _attributes_to_dict(log_record.attributes)
    kind = (
        _canonical_json_string(attributes.get(_ATTR_EVENT))
        or _log_event_name(log_record)
        or _canonical_json_string(attributes.get("event.name"))
    )
    if not kind:
        raise RecordRejectedError("log record has no finance.event or event name")

    record = empty_record()
    record["system"] = _service_name(resource)
    record["kind"] = kind
    record["occurred_at"] = _iso_from_unix_nano(timestamp)
    record["trace_id"] = trace_id
    record["span_id"] = span_id

    body = _any_value_to_python(log_record.body) if log_record.HasField("body") else None
    if log_record.severity_number >= _SEVERITY_ERROR:
        record["status"] = "error"
        message = _canonical_json_string(attributes.get("exception.message"))
        if message is None and isinstance(body, str) and body:
            message = body
        record["error"] = {
            "code": _error_code(attributes, {}),
            "message": message,
            "type": _canonical_json_string(attributes.get("exception.type")),
        }

    _apply_finance_attributes(record, attributes)
    extra = _extra_attributes(attributes, resource, scope)
    if log_record.HasField("body"):
        extra["log.body"] = body
    if log_record.severity_text:
        extra["log.severity"] = log_record.severity_text
    record["attributes"] = extra
    return record


def _log_event_name(log_record: LogRecord) -> str | None:
    # event_name only exists in newer opentelemetry-proto releases.
    if "event_name" not in LogRecord.DESCRIPTOR.fields_by_name:
        return None
    return log_record.event_name or None


def _span_error(span: Span, attributes: JsonDict) -> JsonDict:
    exception_attrs: JsonDict | None = None
    for event in span.events:
        if event.name == "exception":
            exception_attrs = _attributes_to_dict(event.attributes)
            break
    if exception_attrs is None:
        return {"code": _error_code(attributes, {}), "message": span.status.message or None, "type": None}
    message = _canonical_json_string(exception_attrs.get("exception.message")) or span.status.message or None
    return {
        "code": _error_code(attributes, exception_attrs),
        "message": message,
        "type": _canonical_json_string(exception_attrs.get("exception.type")),
    }


def _error_code(attributes: JsonDict, fallback: JsonDict) -> str | None:
    for source in (attributes, fallback):
        for name in _ERROR_CODE_ATTRS:
            code = _canonical_json_string(source.get(name))
            if code:
                return code
    return None


def _apply_finance_attributes(record: JsonDict, attributes: JsonDict) -> None:
    business_keys: dict[str, str] = {}
    approval: dict[str, str | None] = {}
    for name, value in attributes.items():
        # Only finance attributes are rendered as text (JSON text for non-strings): most attributes are not.
        if name == _ATTR_BUSINESS_KEY:
            business_keys["key"] = _canonical_json_string(value) or ""
        elif name.startswith(_ATTR_KEY_PREFIX) and len(name) > len(_ATTR_KEY_PREFIX):
            business_keys[name[len(_ATTR_KEY_PREFIX) :]] = _canonical_json_string(value) or ""
        elif name.startswith(_ATTR_APPROVAL_PREFIX) and name[len(_ATTR_APPROVAL_PREFIX) :] in _APPROVAL_FIELDS:
            approval[name[len(_ATTR_APPROVAL_PREFIX) :]] = _canonical_json_string(value)
    record["business_keys"] = business_keys
    record["entity"] = _canonical_json_string(attributes.get(_ATTR_ENTITY))
    record["amount"] = _canonical_json_string(attributes.get(_ATTR_AMOUNT))
    record["currency"] = _canonical_json_string(attributes.get(_ATTR_CURRENCY))
    if approval:
        record["approval"] = {field: approval.get(field) for field in _APPROVAL_FIELDS}


def _is_consumed_attribute(name: str) -> bool:
    if name in (_ATTR_EVENT, _ATTR_BUSINESS_KEY, _ATTR_ENTITY, _ATTR_AMOUNT, _ATTR_CURRENCY, _ATTR_FINANCE_ERROR_CODE):
        return True
    if name.startswith(_ATTR_KEY_PREFIX) and len(name) > len(_ATTR_KEY_PREFIX):
        return True
    return name.startswith(_ATTR_APPROVAL_PREFIX) and name[len(_ATTR_APPROVAL_PREFIX) :] in _APPROVAL_FIELDS


def _extra_attributes(attributes: JsonDict, resource: ResourceView, scope: InstrumentationScope | None) -> JsonDict:
    extra: JsonDict = dict(resource.attributes)
    if scope is not None and scope.name:
        extra["otel.scope.name"] = scope.name
    # Record attributes win over the synthetic keys above on collision: they are what the instrumentation said.
    for name, value in attributes.items():
        if not _is_consumed_attribute(name):
            extra[name] = value
    return extra


def _service_name(resource: ResourceView) -> str:
    name = resource.service_name
    if not name:
        raise RecordRejectedError("resource has no service.name")
    return name


_SPAN_KIND_PREFIX = "SPAN_KIND_"


def _span_kind_name(kind: int) -> str | None:
    if kind == Span.SPAN_KIND_UNSPECIFIED:
        return None
    value = Span.SpanKind.DESCRIPTOR.values_by_number.get(kind)
    if value is None:
        return None  # open proto3 enum: numbers from a newer spec have no name we could report
    return value.name.removeprefix(_SPAN_KIND_PREFIX)


# --------------------------------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------------------------------


def _required_id(value: bytes, size: int, label: str) -> str:
    if not value:
        raise RecordRejectedError(f"{label} is missing")
    if len(value) != size:
        raise RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
    if not any(value):
        raise RecordRejectedError(f"{label} is all zeros")
    return value.hex()


def _optional_id(value: bytes, size: int, label: str) -> str | None:
    if not value or not any(value):
        # All-zero is the W3C "invalid" id that many emitters use to mean "none"; for optional ids that is harmless.
        if value and len(value) != size:
            raise RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
        return None
    if len(value) != size:
        raise RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
    return value.hex()


def _iso_from_unix_nano(value: int) -> str:
    # timedelta keeps integer microsecond precision; float timestamps would round away the last digits.
    moment = _EPOCH + timedelta(microseconds=value // 1000)
    # isoformat, a fifth of strftime's time, writes the same text for every year a uint64 of nanoseconds reaches.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _attributes_to_dict(attributes: Any) -> JsonDict:
    result: JsonDict = {}
    for kv in attributes:
        key_value: KeyValue = kv
        result[key_value.key] = _any_value_to_python(key_value.value)
    return result


def _double_to_json(value: float) -> float | str:
    # NaN/Infinity are not valid JSON and would break JSONB storage; use the proto3 JSON spelling instead.
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_ANY_VALUE_CONVERTERS: dict[str, Callable[[AnyValue], Any]] = {
    "string_value": lambda v: v.string_value,
    "bool_value": lambda v: v.bool_value,
    "int_value": lambda v: v.int_value,
    "double_value": lambda v: _double_to_json(v.double_value),
    "array_value": lambda v: [_any_value_to_python(item) for item in v.array_value.values],
    "kvlist_value": lambda v: _attributes_to_dict(v.kvlist_value.values),
    "bytes_value": lambda v: base64.b64encode(v.bytes_value).decode("ascii"),
}


def _any_value_to_python(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    converter = _ANY_VALUE_CONVERTERS.get(which)
    # string_value_strindex only has meaning inside profiles' string tables; there is nothing to resolve it against.
    return converter(value) if converter is not None else None


def _canonical_json_string(value: Any) -> str | None:
    """Canonical string fields take any attribute type; non-strings are rendered as compact JSON (42 -> "42")."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return canonical_json(value)
