"""Decode OTLP/HTTP export requests (traces and logs) into canonical events, and encode OTLP responses.

Pure module: no Django, no ORM. The HTTP view owns content negotiation, gunzip and status codes; this module only
turns bytes into per-record results so that one bad span never costs the rest of the batch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from transactions.records import BodyDecodeError, DecodedRecord, empty_record

try:  # googleapis-common-protos is optional; without it 400 bodies degrade to JSON.
    from google.rpc import status_pb2 as _rpc_status_pb2
except ImportError:  # pragma: no cover - depends on the environment
    _rpc_status_pb2 = None

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "DecodedRecord",
    "OtlpDecodeError",
    "decode_logs",
    "decode_traces",
    "encode_response",
    "encode_status",
    "request_json_from_raw",
]

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
CONTENT_TYPE_JSON = "application/json"

JsonDict = dict[str, Any]

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_SEVERITY_ERROR = 17
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
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


class OtlpDecodeError(BodyDecodeError):
    """Body cannot be decoded at all -> HTTP 400. str(e) is a readable reason."""


class _RecordRejectedError(Exception):
    """Internal: one record is unusable; carries the reason for DecodedRecord.error."""


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


def decode_traces(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    request = ExportTraceServiceRequest()
    json_id_errors: dict[tuple[int, ...], list[_JsonIdProblem]] = {}
    if content_type == CONTENT_TYPE_JSON:
        json_id_errors = _parse_json_into(body, request, _TRACES_LAYOUT)
    else:
        _parse_protobuf_into(body, request, content_type)

    results: list[DecodedRecord] = []
    for position, resource, scope, span in _iter_spans(request):
        index = len(results)
        raw = _raw_record(resource, scope, "span", span, _SPAN_ID_FIELDS, json_id_errors.get(position, []))
        try:
            _raise_json_id_problems(json_id_errors.get(position))
            record = _span_to_canonical(resource, scope, span)
        except _RecordRejectedError as exc:
            results.append(DecodedRecord(index=index, record=None, dedup_key=None, error=str(exc), raw=raw))
            continue
        dedup_key = f"span:{record['trace_id']}:{record['span_id']}"
        results.append(DecodedRecord(index=index, record=record, dedup_key=dedup_key, error=None, raw=raw))
    return results


def decode_logs(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    request = ExportLogsServiceRequest()
    json_id_errors: dict[tuple[int, ...], list[_JsonIdProblem]] = {}
    if content_type == CONTENT_TYPE_JSON:
        json_id_errors = _parse_json_into(body, request, _LOGS_LAYOUT)
    else:
        _parse_protobuf_into(body, request, content_type)

    results: list[DecodedRecord] = []
    for position, resource, scope, log_record in _iter_log_records(request):
        index = len(results)
        raw = _raw_record(resource, scope, "logRecord", log_record, _LOG_ID_FIELDS, json_id_errors.get(position, []))
        try:
            _raise_json_id_problems(json_id_errors.get(position))
            record = _log_to_canonical(resource, scope, log_record)
        except _RecordRejectedError as exc:
            results.append(DecodedRecord(index=index, record=None, dedup_key=None, error=str(exc), raw=raw))
            continue
        # Logs have no natural unique id, so identical content is treated as the same (retried) record.
        dedup_key = "log:" + hashlib.sha256(_canonical_json(raw).encode("utf-8")).hexdigest()
        results.append(DecodedRecord(index=index, record=record, dedup_key=dedup_key, error=None, raw=raw))
    return results


def encode_response(*, signal: str, rejected: int, message: str, content_type: str) -> bytes:
    if rejected < 0:
        raise ValueError("rejected must be >= 0")
    response: ExportTraceServiceResponse | ExportLogsServiceResponse
    if signal == "traces":
        response = ExportTraceServiceResponse()
        if rejected > 0 or message:
            # The spec allows rejected == 0 with a message as a warning; an empty partial_success means full success.
            response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    elif signal == "logs":
        response = ExportLogsServiceResponse()
        if rejected > 0 or message:
            response.partial_success.CopyFrom(
                ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
            )
    else:
        raise ValueError(f"unknown OTLP signal {signal!r}; expected 'traces' or 'logs'")
    return _serialise(response, content_type)


def encode_status(*, code: int, message: str, content_type: str) -> bytes:
    if content_type == CONTENT_TYPE_PROTOBUF and _rpc_status_pb2 is not None:
        return _rpc_status_pb2.Status(code=code, message=message).SerializeToString()
    # Built by hand so that code 0 is still emitted (MessageToDict would drop the proto3 default).
    return json.dumps({"code": code, "message": message}, ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------------
# Body parsing
# --------------------------------------------------------------------------------------------------------------------


def _parse_protobuf_into(body: bytes, request: Message, content_type: str) -> None:
    if content_type != CONTENT_TYPE_PROTOBUF:
        raise OtlpDecodeError(f"unsupported content type {content_type!r}")
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not a valid {request.DESCRIPTOR.name} protobuf message: {exc}") from exc


@dataclass(frozen=True)
class _JsonIdProblem:
    path: tuple[str | int, ...]  # path inside the record's JSON object, used to restore the original value in `raw`
    original: Any
    reason: str


@dataclass(frozen=True)
class _JsonLayout:
    """Where records and their id fields live in an OTLP JSON request (lowerCamelCase and proto snake_case keys)."""

    resource_key: tuple[str, str]
    scope_key: tuple[str, str]
    record_key: tuple[str, str]
    id_fields: tuple[tuple[str, str], ...]  # (camelCase, snake_case)
    has_links: bool


_ID_TRACE = ("traceId", "trace_id")
_ID_SPAN = ("spanId", "span_id")
_ID_PARENT = ("parentSpanId", "parent_span_id")

_TRACES_LAYOUT = _JsonLayout(
    resource_key=("resourceSpans", "resource_spans"),
    scope_key=("scopeSpans", "scope_spans"),
    record_key=("spans", "spans"),
    id_fields=(_ID_TRACE, _ID_SPAN, _ID_PARENT),
    has_links=True,
)
_LOGS_LAYOUT = _JsonLayout(
    resource_key=("resourceLogs", "resource_logs"),
    scope_key=("scopeLogs", "scope_logs"),
    record_key=("logRecords", "log_records"),
    id_fields=(_ID_TRACE, _ID_SPAN),
    has_links=False,
)

# Proto field name -> JSON name, for writing hex ids back into the raw representation.
_SPAN_ID_FIELDS = (("trace_id", "traceId"), ("span_id", "spanId"), ("parent_span_id", "parentSpanId"))
_LOG_ID_FIELDS = (("trace_id", "traceId"), ("span_id", "spanId"))


def _parse_json_into(body: bytes, request: Message, layout: _JsonLayout) -> dict[tuple[int, ...], list[_JsonIdProblem]]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body, parse_constant=_reject_non_json_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpDecodeError(f"top-level JSON value must be an object, got {type(document).__name__}")

    # json_format.Parse would read hex ids as base64 and silently produce wrong bytes, so ids are rewritten first.
    problems = _rewrite_json_ids(document, layout)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"JSON body is not a valid {request.DESCRIPTOR.name}: {exc}") from exc
    return problems


def _reject_non_json_constant(name: str) -> None:
    # Python's json module accepts NaN and Infinity, which RFC 8259 JSON (and every OTLP sender) does not have.
    raise ValueError(f"{name} is not a JSON value")


def _aliased_value(obj: dict[str, Any], names: tuple[str, str]) -> tuple[str | None, Any]:
    camel, snake = names
    if camel != snake and camel in obj and snake in obj:
        # protobuf's parser lets the later key silently win; refusing is safer than guessing the sender's intent.
        raise OtlpDecodeError(f"JSON object has both {camel!r} and {snake!r}")
    if camel in obj:
        return camel, obj[camel]
    if snake in obj:
        return snake, obj[snake]
    return None, None


def _list_items(obj: Any, names: tuple[str, str]) -> list[Any]:
    if not isinstance(obj, dict):
        return []  # malformed shapes are left for ParseDict to reject with a precise message
    _, value = _aliased_value(obj, names)
    return value if isinstance(value, list) else []


def _rewrite_json_ids(document: JsonDict, layout: _JsonLayout) -> dict[tuple[int, ...], list[_JsonIdProblem]]:
    problems: dict[tuple[int, ...], list[_JsonIdProblem]] = {}
    for r_index, resource_entry in enumerate(_list_items(document, layout.resource_key)):
        for s_index, scope_entry in enumerate(_list_items(resource_entry, layout.scope_key)):
            for k_index, record in enumerate(_list_items(scope_entry, layout.record_key)):
                if not isinstance(record, dict):
                    continue
                found: list[_JsonIdProblem] = []
                for names in layout.id_fields:
                    _rewrite_one_id(record, names, (), found)
                if layout.has_links:
                    for l_index, link in enumerate(_list_items(record, ("links", "links"))):
                        if isinstance(link, dict):
                            for names in (_ID_TRACE, _ID_SPAN):
                                _rewrite_one_id(link, names, ("links", l_index), found)
                if found:
                    problems[(r_index, s_index, k_index)] = found
    return problems


def _rewrite_one_id(
    obj: dict[str, Any], names: tuple[str, str], prefix: tuple[str | int, ...], found: list[_JsonIdProblem]
) -> None:
    key, value = _aliased_value(obj, names)
    if key is None or value is None:
        return
    camel = names[0]
    path = (*prefix, camel)
    label = ".".join(str(part) for part in path)
    if not isinstance(value, str):
        found.append(_JsonIdProblem(path, value, f"{label} must be a hex string"))
        obj[key] = ""
        return
    if len(value) % 2 or not _HEX_RE.fullmatch(value):
        found.append(_JsonIdProblem(path, value, f"{label} is not a hex string: {value[:64]!r}"))
        obj[key] = ""
        return
    obj[key] = base64.b64encode(binascii.unhexlify(value)).decode("ascii")


def _raise_json_id_problems(problems: list[_JsonIdProblem] | None) -> None:
    if problems:
        raise _RecordRejectedError("; ".join(problem.reason for problem in problems))


# --------------------------------------------------------------------------------------------------------------------
# Traversal and raw representation
# --------------------------------------------------------------------------------------------------------------------


def _iter_spans(
    request: ExportTraceServiceRequest,
) -> Iterator[tuple[tuple[int, int, int], Resource, InstrumentationScope | None, Span]]:
    for r_index, resource_spans in enumerate(request.resource_spans):
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope if scope_spans.HasField("scope") else None
            for k_index, span in enumerate(scope_spans.spans):
                yield (r_index, s_index, k_index), resource_spans.resource, scope, span


def _iter_log_records(
    request: ExportLogsServiceRequest,
) -> Iterator[tuple[tuple[int, int, int], Resource, InstrumentationScope | None, LogRecord]]:
    for r_index, resource_logs in enumerate(request.resource_logs):
        for s_index, scope_logs in enumerate(resource_logs.scope_logs):
            scope = scope_logs.scope if scope_logs.HasField("scope") else None
            for k_index, log_record in enumerate(scope_logs.log_records):
                yield (r_index, s_index, k_index), resource_logs.resource, scope, log_record


def _message_to_json(message: Message) -> JsonDict:
    # Enums as integers is what OTLP/JSON mandates; 64-bit ints come out as strings, which OTLP/JSON also allows.
    return json_format.MessageToDict(message, use_integers_for_enums=True)


def request_json_from_raw(raw: JsonDict, *, signal: str) -> bytes:
    """An OTLP/JSON export request carrying the one span or log record of a dead letter's `raw`, for replay."""
    scope = raw.get("scope") or {}
    resource = raw.get("resource") or {}
    if signal == "traces":
        request = {
            "resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [raw.get("span")]}]}]
        }
    elif signal == "logs":
        request = {
            "resourceLogs": [
                {"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": [raw.get("logRecord")]}]}
            ]
        }
    else:
        raise ValueError(f"unknown OTLP signal {signal!r}")
    return json.dumps(request).encode("utf-8")


