"""How a request's accepted events are written: the idempotency claims, the batch row and the events, in the caller's
transaction (`events_store`: binary COPY for large batches on PostgreSQL, one statement for small ones, bulk_create
on SQLite) or, for a small batch with nothing else to write, as one statement committed on its own
(`events_store_committed`)."""

import functools
import json
import operator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.db import connection
from psycopg.types.json import Jsonb
from psycopg.types.numeric import Int8

from console.lib.bulk import copy_types
from transactions.canonical import CANONICAL_FIELDS, JSON_FIELDS, CanonicalEvent
from transactions.models import Event, IdempotencyKey, IngestBatch, IngestSource

# How long one batch may wait for a row lock (milliseconds); with the pool wait (DATABASE_POOL_TIMEOUT) this keeps
# an ingest request well under an OpenTelemetry exporter's 10 s timeout.
INGEST_LOCK_TIMEOUT_MS = 2000
# What a batch adds to each canonical event's fields when it stores it.
_STORAGE_COLUMNS = ("received_at", "source_id", "batch_id", "channel", "dedup_key")
_EVENT_COLUMNS = _STORAGE_COLUMNS + CANONICAL_FIELDS


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    batch_id: int | None = None
    event_ids: list[int] = field(default_factory=list)


def events_store(
    source: IngestSource,
    channel: str,
    received_at: datetime,
    accepted: dict[str, CanonicalEvent],
    outcome: IngestOutcome,
) -> None:
    """In the caller's transaction: claim the idempotency keys, write the batch row with its final counts and the
    events whose keys were claimed; `outcome` gets the batch, the counts and the event ids."""
    if connection.vendor == "postgresql":
        _batch_store_postgresql(source, channel, received_at, accepted, outcome)
        return
    batch = IngestBatch.objects.create(source=source, channel=channel, received_at=received_at)
    fresh = _claim_keys(source, sorted(accepted), received_at) if accepted else set()
    rows = [(key, accepted[key]) for key in accepted if key in fresh]
    outcome.event_ids = _store_events(batch, channel, rows)
    outcome.accepted = len(rows)
    outcome.duplicates += len(accepted) - len(rows)
    outcome.batch_id = batch.pk
    IngestBatch.objects.filter(pk=batch.pk).update(
        accepted=outcome.accepted, duplicates=outcome.duplicates, rejected=len(outcome.rejected)
    )


def events_store_committed(
    source: IngestSource,
    channel: str,
    received_at: datetime,
    accepted: dict[str, CanonicalEvent],
    outcome: IngestOutcome,
) -> bool:
    """Store and commit a small batch in one round trip when it can be (`_commits_in_one_round_trip`), for a caller
    with nothing else to write with it (no dead letters); False, with nothing done, when it cannot and the caller
    stores it with `events_store` in a transaction of its own."""
    if not _commits_in_one_round_trip(accepted):
        return False
    connection.ensure_connection()
    _batch_store_in_one_statement(source, channel, received_at, accepted, outcome, commit=True)
    return True


