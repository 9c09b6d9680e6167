"""parse_canonical's checks on a record as a whole: its size and what PostgreSQL cannot store (pure, no database)."""

import dataclasses
import json

import pytest

from tests.factories import canonical
from transactions.canonical import CANONICAL_FIELDS, MAX_RECORD_BYTES, CanonicalEvent, RecordError, parse_canonical


def test_a_parsed_event_is_a_whole_frozen_canonical_event():
    event = parse_canonical(canonical())
    assert tuple(vars(event)) == CANONICAL_FIELDS  # every field, in the dataclass's order
    assert event == CanonicalEvent(**vars(event))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.kind = "changed"  # type: ignore[misc]


def _padded_to(size: int, **overrides: object) -> dict:
    """A canonical record whose json.dumps text (ensure_ascii off, as the limit counts it) is `size` UTF-8 bytes."""
    record = canonical(attributes={"note": "Zahlung f\u00e4llig \u20ac", "pad": ""}, **overrides)
    base = len(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    record["attributes"]["pad"] = "x" * (size - base)
    assert len(json.dumps(record, ensure_ascii=False).encode("utf-8")) == size
    return record


@pytest.mark.parametrize("overrides", [{}, {"parent_span_id": None, "links": []}], ids=["full", "with nulls"])
def test_the_size_limit_counts_the_json_text_to_the_byte(overrides):
    assert parse_canonical(_padded_to(MAX_RECORD_BYTES, **overrides)).event_id == "evt-1"
    with pytest.raises(RecordError, match="larger than 256 KiB"):
        parse_canonical(_padded_to(MAX_RECORD_BYTES + 1, **overrides))


@pytest.mark.parametrize(
    "attributes",
    [{"rate": float("nan")}, {"rates": [1.5, float("inf")]}, {"deep": {"rate": -float("inf")}}],
    ids=["nan", "inf in a list", "nested -inf"],
)
def test_a_number_that_is_not_finite_is_refused_wherever_it_sits(attributes):
    with pytest.raises(RecordError, match="is not a finite number"):
        parse_canonical(canonical(attributes=attributes))
    with pytest.raises(RecordError, match="is not a finite number"):
        parse_canonical(canonical(duration_ms=None, entity=None, attributes=attributes))  # beside top-level nulls


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"note": "a\u0000b"}, r"record\.attributes\.note contains a NUL"),
        ({"notes": ["ok", {"x": "\ud800"}]}, r"record\.attributes\.notes\[1\]\.x contains an invalid character"),
    ],
    ids=["nul", "lone surrogate"],
)
def test_what_postgresql_cannot_store_is_refused_with_its_path(attributes, reason):
    with pytest.raises(RecordError, match=reason):
        parse_canonical(canonical(attributes=attributes))


def test_values_that_only_look_like_refused_ones_are_kept():
    # The text "\u0000" (a backslash, not a NUL), the word null and an integer past 64 bits are all storable.
    attributes = {"escape": "\\u0000", "word": "nullable", "sequence": 2**70, "nothing": None}
    assert parse_canonical(canonical(attributes=attributes)).attributes == attributes