def _raw_record(
    resource: Resource,
    scope: InstrumentationScope | None,
    record_key: str,
    message: Span | LogRecord,
    id_fields: tuple[tuple[str, str], ...],
    json_problems: list[_JsonIdProblem],
) -> JsonDict:
    body = _message_to_json(message)
    for proto_name, json_name in id_fields:
        value = getattr(message, proto_name)
        if value:
            body[json_name] = value.hex()
    if isinstance(message, Span):
        for link_json, link in zip(body.get("links", []), message.links, strict=True):
            for proto_name, json_name in (("trace_id", "traceId"), ("span_id", "spanId")):
                value = getattr(link, proto_name)
                if value:
                    link_json[json_name] = value.hex()
    # Ids that could not be parsed were blanked for ParseDict; the dead-letter copy must show what was actually sent.
    for problem in json_problems:
        _set_path(body, problem.path, problem.original)

    raw: JsonDict = {"resource": {"attributes": [_message_to_json(kv) for kv in resource.attributes]}}
    if scope is not None:
        raw["scope"] = _message_to_json(scope)
    raw[record_key] = body
    return raw


def _set_path(target: JsonDict, path: tuple[str | int, ...], value: Any) -> None:
    node: Any = target
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return
            node = node[part]
        else:
            if not isinstance(node, dict):
                return
            node = node.setdefault(part, {})
    if isinstance(node, dict):
        node[str(path[-1])] = value


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------------------------------
# Canonical mapping
# --------------------------------------------------------------------------------------------------------------------


