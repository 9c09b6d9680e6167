"""Decode the native batch API body: a JSON array of canonical events, or NDJSON (one event per line)."""

import json

from transactions.records import (
    MAX_NESTING,
    ArrayElement,
    BodyDecodeError,
    DecodedRecord,
    JsonDict,
    json_loads,
    record_problem,
    split_json_array,
)

MAX_RECORDS = 10_000
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
JSON_TYPES = ("application/json", *NDJSON_TYPES)


class TooManyRecords(BodyDecodeError):
    """More records than one request may carry (HTTP 413)."""


# Passed as `text` when an element's text is not at hand: the caller re-reads the body if a record needs it.
_TEXT_NOT_AT_HAND = ""


def _record(index: int, item: object, text: str | None = None) -> DecodedRecord:
    """One decoded element; `text` is its JSON text, kept as the dead-letter copy when the parsed value cannot be."""
    problem = record_problem(item)
    if problem is not None:
        # A repeated key would be lost and a deep value cannot be walked: the dead letter keeps the text as sent.
        return _rejected(index, problem, text if text is not None else _text_of(item))
    if not isinstance(item, dict):
        return DecodedRecord(index, None, None, "record must be a JSON object", {"value": item})
    event_id = item.get("event_id")
    dedup_key = f"event:{event_id}" if isinstance(event_id, str | int) and not isinstance(event_id, bool) else None
    return DecodedRecord(index, item, dedup_key, None, item)


def _rejected(index: int, reason: str, text: str) -> DecodedRecord:
    # {"line": text} is what a rejected NDJSON line keeps, and what replay decodes as one line again.
    return DecodedRecord(index, None, None, reason, {"line": text})


def _text_of(item: object) -> str:
    try:
        return json.dumps(item)
    except (ValueError, RecursionError):
        return "(not kept: too deeply nested to serialise)"


def _line(index: int, line: bytes) -> DecodedRecord:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _rejected(index, f"line is not UTF-8: {exc}", line.decode("utf-8", errors="backslashreplace"))
    try:
        return _record(index, json_loads(text), text)
    except (ValueError, RecursionError) as exc:
        return _rejected(index, f"line is not valid JSON: {_reason(exc)}", text)


def _element(index: int, element: ArrayElement) -> DecodedRecord:
    if element.depth > MAX_NESTING:
        return _rejected(index, f"record is nested more than {MAX_NESTING} levels deep", element.text)
    try:
        return _record(index, json_loads(element.text), element.text)
    except (ValueError, RecursionError) as exc:
        return _rejected(index, f"record is not valid JSON: {_reason(exc)}", element.text)


def _reason(exc: Exception) -> str:
    return f"nested more than {MAX_NESTING} levels deep" if isinstance(exc, RecursionError) else str(exc)


def decode_native(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    """One DecodedRecord per element (array) or non-empty line (NDJSON); validation happens in the ingest service.

    A record that cannot be read on its own (invalid UTF-8 or JSON on its line, nested too deep, a key repeated) is
    rejected alone; only a body whose structure cannot be told apart is a BodyDecodeError.
    """
    if content_type in NDJSON_TYPES:
        # Lines are split as bytes (\n, \r\n, \r), so that one line of invalid UTF-8 costs only that line.
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) > MAX_RECORDS:
            raise TooManyRecords(f"{len(lines)} records in one request; the limit is {MAX_RECORDS}")
        return [_line(index, line) for index, line in enumerate(lines)]
    if not body.strip():
        return []
    try:
        document = json_loads(body)
    except RecursionError:
        return _split_array(body)  # one element too deep for the parser: the others still count
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BodyDecodeError(f"body is not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        document = [document]  # a single event is accepted as a batch of one
    if not isinstance(document, list):
        raise BodyDecodeError("body must be a JSON array of events (or NDJSON with Content-Type application/x-ndjson)")
    if len(document) > MAX_RECORDS:
        raise TooManyRecords(f"{len(document)} records in one request; the limit is {MAX_RECORDS}")
    records = [_record(index, item, _TEXT_NOT_AT_HAND) for index, item in enumerate(document)]
    if any(record.raw.get("line") == _TEXT_NOT_AT_HAND for record in records):
        # Rare: a record rejected for its shape keeps its text as sent, which only a scan of the body can give.
        return _split_array(body)
    return records


def _split_array(body: bytes) -> list[DecodedRecord]:
    try:
        elements = split_json_array(body.decode("utf-8"))
    except ValueError as exc:
        raise BodyDecodeError(f"body is not valid JSON: {exc}") from exc
    if len(elements) > MAX_RECORDS:
        raise TooManyRecords(f"{len(elements)} records in one request; the limit is {MAX_RECORDS}")
    return [_element(index, element) for index, element in enumerate(elements)]


def record_from_raw(raw: JsonDict) -> list[DecodedRecord]:
    """Re-decode one dead-lettered native record for replay."""
    if set(raw) == {"line"} and isinstance(raw["line"], str):
        return decode_native(raw["line"].encode("utf-8"), content_type=NDJSON_TYPES[0])
    if set(raw) == {"value"}:
        return [_record(0, raw["value"])]
    return [_record(0, raw)]
