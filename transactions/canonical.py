"""The canonical finance event: validation, business-key normalisation, JSON paths and redaction.

Pure module (no ORM): every ingest path (native, OTLP, CloudEvents, dead-letter replay) ends in `parse_canonical`, so
one set of rules decides what may be stored. Anything PostgreSQL would refuse (NUL, lone surrogates, out-of-range
timestamps or numbers) is refused here, record by record, so that one bad record never aborts a batch's COPY.
"""

import fnmatch
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, get_args, get_origin

import orjson

JsonDict = dict[str, Any]

STATUSES = ("ok", "error")
MAX_RECORD_BYTES = 256 * 1024
MAX_TEXT = {"event_id": 200, "system": 100, "kind": 200, "entity": 50}
MAX_KEY_VALUE = 200
MAX_LINKS = 128
# The business-key types a record may carry; rules and process definitions naming others could never match.
KEY_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_HEX32 = (re.compile(r"^[0-9a-f]{32}$"), 32)
_HEX16 = (re.compile(r"^[0-9a-f]{16}$"), 16)
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
# Earliest and latest times accepted as occurred_at: older data is a clock error, later is beyond PostgreSQL's range.
_MIN_TIME = datetime(1990, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)

# Key types whose values are ERP document numbers: SAP pads them with zeros (0000012345) where CRM writes 12345.
ZERO_PADDED_KEY_TYPES = frozenset(
    {"customer", "contract", "order", "invoice", "payment", "journal", "delivery", "purchase_order", "supplier_invoice"}
)


class RecordError(ValueError):
    """One record is invalid; the message says which field and why."""


@dataclass(frozen=True)
class CanonicalEvent:
    """A validated event, ready to store."""

    event_id: str | None
    occurred_at: datetime
    system: str
    kind: str
    status: str
    duration_ms: int | None
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    links: list[dict[str, str]]
    business_keys: dict[str, str]
    entity: str | None
    amount: Decimal | None
    currency: str | None
    approval: dict[str, str] | None
    error: dict[str, str | None] | None
    attributes: JsonDict


# The one list of the event's fields: the COPY columns, the timeline's reads, the API serializer and the decoders'
# empty record all derive from it, so that a new field is added in the dataclass and nowhere else.
CANONICAL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CanonicalEvent))
_CANONICAL_NAMES = frozenset(CANONICAL_FIELDS)