def _span_to_canonical(resource: Resource, scope: InstrumentationScope | None, span: Span) -> JsonDict:
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
        raise _RecordRejectedError("span has no start time")

    attributes = _attributes_to_dict(span.attributes)
    event = _canonical_json_string(attributes.get(_ATTR_EVENT))
    kind = event or span.name
    if not kind:
        raise _RecordRejectedError("span has no name or finance.event")

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


def _log_to_canonical(resource: Resource, scope: InstrumentationScope | None, log_record: LogRecord) -> JsonDict:
    # SDKs commonly send zero-filled ids for logs emitted outside a span; that means "no trace", not a broken record.
    trace_id = _optional_id(log_record.trace_id, _TRACE_ID_BYTES, "trace id")
    span_id = _optional_id(log_record.span_id, _SPAN_ID_BYTES, "span id")

    timestamp = log_record.time_unix_nano or log_record.observed_time_unix_nano
    if not timestamp:
        raise _RecordRejectedError("log record has no time_unix_nano or observed_time_unix_nano")

    attributes = _attributes_to_dict(log_record.attributes)
    kind = (
        _canonical_json_string(attributes.get(_ATTR_EVENT))
        or _log_event_name(log_record)
        or _canonical_json_string(attributes.get("event.name"))
    )
    if not kind:
        raise _RecordRejectedError("log record has no finance.event or event name")

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
        text = _canonical_json_string(value)
        if name == _ATTR_BUSINESS_KEY:
            business_keys["key"] = text or ""
        elif name.startswith(_ATTR_KEY_PREFIX) and len(name) > len(_ATTR_KEY_PREFIX):
            business_keys[name[len(_ATTR_KEY_PREFIX) :]] = text or ""
        elif name.startswith(_ATTR_APPROVAL_PREFIX) and name[len(_ATTR_APPROVAL_PREFIX) :] in _APPROVAL_FIELDS:
            approval[name[len(_ATTR_APPROVAL_PREFIX) :]] = text
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


