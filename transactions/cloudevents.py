"""Decode CloudEvents 1.0 HTTP requests (structured, batched and binary content mode) into canonical events.

Pure module: no Django, no ORM. The HTTP view owns authentication, size limits and status codes; this module only
turns bytes and headers into per-event results so that one bad event never costs the rest of a batch.

Every event, whatever its content mode, is first brought into its structured JSON form (`DecodedRecord.raw`) and only
that form is validated and mapped. Binary mode therefore cannot drift from structured mode, and the dead-letter store
can replay any `raw` through `structured_body` + `decode_cloudevents` and get the very same result back. (One
exception: a binary-mode header that is not valid percent-encoded UTF-8 rejects its event, and `raw` keeps the value
as sent so that it can be corrected before replay.)

Mapping decisions the ingest service relies on:

- `occurred_at` is None when the event has no `time` attribute: it means "use the receive time", which only the
  service knows.
- `system` is the `source` URI as sent; the service maps it to a system through the ingest source's aliases.
- `status` is always "ok" and `business_keys` always empty: the service's extraction rules decide both, from
  `attributes["data"]` and `attributes["cloudevents"]`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import unquote

from transactions.canonical import empty_record
from transactions.records import (
    MAX_NESTING,
    BodyDecodeError,
    DecodedRecord,
    json_loads,
    record_problem,
    split_json_array,
)

__all__ = [
    "CONTENT_TYPE_BATCH",
    "CONTENT_TYPE_STRUCTURED",
    "MAX_NESTING",
    "SPEC_VERSION",
    "CloudEventsDecodeError",
    "DecodedRecord",
    "UnsupportedMediaType",
    "decode_cloudevents",
    "structured_body",
]

CONTENT_TYPE_STRUCTURED = "application/cloudevents+json"
CONTENT_TYPE_BATCH = "application/cloudevents-batch+json"
SPEC_VERSION = "1.0"

JsonDict = dict[str, Any]
_T = TypeVar("_T")

# Any media type with this prefix names a CloudEvents event format (+json, +avro, +protobuf, -batch+json, ...).
_CLOUDEVENTS_MEDIA_PREFIX = "application/cloudevents"
_HEADER_PREFIX = "ce-"
_SPECVERSION_HEADER = "ce-specversion"

# Attributes that become canonical fields (or are the data itself) and are therefore not repeated in
# attributes["cloudevents"]. tracestate is vendor routing state of the trace, meaningless once trace_id is stored.
_CONSUMED_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "time", "traceparent", "tracestate", "data", "data_base64"}
)
_REQUIRED_ATTRIBUTES = ("id", "source", "type")
_OPTIONAL_STRING_ATTRIBUTES = ("subject", "datacontenttype", "dataschema")
# Binary mode: the body is the data and Content-Type is datacontenttype (the spec forbids ce-datacontenttype there),
# so headers claiming these names are ignored rather than allowed to contradict the body.
_BINARY_MODE_IGNORED_ATTRIBUTES = frozenset({"datacontenttype", "data", "data_base64"})

_REASON_VALUE_CHARS = 64

# RFC 3339 section 5.6 date-time. re.ASCII keeps \d from matching non-ASCII digits, which int() would accept.
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_MAX_OFFSET_HOURS = 23
_MAX_OFFSET_MINUTES = 59
_LEAP_SECOND = 60

# W3C Trace Context traceparent: version-traceid-parentid-flags, lower-case hex only. Versions after 00 may append
# further "-" fields, which a version 00 parser must ignore; version ff is forbidden.
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII | re.DOTALL)
_TRACEPARENT_INVALID_VERSION = "ff"
_TRACEPARENT_VERSION_00 = "00"
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)


class CloudEventsDecodeError(BodyDecodeError):
    """The request body cannot be decoded at all -> HTTP 400. str(e) is a readable reason."""


class UnsupportedMediaType(CloudEventsDecodeError):
    """Content type is neither a supported CloudEvents format nor a binary-mode event (no ce-specversion)."""


class _RecordRejectedError(Exception):
    """Internal: one event is unusable; carries the reason for DecodedRecord.error."""


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


def decode_cloudevents(body: bytes, *, content_type: str, headers: Mapping[str, str]) -> list[DecodedRecord]:
    """Decode one HTTP request carrying CloudEvents into one DecodedRecord per event.

    `content_type` is the full Content-Type value (parameters such as charset allowed); `headers` holds the request's
    HTTP headers, looked up case-insensitively. Raises UnsupportedMediaType (415) when the request is not a CloudEvents
    request at all, and CloudEventsDecodeError (400) when the body as a whole is unusable.
    """
    media_type = _media_type(content_type)
    if media_type == CONTENT_TYPE_STRUCTURED:
        document = _parse_json(body, "body")
        if not isinstance(document, dict):
            raise CloudEventsDecodeError(
                f"{CONTENT_TYPE_STRUCTURED} body must be a JSON object, got {_json_type_name(document)}"
            )
        return [_decode_event(0, document)]

    if media_type == CONTENT_TYPE_BATCH:
        try:
            document = json_loads(body)
        except RecursionError:
            return _decode_batch_by_element(body)  # one event too deep for the parser: the others still count
        except ValueError as exc:
            raise CloudEventsDecodeError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(document, list):
            raise CloudEventsDecodeError(
                f"{CONTENT_TYPE_BATCH} body must be a JSON array, got {_json_type_name(document)}"
            )
        return [_decode_batch_entry(index, entry) for index, entry in enumerate(document)]

    if media_type.startswith(_CLOUDEVENTS_MEDIA_PREFIX):
        raise UnsupportedMediaType(
            f"unsupported CloudEvents format {media_type!r}; use {CONTENT_TYPE_STRUCTURED} or {CONTENT_TYPE_BATCH}"
        )

    lowered = {str(name).lower(): value for name, value in headers.items()}
    if _SPECVERSION_HEADER not in lowered:
        shown = repr(media_type) if media_type else "missing"
        raise UnsupportedMediaType(
            f"content type {shown} is not a CloudEvents request: use {CONTENT_TYPE_STRUCTURED}, "
            f"{CONTENT_TYPE_BATCH}, or binary mode with ce-specversion, ce-id, ce-source and ce-type headers"
        )
    event, header_problems = _binary_mode_event(body, content_type, media_type, lowered)
    return [_decode_event(0, event, header_problems)]


def structured_body(raw: JsonDict) -> bytes:
    """The structured-mode body (application/cloudevents+json) of a `DecodedRecord.raw`, for dead-letter replay."""
    # ensure_ascii (the default) matters: JSON escapes such as "\ud800" decode to lone surrogates, which UTF-8 cannot
    # encode but an ASCII escape round-trips unchanged.
    return json.dumps(raw).encode("ascii")


# --------------------------------------------------------------------------------------------------------------------
# Content modes
# --------------------------------------------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    # Media types and their parameters are case-insensitive; only the type/subtype selects the content mode.
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _parse_json(body: bytes, label: str) -> Any:
    try:
        return json_loads(body)  # NaN and Infinity refused; objects with a repeated key marked for _decode_event
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CloudEventsDecodeError(f"{label} is not valid JSON: {exc}") from exc


def _decode_batch_by_element(body: bytes) -> list[DecodedRecord]:
    """A batch parsed event by event, after one of them was too deep to parse with the others."""
    try:
        elements = split_json_array(body.decode("utf-8"))
    except ValueError as exc:
        raise CloudEventsDecodeError(f"body is not valid JSON: {exc}") from exc
    records = []
    for index, element in enumerate(elements):
        try:
            if element.depth > MAX_NESTING:
                raise RecursionError
            entry = json_loads(element.text)
        except (ValueError, RecursionError) as exc:
            reason = (
                f"event is nested more than {MAX_NESTING} levels deep"
                if isinstance(exc, RecursionError)
                else f"batch entry is not valid JSON: {exc}"
            )
            # The parsed value cannot be kept (or walked): the dead-letter copy is the entry's text as sent.
            records.append(DecodedRecord(index, None, None, reason, {"batch_entry_text": element.text}))
            continue
        records.append(_decode_batch_entry(index, entry))
    return records


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _decode_batch_entry(index: int, entry: Any) -> DecodedRecord:
    if isinstance(entry, dict):
        return _decode_event(index, entry)
    # raw must be a JSON object; wrapping keeps what was sent visible in the dead-letter store.
    reason = f"batch entry must be a JSON object, got {_json_type_name(entry)}"
    return DecodedRecord(index=index, record=None, dedup_key=None, error=reason, raw={"batch_entry": entry})


def _binary_mode_event(
    body: bytes, content_type: str, media_type: str, headers: Mapping[str, str]
) -> tuple[JsonDict, list[str]]:
    """The structured form of a binary-mode event, and the reasons why its headers could not be read."""
    event: JsonDict = {}
    problems: list[str] = []
    for name, value in headers.items():
        if not name.startswith(_HEADER_PREFIX) or len(name) == len(_HEADER_PREFIX):
            continue
        attribute = name[len(_HEADER_PREFIX) :]
        if attribute in _BINARY_MODE_IGNORED_ATTRIBUTES:
            continue
        try:
            event[attribute] = _decode_header_value(value)
        except UnicodeDecodeError:
            problems.append(f"header {name} is not percent-encoded UTF-8: {_shown(value)}")
            event[attribute] = value  # the dead-letter copy keeps what was sent so that it can be corrected
    if content_type.strip():
        event["datacontenttype"] = content_type.strip()

    if body:
        if _is_json_media_type(media_type):
            # The sender declared JSON; silently storing unparseable bytes as text would hide a broken producer.
            data = _parse_json(body, f"body (Content-Type {media_type})")
            if data is not None:  # JSON null is "no data", exactly as a null `data` member in structured mode
                event["data"] = data
        else:
            try:
                event["data"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["data_base64"] = base64.b64encode(body).decode("ascii")
    return event, problems


def _decode_header_value(value: str) -> str:
    """Undo the HTTP binding's header encoding: optional quoted-string, then one round of percent-decoding."""
    text = value.strip(" \t")
    # Older senders double-quoted values instead of percent-encoding spaces; the spec requires accepting that.
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = _QUOTED_PAIR_RE.sub(r"\1", text[1:-1])
    # errors="strict": the spec says invalid UTF-8 (including overlong forms such as %C0%A0) MUST be rejected.
    return unquote(text, encoding="utf-8", errors="strict")