def _container(annotation: Any) -> type | None:
    """list or dict for `list[...]`, `dict[...]` and their optional forms (`dict[...] | None`), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) in (list, dict):
            return get_origin(candidate)
    return None


# Lists and objects, stored as JSON (jsonb on PostgreSQL); the optional ones (approval, error) included.
JSON_FIELDS: frozenset[str] = frozenset(f.name for f in fields(CanonicalEvent) if _container(f.type) is not None)
# Required lists and objects start empty; every other field (optional objects included) starts as null.
_EMPTY_CONTAINERS: dict[str, type] = {
    f.name: container for f in fields(CanonicalEvent) if (container := get_origin(f.type)) in (list, dict)
}


def empty_record() -> JsonDict:
    """A canonical event dict with every field present and empty, for decoders to fill in."""
    record: JsonDict = dict.fromkeys(CANONICAL_FIELDS)
    for name, container in _EMPTY_CONTAINERS.items():
        record[name] = container()
    record["status"] = "ok"
    return record


def normalise_key(key_type: str, value: str) -> str:
    """Normalise a business key so that the same document meets itself across systems."""
    text = " ".join(value.split()).upper()  # runs of whitespace (str.isspace, as the regex \s) become one space
    if key_type in ZERO_PADDED_KEY_TYPES and text.isdigit():
        text = text.lstrip("0") or "0"
    return text


def check_storable(value: Any, path: str = "record") -> None:
    """Refuse what PostgreSQL cannot store in text or jsonb: NUL characters and lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise RecordError(f"{path} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError(f"{path} contains an invalid character (lone surrogate)") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, f"{path} key")
            check_storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_storable(item, f"{path}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{path} is not a finite number")


def storable_json(value: Any) -> Any:
    """A copy PostgreSQL can keep in jsonb: NUL and lone surrogates become visible escapes instead of failing."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {storable_json(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# Tuples rather than unions (str | int) in the per-field checks: isinstance takes a tuple in half the time.
_TEXTUAL = (str, int)


def _text(record: JsonDict, field: str, *, required: bool) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        if required:
            raise RecordError(f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, _TEXTUAL):
        raise RecordError(f"{field} must be a string")
    text = str(value).strip()
    if required and not text:
        raise RecordError(f"{field} is required")
    limit = MAX_TEXT.get(field)
    if limit and len(text) > limit:
        raise RecordError(f"{field} is longer than {limit} characters")
    return text or None


def parse_timestamp(value: Any, field: str = "occurred_at") -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field} must be an ISO 8601 timestamp with a time zone, e.g. 2026-05-18T10:15:02Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"{field} is not an ISO 8601 timestamp: {value[:40]!r}") from exc
    if moment.tzinfo is None:
        raise RecordError(f"{field} has no time zone (add Z or an offset such as +02:00)")
    moment = moment.astimezone(UTC)
    if not _MIN_TIME <= moment < _MAX_TIME:
        raise RecordError(f"{field} is out of range (1990 to 2199)")
    return moment


def _hex_id(value: Any, field: str, shape: tuple[re.Pattern[str], int], *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise RecordError(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} must be a hex string")
    pattern, length = shape
    text = value.strip().lower()
    if not pattern.match(text):
        raise RecordError(f"{field} must be {length} hex characters")
    if set(text) == {"0"}:
        raise RecordError(f"{field} must not be all zeros")
    return text


def _links(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError("links must be a list of {trace_id, span_id}")
    if len(value) > MAX_LINKS:
        raise RecordError(f"links has more than {MAX_LINKS} entries")
    links = []
    for i, link in enumerate(value):
        if not isinstance(link, dict):
            raise RecordError(f"links[{i}] must be an object with trace_id and span_id")
        links.append(
            {
                "trace_id": _hex_id(link.get("trace_id"), f"links[{i}].trace_id", _HEX32, required=True),
                "span_id": _hex_id(link.get("span_id"), f"links[{i}].span_id", _HEX16, required=True),
            }
        )
    return links


# Key types found well-formed: the same few recur in every record.
_KEY_TYPES_SEEN: set[str] = set()
_REMEMBERED_KEY_TYPES = 1024


def _business_keys(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError('business_keys must be an object such as {"contract": "C-1001"}')
    keys = {}
    for key_type, raw in value.items():
        if key_type not in _KEY_TYPES_SEEN:
            if not isinstance(key_type, str) or not KEY_TYPE_RE.match(key_type):
                raise RecordError(f"business key type {key_type!r} must be lower-case letters, digits and _")
            if len(_KEY_TYPES_SEEN) < _REMEMBERED_KEY_TYPES:  # key types are sender-chosen: bound what is kept
                _KEY_TYPES_SEEN.add(key_type)
        if raw is None or raw == "":
            continue
        if isinstance(raw, bool) or not isinstance(raw, _TEXTUAL):
            raise RecordError(f"business_keys.{key_type} must be a string")
        normalised = normalise_key(key_type, str(raw))
        if not normalised:
            continue
        if len(normalised) > MAX_KEY_VALUE:
            raise RecordError(f"business_keys.{key_type} is longer than {MAX_KEY_VALUE} characters")
        keys[key_type] = normalised
    return keys


_AMOUNT_STEP, _AMOUNT_LIMIT = Decimal("0.0001"), Decimal("1e16")


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError('amount must be a decimal string such as "125000.00"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise RecordError(f"amount is not a decimal number: {str(value)[:40]!r}") from exc
    if not amount.is_finite():
        raise RecordError("amount must be a finite number")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4 and amount != amount.quantize(_AMOUNT_STEP):
        raise RecordError("amount has more than 4 decimal places")
    if abs(amount) >= _AMOUNT_LIMIT:
        raise RecordError("amount is too large (16 integer digits at most)")
    return amount.quantize(_AMOUNT_STEP)


def _approval(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError("approval must be an object with actor, decision and step")
    approval = {}
    for field in ("actor", "decision", "step"):
        item = value.get(field)
        if item is not None and not isinstance(item, str):
            raise RecordError(f"approval.{field} must be a string")
        if item:
            approval[field] = item[:200]
    if not approval.get("actor") or not approval.get("decision"):
        raise RecordError("approval needs at least actor and decision")
    return approval


def _error(value: Any) -> dict[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"code": None, "message": value[:2000], "type": None}
    if not isinstance(value, dict):
        raise RecordError("error must be an object with code, message and type")
    error: dict[str, str | None] = {}
    for field, limit in (("code", 100), ("message", 2000), ("type", 200)):
        item = value.get(field)
        if item is not None and (isinstance(item, bool) or not isinstance(item, _TEXTUAL)):
            raise RecordError(f"error.{field} must be a string")
        error[field] = str(item)[:limit] if item is not None else None
    return error


# How much longer json.dumps's text (", " and ": " separators, exponents such as 1e+16, the top-level nulls left out
# below) can be than orjson's compact one: at most three times as long, plus the nulls.
_DUMPS_GROWTH, _TOP_LEVEL_NULLS = 3, 1024


def _check_encoding(record: JsonDict) -> None:
    """Refuse a record that is too large (the size of its json.dumps text) or holds what PostgreSQL cannot store.

    orjson answers the common case in a tenth of json.dumps's time: a compact encoding well under the limit, with no
    null that could stand for a non-finite number (orjson writes NaN as null; top-level nulls are left out, as they
    cannot be numbers) and no lone surrogate (orjson refuses those). Anything else takes json.dumps's exact path, and
    only a record refused there, or whose text may hold a NUL, is walked to name the offending path.
    """
    try:
        compact = orjson.dumps({k: v for k, v in record.items() if v is not None}, default=str)
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate, an integer past 64 bits, a key that is no string
        compact = None
    if (
        compact is not None
        and b"null" not in compact
        and len(compact) * _DUMPS_GROWTH + _TOP_LEVEL_NULLS <= MAX_RECORD_BYTES
    ):
        if b"\\u0000" in compact:
            check_storable(record)
        return
    try:
        text = json.dumps(record, default=str, allow_nan=False, ensure_ascii=False)
        size = len(text.encode("utf-8"))
    except ValueError as exc:  # a non-finite number, or a lone surrogate (UnicodeEncodeError)
        check_storable(record)
        raise RecordError("record contains a number that is not finite") from exc
    if "\\u0000" in text:
        check_storable(record)
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"record is larger than {MAX_RECORD_BYTES // 1024} KiB")


def parse_canonical(
    record: Any, *, require_event_id: bool = False, redactor: "Redactor | None" = None
) -> CanonicalEvent:
    """Validate one canonical record; unknown top-level fields are kept in `attributes`, redacted by `redactor`."""
    if not isinstance(record, dict):
        raise RecordError("record must be a JSON object")
    _check_encoding(record)

    attributes = record.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise RecordError("attributes must be an object")
    unknown = {k: v for k, v in record.items() if k not in _CANONICAL_NAMES}
    attributes = {**unknown, **attributes} if unknown else dict(attributes)
    if redactor:
        attributes = redact(attributes, redactor)

    status = record.get("status", "ok")
    if status not in STATUSES:
        raise RecordError('status must be "ok" or "error"')
    duration = record.get("duration_ms")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < 10**12:
            raise RecordError("duration_ms must be a non-negative number of milliseconds")
        duration = int(duration)
    currency = _text(record, "currency", required=False)
    if currency is not None and not _CURRENCY_RE.match(currency):
        raise RecordError("currency must be an ISO 4217 code such as EUR")
    error = _error(record.get("error"))
    if status == "error" and error is None:
        error = {"code": None, "message": None, "type": None}

    return _new_event(
        {
            "event_id": _text(record, "event_id", required=require_event_id),
            "occurred_at": parse_timestamp(record.get("occurred_at")),
            "system": _text(record, "system", required=True) or "",
            "kind": _text(record, "kind", required=True) or "",
            "status": status,
            "duration_ms": duration,
            "trace_id": _hex_id(record.get("trace_id"), "trace_id", _HEX32),
            "span_id": _hex_id(record.get("span_id"), "span_id", _HEX16),
            "parent_span_id": _hex_id(record.get("parent_span_id"), "parent_span_id", _HEX16),
            "links": _links(record.get("links")),
            "business_keys": _business_keys(record.get("business_keys")),
            "entity": _text(record, "entity", required=False),
            "amount": _amount(record.get("amount")),
            "currency": currency,
            "approval": _approval(record.get("approval")),
            "error": error,
            "attributes": attributes,
        }
    )


def _new_event(values: JsonDict) -> CanonicalEvent:
    """CanonicalEvent(**values), every field given, without the frozen dataclass's __init__: it sets each field
    through object.__setattr__, 5 us an event and a twentieth of a batch's CPU. The instance is the same, as frozen."""
    event = object.__new__(CanonicalEvent)
    event.__dict__.update(values)
    return event


# ---- JSON paths for business-key extraction rules -------------------------------------------------------------------

_PATH_TOKEN = re.compile(r'\.?([A-Za-z_$][\w$-]*)|\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]')


class PathError(ValueError):
    """A JSON path rule is not well-formed."""


def parse_path(path: str) -> list[str | int]:
    """`data.SalesOrder`, `data.object.id`, `attributes["sap.order"]`, `data.items[0].id` -> segments."""
    segments: list[str | int] = []
    position = 0
    text = path.strip()
    if not text:
        raise PathError("path is empty")
    while position < len(text):
        match = _PATH_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise PathError(f"cannot read path {path!r} at position {position}")
        name, quoted, index = match.groups()
        if name is not None:
            segments.append(name)
        elif quoted is not None:
            segments.append(quoted.replace('\\"', '"'))
        else:
            segments.append(int(index))
        position = match.end()
    return segments


def resolve_path(document: Any, segments: list[str | int]) -> Any:
    """The value at `segments` in `document`, or None when any step is missing."""
    current = document
    for segment in segments:
        if isinstance(segment, int):
            if not isinstance(current, list) or segment >= len(current):
                return None
            current = current[segment]
        else:
            if not isinstance(current, dict) or segment not in current:
                return None
            current = current[segment]
    return current


@functools.lru_cache(maxsize=4096)
def kind_matches(pattern: str, kind: str) -> bool:
    """Case-insensitive glob; `a|b` matches either (a step may be `invoice.posted` here, a SAP event type there).

    Remembered per (pattern, kind): an estate has a few dozen kinds and patterns, and ingest, correlation and
    lineage ask the same pairs for every record.
    """
    return glob_matches(pattern or "*", kind)


def glob_matches(pattern: str, value: str) -> bool:
    """Case-insensitive glob; `a|b` matches either. The pattern is compiled to one regex once per process."""
    return _glob_regex(pattern).match(value.lower()) is not None


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = (part.strip().lower() for part in pattern.split("|"))
    return re.compile("|".join(f"(?:{fnmatch.translate(part)})" for part in parts))


# ---- Redaction ------------------------------------------------------------------------------------------------------

REDACT_DROP, REDACT_MASK, REDACT_HASH = "drop", "mask", "hash"
MASK = "***"


@dataclass(frozen=True)
class RedactionSpec:
    """A name pattern (fnmatch, case-insensitive, on attribute names at any depth) and what to do with matches."""

    pattern: str
    action: str

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name.lower(), self.pattern.lower())