def _extra_attributes(attributes: JsonDict, resource: Resource, scope: InstrumentationScope | None) -> JsonDict:
    extra: JsonDict = {}
    for name, value in _attributes_to_dict(resource.attributes).items():
        if name != _SERVICE_NAME:
            extra[f"resource.{name}"] = value
    if scope is not None and scope.name:
        extra["otel.scope.name"] = scope.name
    # Record attributes win over the synthetic keys above on collision: they are what the instrumentation said.
    for name, value in attributes.items():
        if not _is_consumed_attribute(name):
            extra[name] = value
    return extra


def _service_name(resource: Resource) -> str:
    name = _canonical_json_string(_attributes_to_dict(resource.attributes).get(_SERVICE_NAME))
    if not name:
        raise _RecordRejectedError("resource has no service.name")
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
        raise _RecordRejectedError(f"{label} is missing")
    if len(value) != size:
        raise _RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
    if not any(value):
        raise _RecordRejectedError(f"{label} is all zeros")
    return value.hex()


def _optional_id(value: bytes, size: int, label: str) -> str | None:
    if not value or not any(value):
        # All-zero is the W3C "invalid" id that many emitters use to mean "none"; for optional ids that is harmless.
        if value and len(value) != size:
            raise _RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
        return None
    if len(value) != size:
        raise _RecordRejectedError(f"{label} must be {size} bytes, got {len(value)}")
    return value.hex()


def _iso_from_unix_nano(value: int) -> str:
    # timedelta keeps integer microsecond precision; float timestamps would round away the last digits.
    moment = _EPOCH + timedelta(microseconds=value // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return _canonical_json(value)


def _serialise(message: Message, content_type: str) -> bytes:
    if content_type == CONTENT_TYPE_JSON:
        return json.dumps(_message_to_json(message), ensure_ascii=False).encode("utf-8")
    return message.SerializeToString()