# --------------------------------------------------------------------------------------------------------------------
# Event validation and canonical mapping
# --------------------------------------------------------------------------------------------------------------------


def _decode_event(index: int, event: JsonDict, header_problems: list[str] | None = None) -> DecodedRecord:
    try:
        record = _event_to_canonical(event, header_problems or [])
    except _RecordRejectedError as exc:
        return DecodedRecord(index=index, record=None, dedup_key=None, error=str(exc), raw=_keepable(event))
    # Newline as separator: source URIs and ids both commonly contain ':', so "ce:a:b:c" could be split two ways.
    dedup_key = f"ce:{event['source']}\n{event['id']}"
    return DecodedRecord(index=index, record=record, dedup_key=dedup_key, error=None, raw=event)


def _keepable(event: JsonDict) -> JsonDict:
    """The dead-letter copy of a rejected event: the event itself, or its text when it nests too deep to be walked."""
    problem = record_problem(event)
    if problem is None or "nested" not in problem:
        return event
    try:
        return {"batch_entry_text": json.dumps(event)}
    except (ValueError, RecursionError):
        return {"batch_entry_text": "(not kept: too deeply nested to serialise)"}


def _attribute(event: JsonDict, name: str) -> Any:
    # JSON format: "When decoding attributes and a null value is encountered, it MUST be treated as unset".
    return event.get(name)