def _claim_keys(source: IngestSource, keys: list[str], received_at: datetime) -> set[str]:
    """Insert idempotency keys; the ones returned are new. Sorted, so that racing batches lock in one order."""
    claimed: set[str] = set()
    table = IdempotencyKey._meta.db_table
    step = 500
    with connection.cursor() as cursor:
        for start in range(0, len(keys), step):
            chunk = keys[start : start + step]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for key in chunk:
                params += [source.pk, key, received_at]
            cursor.execute(
                f"INSERT INTO {table} (source_id, key, received_at) VALUES {values} "
                "ON CONFLICT (source_id, key) DO NOTHING RETURNING key",
                params,
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


def _event_values(
    batch_id: int, source_id: int, received_at: datetime, channel: str, dedup_key: str, event: CanonicalEvent
) -> dict[str, Any]:
    return {
        "received_at": received_at,
        "source_id": source_id,
        "batch_id": batch_id,
        "channel": channel,
        "dedup_key": dedup_key,
        **{name: getattr(event, name) for name in CANONICAL_FIELDS},
    }


def _store_events(batch: IngestBatch, channel: str, rows: list[tuple[str, CanonicalEvent]]) -> list[int]:
    """SQLite (the quick start): one bulk insert; PostgreSQL stores through `_batch_store_postgresql`."""
    if not rows:
        return []
    values = [_event_values(batch.pk, batch.source_id, batch.received_at, channel, key, event) for key, event in rows]
    created = Event.objects.bulk_create([Event(**row) for row in values], batch_size=500)
    return [e.pk for e in created]


# Up to this many events a batch is written by one statement (`_batch_store_in_one_statement`, one round trip);
# larger batches use binary COPY, which takes more round trips but is faster per row.
_ONE_STATEMENT_ROWS = 64


def _batch_store_postgresql(
    source: IngestSource,
    channel: str,
    received_at: datetime,
    accepted: dict[str, CanonicalEvent],
    outcome: IngestOutcome,
) -> None:
    """Claim the idempotency keys, write the batch row with its final counts and the new events: psycopg's pipeline
    sends the lock bound, the claims and the id reservations at once, then the batch row, then the events by binary
    COPY. Ids come from the tables' own sequences, reserved up front, so nothing is read back and the batch row is
    never updated. Small batches take one statement instead (`_batch_store_in_one_statement`).
    """
    if 0 < len(accepted) <= _ONE_STATEMENT_ROWS:
        _batch_store_in_one_statement(source, channel, received_at, accepted, outcome)
        return
    raw = connection.connection
    keys = sorted(accepted)  # sorted, so that racing batches lock the same keys in one order
    table = IdempotencyKey._meta.db_table
    with connection.wrap_database_errors:
        with raw.pipeline():
            # A batch that cannot take its locks in time (a racing batch holds the same idempotency keys) fails with
            # 503 + Retry-After instead of holding its sender past the exporter's own timeout.
            raw.execute(f"SET LOCAL lock_timeout = '{INGEST_LOCK_TIMEOUT_MS}ms'")
            # One statement whatever the batch size: an array parameter instead of three placeholders a key, whose
            # query text psycopg had to parse anew for every batch. unnest keeps the sorted order, and so the locks'.
            # The array is bound by the server and sent in binary (%b): quoted into the text by Django's client-side
            # binding, it took 7 us of CPU a key, as much as parsing a record.
            claims = psycopg.Cursor(raw)
            claims.execute(
                f"INSERT INTO {table} (source_id, key, received_at) SELECT %s, unnest(%b::text[]), %s "
                "ON CONFLICT (source_id, key) DO NOTHING RETURNING key",
                [source.pk, keys, received_at],
            )
            batch_id_cursor = raw.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [IngestBatch._meta.db_table]
            )
            ids_cursor = raw.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Event._meta.db_table, len(keys)],
            )
        fresh = {row[0] for row in claims.fetchall()}
        batch_id = batch_id_cursor.fetchone()[0]
        event_ids = [row[0] for row in ids_cursor.fetchall()]
        rows = [(key, accepted[key]) for key in accepted if key in fresh]
        outcome.accepted = len(rows)
        outcome.duplicates += len(accepted) - len(rows)
        outcome.batch_id = batch_id
        outcome.event_ids = event_ids[: len(rows)]
        columns = ", ".join(("id", *_EVENT_COLUMNS))
        with raw.pipeline():
            raw.execute(
                f"INSERT INTO {IngestBatch._meta.db_table} "
                "(id, source_id, channel, received_at, accepted, duplicates, rejected) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    batch_id,
                    source.pk,
                    channel,
                    received_at,
                    outcome.accepted,
                    outcome.duplicates,
                    len(outcome.rejected),
                ],
            )
        if rows:
            _events_copy(raw, columns, (batch_id, source.pk, received_at, channel), outcome.event_ids, rows)


