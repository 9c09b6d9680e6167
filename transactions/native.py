"""Decode the native batch API body: a JSON array of canonical events, or NDJSON (one event per line)."""

import json

from transactions.records import BodyDecodeError, DecodedRecord, JsonDict

MAX_RECORDS = 10_000
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
JSON_TYPES = ("application/json", *NDJSON_TYPES)


class TooManyRecords(BodyDecodeError):
    """More records than one request may carry (HTTP 413)."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _loads(text: str | bytes) -> object:
    return json.loads(text, parse_constant=_reject_constant)


def _record(index: int, item: object) -> DecodedRecord:
    if not isinstance(item, dict):
        return DecodedRecord(index, None, None, "record must be a JSON object", {"value": item})
    event_id = item.get("event_id")
    dedup_key = f"event:{event_id}" if isinstance(event_id, str | int) and not isinstance(event_id, bool) else None
    return DecodedRecord(index, item, dedup_key, None, item)


def decode_native(body: bytes, *, content_type: str) -> list[DecodedRecord]:
    """One DecodedRecord per element (array) or non-empty line (NDJSON); validation happens in the ingest service."""
    if content_type in NDJSON_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BodyDecodeError(f"body is not UTF-8: {exc}") from exc
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_RECORDS:
            raise TooManyRecords(f"{len(lines)} records in one request; the limit is {MAX_RECORDS}")
        records = []
        for index, line in enumerate(lines):
            try:
                records.append(_record(index, _loads(line)))
            except (ValueError, RecursionError) as exc:
                records.append(DecodedRecord(index, None, None, f"line is not valid JSON: {exc}", {"line": line}))
        return records
    if not body.strip():
        return []
    try:
        document = _loads(body)
    except (ValueError, RecursionError) as exc:
        raise BodyDecodeError(f"body is not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        document = [document]  # a single event is accepted as a batch of one
    if not isinstance(document, list):
        raise BodyDecodeError("body must be a JSON array of events (or NDJSON with Content-Type application/x-ndjson)")
    if len(document) > MAX_RECORDS:
        raise TooManyRecords(f"{len(document)} records in one request; the limit is {MAX_RECORDS}")
    return [_record(index, item) for index, item in enumerate(document)]


def record_from_raw(raw: JsonDict) -> list[DecodedRecord]:
    """Re-decode one dead-lettered native record for replay."""
    if set(raw) == {"line"} and isinstance(raw["line"], str):
        return decode_native(raw["line"].encode("utf-8"), content_type=NDJSON_TYPES[0])
    if set(raw) == {"value"}:
        return [_record(0, raw["value"])]
    return [_record(0, raw)]