class Redactor:
    """A source's redaction specs, with each attribute name's verdict remembered: the same few dozen names recur in
    every record, and matching every name against every pattern was an eighth of a batch's time."""

    _REMEMBERED_NAMES = 4096

    def __init__(self, specs: Iterable[RedactionSpec]) -> None:
        self.specs = tuple(specs)
        self._verdicts: dict[str, RedactionSpec | None] = {}

    def __bool__(self) -> bool:
        return bool(self.specs)

    def spec_for(self, name: str) -> RedactionSpec | None:
        try:
            return self._verdicts[name]
        except KeyError:
            spec = next((s for s in self.specs if s.matches(name)), None)
            if len(self._verdicts) < self._REMEMBERED_NAMES:  # names are sender-chosen: bound what is kept
                self._verdicts[name] = spec
            return spec


def _redacted_value(value: Any, action: str) -> Any:
    if action == REDACT_MASK:
        return MASK
    # Hashing keeps equal values joinable (same customer e-mail -> same token) without storing them.
    text = json.dumps(value, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def redact(value: Any, specs: Iterable[RedactionSpec] | Redactor) -> Any:
    """A copy of `value` with matching names dropped, masked or hashed; also OTLP {"key": .., "value": ..} pairs."""
    redactor = specs if isinstance(specs, Redactor) else Redactor(specs)
    return _redact(value, redactor) if redactor else value


def _redact(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("key"), str) and "value" in item:
                spec = redactor.spec_for(item["key"])
                if spec is not None:
                    if spec.action == REDACT_DROP:
                        continue
                    item = {**item, "value": {"stringValue": _redacted_value(item["value"], spec.action)}}
                    out.append(item)
                    continue
            out.append(_redact(item, redactor))
        return out
    if isinstance(value, dict):
        out_dict = {}
        for key, item in value.items():
            spec = redactor.spec_for(str(key))
            if spec is None:
                out_dict[key] = _redact(item, redactor)
            elif spec.action != REDACT_DROP:
                out_dict[key] = _redacted_value(item, spec.action)
        return out_dict
    return value