# An event's canonical fields in COPY column order, read in one C call instead of a getattr per field.
_canonical_values = operator.attrgetter(*CANONICAL_FIELDS)
_JSON_POSITIONS = tuple(i for i, name in enumerate(CANONICAL_FIELDS) if name in JSON_FIELDS)
# jsonb's binary input format: a version byte, then the JSON text.
_JSONB_VERSION = b"\x01"


def _events_copy(
    raw: psycopg.Connection,
    columns: str,
    batch: tuple[int, int, datetime, str],
    event_ids: list[int],
    rows: list[tuple[str, CanonicalEvent]],
) -> None:
    """Binary COPY of a batch's new events. The jsonb values go out already in jsonb's binary format, encoded by orjson
    and declared to psycopg as bytea, whose C dumper passes bytes through: a Jsonb wrapper and a Python dumper call
    per value were a tenth of a large batch's CPU. PostgreSQL reads each field by its column's type, so the rows
    stored are the same."""
    batch_id, source_id, received_at, channel = batch
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(_copy_event_types())
        write_row = copy.write_row
        for event_id, (key, event) in zip(event_ids, rows, strict=True):
            values = list(_canonical_values(event))
            for i in _JSON_POSITIONS:
                if values[i] is not None:
                    values[i] = _JSONB_VERSION + _jsonb_dumps(values[i])
            write_row((event_id, received_at, source_id, batch_id, channel, key, *values))


def _batch_store_in_one_statement(
    source: IngestSource,
    channel: str,
    received_at: datetime,
    accepted: dict[str, CanonicalEvent],
    outcome: IngestOutcome,
    *,
    commit: bool = False,
) -> None:
    """A small batch (a webhook's single event) in one statement: data-modifying CTEs claim the idempotency keys,
    write the batch row with its final counts and insert the events whose keys were claimed. The events travel as
    one JSON parameter (`jsonb_to_recordset`), so the statement's text is the same for every batch and PostgreSQL
    prepares it once per connection.

    With `commit` (outside any transaction: see `_commits_in_one_round_trip`) the statement is its own transaction:
    one round trip, answered only once committed; on failure nothing is stored and the error is raised, so the
    sender is told to retry. Otherwise the caller's transaction commits it.

    The lock bound is set by the statement itself, before its first key claim: a separate SET LOCAL needed BEGIN and
    COMMIT around it, which psycopg sent either as a pipeline or as quoted text, each costing more client CPU than
    the whole statement. Relation locks are taken before it applies; only DDL on the event table (partitions are
    attached days ahead) conflicts with them."""
    keys = sorted(accepted)  # sorted, so that racing batches lock the same keys in one order
    rows = [{"dedup_key": key, **{name: getattr(accepted[key], name) for name in CANONICAL_FIELDS}} for key in keys]
    # Integers as int8 whatever their size: psycopg types a small int as int2, a larger one as int4, and prepares a
    # statement per set of parameter types.
    source_id, received, rejected = Int8(source.pk), Int8(outcome.duplicates + len(keys)), Int8(len(outcome.rejected))
    params = [
        *(source_id, received_at, keys),
        *(source_id, channel, received_at, received, rejected),
        *(received_at, source_id, channel, _rows_json(rows)),
    ]
    with connection.wrap_database_errors:
        # Server-side binding (not Django's client-side cursor), so that the statement can be prepared.
        cursor = psycopg.Cursor(connection.connection)
        cursor.execute(_small_batch_sql(), params, prepare=_may_prepare())
        batch_id, claimed, event_ids = cursor.fetchone()
    outcome.batch_id = batch_id
    outcome.accepted = claimed
    outcome.duplicates += len(keys) - claimed
    outcome.event_ids = list(event_ids)


