"""What every ingest decoder (native, OTLP, CloudEvents) hands to the ingest service: one result per record."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]


class BodyDecodeError(Exception):
    """The request body cannot be decoded at all (HTTP 400); str(e) is a reason safe to show the sender."""


class DecodedRecord:
    """One record of a request: a canonical event dict and its idempotency key, or the reason it was rejected."""

    __slots__ = ("_raw", "dedup_key", "error", "index", "record")

    def __init__(
        self,
        index: int,
        record: JsonDict | None,
        dedup_key: str | None,
        error: str | None,
        raw: JsonDict | Callable[[], JsonDict],
    ) -> None:
        self.index = index  # 0-based position in the request
        self.record = record  # canonical event dict (native API shape); None when rejected
        self.dedup_key = dedup_key  # idempotency key within the ingest source; None when rejected
        self.error = error  # readable reason when this record alone is rejected
        self._raw = raw

    @property
    def raw(self) -> JsonDict:
        """The record as received (JSON-able), kept in the dead-letter store and used for replay.

        A decoder for which it is costly (OTLP: protobuf to JSON was a third of a span's CPU) passes a function that
        builds it, called on first use only: most accepted records never need it."""
        if callable(self._raw):
            self._raw = self._raw()
        return self._raw

    def _fields(self) -> tuple:
        return (self.index, self.record, self.dedup_key, self.error, self.raw)

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if isinstance(other, DecodedRecord) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable contents, as a dataclass with these fields would be

    def __repr__(self) -> str:
        index, record, dedup_key, error, raw = self._fields()
        return f"DecodedRecord({index=}, {record=}, {dedup_key=}, {error=}, {raw=})"


# Deeper JSON than this is refused per record: downstream code (storage checks, redaction, JSONB) walks values
# recursively and must not hit Python's recursion limit on a hostile payload.
MAX_NESTING = 100

# A JSON string (escapes included) or one structural character; everything else (numbers, literals, whitespace) is
# skipped over by finditer. Unrolled so that long strings are matched in one step of the regex engine.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_WHITESPACE = " \t\r\n"


class DuplicateKeyObject(dict):
    """A JSON object in which a key was repeated; the decoder keeps the last value, as json.loads does."""

    repeated: tuple[str, ...] = ()


def _pairs_to_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    flagged = DuplicateKeyObject(obj)
    flagged.repeated = tuple(key for key, _ in pairs if key in seen or seen.add(key))
    return flagged


def _reject_constant(name: str) -> None:
    # Python's json module accepts NaN and Infinity, which RFC 8259 JSON does not have and JSONB cannot store.
    raise ValueError(f"{name} is not a JSON value")


def json_loads(data: bytes | str) -> Any:
    """json.loads for ingest: NaN and Infinity refused, objects with a repeated key marked (see `record_problem`)."""
    return json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_pairs_to_object)


def record_problem(value: Any, *, limit: int = MAX_NESTING) -> str | None:
    """Why one decoded record must be rejected on its own (nested too deep, a key repeated), or None."""
    # Iterative on purpose: a recursive walk would itself fail on the values it is meant to refuse.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > limit:
                return f"record is nested more than {limit} levels deep"
            if isinstance(node, DuplicateKeyObject):
                return f"duplicate key {node.repeated[0][:64]!r} in one JSON object"
            children: Any = node.values()
        elif isinstance(node, list):
            if depth > limit:
                return f"record is nested more than {limit} levels deep"
            children = node
        else:
            continue
        below = depth + 1
        stack += [(child, below) for child in children if isinstance(child, _CONTAINERS)]
    return None


_CONTAINERS = (dict, list)  # a tuple: isinstance takes it faster than the union dict | list


@dataclass(frozen=True)
class ArrayElement:
    """One element of a top-level JSON array, as text, with how deep it nests (an object or array alone is 1)."""

    text: str
    depth: int


def split_json_array(text: str) -> list[ArrayElement]:
    """The elements of a top-level JSON array, found by a scan that never recurses, so that one element too deep for
    the JSON parser (or for anything after it) can be rejected alone while the others are parsed one by one.

    Raises ValueError when the text is not an array with balanced brackets; each element's own syntax is left to the
    parser. Newlines between tokens are turned into spaces, which JSON allows, so an element fits one NDJSON line.
    """
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if not text.startswith("[", start):
        raise ValueError("body is not a JSON array")
    elements: list[ArrayElement] = []
    depth, deepest, element_start, end = 0, 0, start + 1, None
    for match in _JSON_TOKEN.finditer(text, start):
        lexeme = match.group()
        if lexeme in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth - 1)
        elif lexeme in ("]", "}"):
            depth -= 1
            if depth == 0:
                end = match.end()
                piece = text[element_start : match.start()].strip(_WHITESPACE)
                if piece or elements:
                    elements.append(ArrayElement(_one_line(piece), deepest))
                break
            if depth < 0:
                raise ValueError("unbalanced brackets")
        elif lexeme == "," and depth == 1:
            elements.append(ArrayElement(_one_line(text[element_start : match.start()].strip(_WHITESPACE)), deepest))
            element_start, deepest = match.end(), 0
    if end is None or text[end:].strip(_WHITESPACE):
        raise ValueError("body is not one JSON array with balanced brackets")
    return elements


def _one_line(text: str) -> str:
    # Raw line breaks cannot occur inside JSON strings, so outside them they are whitespace and may become spaces.
    return text.replace("\r", " ").replace("\n", " ")
