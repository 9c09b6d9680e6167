"""Decode OTLP/HTTP export requests (traces and logs) into canonical events, and encode OTLP responses.

Pure module: no Django, no ORM. The HTTP view owns content negotiation, gunzip and status codes; this module only
turns bytes into per-record results so that one bad span never costs the rest of the batch.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from transactions.otlp_mapping import (
    RecordRejectedError,
    ResourceView,
    canonical_json,
    log_to_canonical,
    resource_view,
    span_to_canonical,
)
from transactions.records import BodyDecodeError, DecodedRecord, JsonDict

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


_HEX_RE = re.compile(r"[0-9a-fA-F]*")


class OtlpDecodeError(BodyDecodeError):
    """Body cannot be decoded at all -> HTTP 400. str(e) is a readable reason."""


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


def _span_dedup_key(record: JsonDict, raw: Callable[[], JsonDict]) -> str:
    return f"span:{record['trace_id']}:{record['span_id']}"


def _log_dedup_key(record: JsonDict, raw: Callable[[], JsonDict]) -> str:
    # Logs have no natural unique id, so identical content is treated as the same (retried) record.
    return "log:" + hashlib.sha256(canonical_json(raw()).encode("utf-8")).hexdigest()


def _decode(
    body: bytes,
    *,
    content_type: str,
    request: Any,
    layout: Any,
    items: Callable[[Any], Iterator[tuple]],
    item_name: str,
    id_fields: Any,
    to_canonical: Callable[..., JsonDict],
    dedup_key: Callable[[JsonDict, Callable[[], JsonDict]], str],
) -> list[DecodedRecord]:
    """One OTLP export request -> one DecodedRecord per span or log record, each rejected on its own."""
    json_id_errors: dict[tuple[int, ...], list[_JsonIdProblem]] = {}
    if content_type == CONTENT_TYPE_JSON:
        json_id_errors = _parse_json_into(body, request, layout)
    else:
        _parse_protobuf_into(body, request, content_type)

    results: list[DecodedRecord] = []
    views: dict[int, ResourceView] = {}
    for position, resource, scope, item in items(request):
        index = len(results)
        view = views.get(position[0])
        if view is None:
            view = views[position[0]] = resource_view(resource)
        # Built when first asked for (a rejection, a log's key, an extraction rule that reads it), and then once.
        problems = json_id_errors.get(position, [])
        raw = _once(functools.partial(_raw_record, resource, scope, item_name, item, id_fields, problems))
        try:
            _raise_json_id_problems(json_id_errors.get(position))
            record = to_canonical(view, scope, item)
        except RecordRejectedError as exc:
            results.append(DecodedRecord(index=index, record=None, dedup_key=None, error=str(exc), raw=raw))
            continue
        results.append(DecodedRecord(index=index, record=record, dedup_key=dedup_key(record, raw), error=None, raw=raw))
    return results


def _once(build: Callable[[], JsonDict]) -> Callable[[], JsonDict]:
    """`build`, called at most once (functools.cache's wrapper took longer to make than a span's whole key)."""
    built: list[JsonDict] = []

    def get() -> JsonDict:
        if not built:
            built.append(build())
        return built[0]

    return get


def decode_traces(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    return _decode(
        body,
        content_type=content_type,
        request=ExportTraceServiceRequest(),
        layout=_TRACES_LAYOUT,
        items=_iter_spans,
        item_name="span",
        id_fields=_SPAN_ID_FIELDS,
        to_canonical=span_to_canonical,
        dedup_key=_span_dedup_key,
    )


def decode_logs(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    return _decode(
        body,
        content_type=content_type,
        request=ExportLogsServiceRequest(),
        layout=_LOGS_LAYOUT,
        items=_iter_log_records,
        item_name="logRecord",
        id_fields=_LOG_ID_FIELDS,
        to_canonical=log_to_canonical,
        dedup_key=_log_dedup_key,
    )


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
        raise RecordRejectedError("; ".join(problem.reason for problem in problems))


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


def _serialise(message: Message, content_type: str) -> bytes:
    if content_type == CONTENT_TYPE_JSON:
        return json.dumps(_message_to_json(message), ensure_ascii=False).encode("utf-8")
    return message.SerializeToString()