def _event_to_canonical(event: JsonDict, header_problems: list[str]) -> JsonDict:
    problems = list(header_problems)

    specversion = _attribute(event, "specversion")
    if specversion != SPEC_VERSION:
        # Every other rule below is the 1.0 spec's; checking them against another version would only add noise.
        got = "it is missing" if specversion is None else f"got {_shown(specversion)}"
        raise _RecordRejectedError("; ".join([*problems, f"specversion must be {SPEC_VERSION!r}, {got}"]))

    for name in _REQUIRED_ATTRIBUTES:
        value = _attribute(event, name)
        if value is None:
            problems.append(f"{name} is missing")
        elif not isinstance(value, str):
            problems.append(f"{name} must be a string, got {_json_type_name(value)}")
        elif not value:
            problems.append(f"{name} is empty")
    for name in _OPTIONAL_STRING_ATTRIBUTES:
        value = _attribute(event, name)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name} must be a string, got {_json_type_name(value)}")

    occurred_at = _collect(problems, _occurred_at, _attribute(event, "time"))
    trace = _collect(problems, _trace_context, _attribute(event, "traceparent"))

    data = _attribute(event, "data")
    data_base64 = _attribute(event, "data_base64")
    if data is not None and data_base64 is not None:
        problems.append("data and data_base64 are mutually exclusive")
    if data_base64 is not None and not _is_base64(data_base64):
        problems.append("data_base64 is not a base64 string")

    problem = record_problem(event)
    if problem is not None:
        problems.append(problem.replace("record is", "event is"))
    if problems:
        raise _RecordRejectedError("; ".join(problems))

    trace_id, span_id = trace if trace is not None else (None, None)
    attributes: JsonDict = {}
    if data is not None:
        attributes["data"] = data
    if data_base64 is not None:
        # Kept apart from "data" so that extraction rules never mistake base64 text for the payload itself.
        attributes["data_base64"] = data_base64
    attributes["cloudevents"] = {
        name: value for name, value in event.items() if name not in _CONSUMED_ATTRIBUTES and value is not None
    }

    record = empty_record()
    record["occurred_at"] = occurred_at
    record["system"] = event["source"]
    record["kind"] = event["type"]
    record["trace_id"] = trace_id
    record["span_id"] = span_id
    # raw must stay exactly as received for the dead-letter store while the service may redact or enrich the record
    # in place, so the two share no mutable objects.
    record["attributes"] = _json_copy(attributes)
    return record


