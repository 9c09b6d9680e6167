"""What every ingest decoder (native, OTLP, CloudEvents) hands to the ingest service: one result per record."""

from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]


class BodyDecodeError(Exception):
    """The request body cannot be decoded at all (HTTP 400); str(e) is a reason safe to show the sender."""


@dataclass(frozen=True)
class DecodedRecord:
    """One record of a request: a canonical event dict and its idempotency key, or the reason it was rejected."""

    index: int  # 0-based position in the request
    record: JsonDict | None  # canonical event dict (native API shape); None when rejected
    dedup_key: str | None  # idempotency key within the ingest source; None when rejected
    error: str | None  # readable reason when this record alone is rejected
    raw: JsonDict  # the record as received (JSON-able), kept in the dead-letter store and used for replay