@functools.cache
def _small_batch_sql() -> str:
    types = dict(zip(("id", *_EVENT_COLUMNS), _event_types(), strict=True))
    carried = [c for c in _EVENT_COLUMNS if c not in _STORAGE_COLUMNS or c == "dedup_key"]
    record = ", ".join(f"{c} {types[c]}" for c in carried)
    stored = {"received_at": "%s::timestamptz", "source_id": "%s::bigint", "channel": "%s::text"}
    select = ", ".join("(SELECT id FROM batch)" if c == "batch_id" else stored.get(c, f"v.{c}") for c in _EVENT_COLUMNS)
    return (
        f"WITH claimed AS (INSERT INTO {IdempotencyKey._meta.db_table} (source_id, key, received_at) "
        "SELECT %s, k, %s FROM unnest(%s::text[]) AS k "
        f"WHERE set_config('lock_timeout', '{INGEST_LOCK_TIMEOUT_MS}ms', true) IS NOT NULL "
        "ON CONFLICT (source_id, key) DO NOTHING RETURNING key), "
        f"batch AS (INSERT INTO {IngestBatch._meta.db_table} "
        "(source_id, channel, received_at, accepted, duplicates, rejected) "
        "SELECT %s, %s, %s, count(*), %s::integer - count(*), %s::integer FROM claimed RETURNING id), "
        f"stored AS (INSERT INTO {Event._meta.db_table} ({', '.join(_EVENT_COLUMNS)}) SELECT {select} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS v({record}) "
        "WHERE v.dedup_key IN (SELECT key FROM claimed) RETURNING id) "
        "SELECT (SELECT id FROM batch), (SELECT count(*) FROM claimed), ARRAY(SELECT id FROM stored)"
    )


def _rows_json(rows: list[dict[str, Any]]) -> Jsonb:
    return Jsonb(rows, dumps=_rows_dumps)


def _rows_dumps(rows: list[dict[str, Any]]) -> bytes:
    """Events as JSON for `jsonb_to_recordset`: amounts as decimal strings (exact, as numeric reads them), times with
    their offset; json.dumps for what orjson refuses, as in `_jsonb_dumps`."""
    try:
        return orjson.dumps(rows, default=_json_scalar)
    except orjson.JSONEncodeError:
        return json.dumps(rows, default=_json_scalar).encode()


def _json_scalar(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _commits_in_one_round_trip(accepted: dict[str, CanonicalEvent]) -> bool:
    """Whether a batch can be stored and committed in a single round trip: a small batch (the caller has nothing else
    to write with it) on PostgreSQL, outside any transaction (a caller's transaction, as in most tests, decides its own
    commit)."""
    return (
        0 < len(accepted) <= _ONE_STATEMENT_ROWS
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


def _may_prepare() -> bool:
    """Whether statements may be prepared: only on connections of our own pool, whose sessions are ours. Behind
    PgBouncer in transaction mode (DATABASE_POOL=0) a prepared statement would belong to another client's session."""
    return bool(connection.settings_dict["OPTIONS"].get("pool"))


def _event_types() -> list[str]:
    global _event_types_known
    _event_types_known = _event_types_known or copy_types(
        [Event._meta.get_field(name) for name in ("id", *_EVENT_COLUMNS)]
    )
    return _event_types_known


_event_types_known: list[str] = []


def _copy_event_types() -> list[str]:
    """`_event_types` with each jsonb column declared bytea: see `_events_copy`."""
    return ["bytea" if t == "jsonb" else t for t in _event_types()]


def _copy_value(row: dict[str, Any], column: str) -> Any:
    value = row[column]
    return Jsonb(value, dumps=_jsonb_dumps) if column in JSON_FIELDS and value is not None else value


def _jsonb_dumps(value: Any) -> bytes:
    """orjson for an event's JSON columns (json.dumps for them was a fifth of a batch's CPU); json.dumps for the rare
    value orjson refuses (an integer past 64 bits), so that everything JSON could store is still stored."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()