def _json_copy(value: Any) -> Any:
    """A copy of a decoded JSON value that shares no dict or list with it. deepcopy's memo and dispatch, which such a
    value (no repeated references, no types but dicts, lists and immutable scalars) does not need, were a tenth of an
    event's CPU. Its depth is bounded: deeper events were refused (record_problem) before this."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


def _collect(problems: list[str], parse: Callable[[Any], _T], value: Any) -> _T | None:
    """parse(value) for a set attribute, None for an unset one; a failure is added to problems instead of raised."""
    if value is None:
        return None
    try:
        return parse(value)
    except _RecordRejectedError as exc:
        problems.append(str(exc))
        return None


def _occurred_at(value: Any) -> str:
    """RFC 3339 timestamp -> UTC ISO 8601 with microseconds and Z."""
    example = "such as 2026-05-18T10:15:02Z or 2026-05-18T12:15:02.5+02:00"
    if not isinstance(value, str):
        raise _RecordRejectedError(f"time must be an RFC 3339 timestamp string {example}, got {_json_type_name(value)}")
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        raise _RecordRejectedError(f"time is not an RFC 3339 timestamp {example}: {_shown(value)}")
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    fraction, offset_text = match.group(7), match.group(8)
    if offset_text is None:
        raise _RecordRejectedError(f"time has no UTC offset (add Z or an offset such as +02:00): {_shown(value)}")
    # Sub-microsecond digits (Go and Java emit nanoseconds) are truncated: Python and PostgreSQL stop at microseconds.
    microsecond = int((fraction or "")[:6].ljust(6, "0"))
    if second == _LEAP_SECOND:
        # RFC 3339 allows a leap second; datetime does not. The last representable instant before it is closest.
        second, microsecond = 59, 999_999
    try:
        if offset_text in ("Z", "z"):  # already UTC, the common case: no time zone to convert from
            moment = datetime(year, month, day, hour, minute, second, microsecond)
        else:
            moment = datetime(
                year, month, day, hour, minute, second, microsecond, tzinfo=timezone(_utc_offset(offset_text))
            ).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _RecordRejectedError(f"time is not a valid date and time: {_shown(value)}") from exc
    # isoformat pads the year to four digits, which strftime("%Y") does not do on every platform.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _utc_offset(text: str) -> timedelta:
    if text in ("Z", "z"):
        return timedelta(0)
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > _MAX_OFFSET_HOURS or minutes > _MAX_OFFSET_MINUTES:
        raise ValueError("UTC offset out of range")
    # "-00:00" means "UTC, local offset unknown" in RFC 3339; as an instant it is the same as Z.
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if text[0] == "-" else offset


def _trace_context(value: Any) -> tuple[str, str]:
    """(trace_id, span_id) from a W3C traceparent."""
    expected = "00-<32 hex>-<16 hex>-<2 hex>"
    if not isinstance(value, str):
        raise _RecordRejectedError(f"traceparent must be a string {expected}, got {_json_type_name(value)}")
    match = _TRACEPARENT_RE.fullmatch(value)
    if match is None:
        raise _RecordRejectedError(f"traceparent is not a W3C trace context value {expected}: {_shown(value)}")
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == _TRACEPARENT_INVALID_VERSION:
        raise _RecordRejectedError(f"traceparent version ff is invalid: {_shown(value)}")
    if version == _TRACEPARENT_VERSION_00 and rest is not None:
        raise _RecordRejectedError(f"traceparent version 00 has exactly four fields: {_shown(value)}")
    if not trace_id.strip("0"):
        raise _RecordRejectedError("traceparent trace id is all zeros")
    if not span_id.strip("0"):
        raise _RecordRejectedError("traceparent parent id is all zeros")
    return trace_id, span_id


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        return False
    return True


def _shown(value: Any) -> str:
    """A short repr of a sender's value for reasons: long enough to recognise, short enough for a log line."""
    if not isinstance(value, str):
        return _json_type_name(value)  # never dump a whole (possibly huge or deeply nested) JSON value into a reason
    text = value
    if len(text) > _REASON_VALUE_CHARS:
        text = text[:_REASON_VALUE_CHARS] + "..."
    return repr(text)
