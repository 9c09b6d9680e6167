"""Daily partitions of the event table on PostgreSQL (by receive time), and retention by dropping them.

Receive time, not event time, is the key: back-dated history and late events still land in today's partition, and a
partition is never written to once its day is over, so dropping it is the whole of retention. The DEFAULT partition
catches anything that arrives before its day's partition exists; creating that partition later moves those rows in.
"""

import logging
import time
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from console.lib.locks import advisory_lock_name
from transactions.models import Event

logger = logging.getLogger(__name__)

TABLE = Event._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"


def _partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def _existing_partitions(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        [TABLE],
    )
    return {row[0] for row in cursor.fetchall()}


# Partitions seen to exist, by database and name, with when: a single-event request paid one catalogue round trip
# for this. Seen recently is safe to trust: partitions are dropped only when older than the retention period, and a
# row whose partition is missing after all lands in DEFAULT, from which creating the partition moves it.
_SEEN_FOR_SECONDS = 300.0
_seen: dict[tuple[str, str], float] = {}


def event_partition_ensure(moment: datetime) -> None:
    """Make sure the partition for `moment`'s day exists (one catalogue lookup per day and process every few
    minutes)."""
    if connection.vendor != "postgresql":
        return
    day = moment.astimezone(UTC).date()
    name = _partition_name(day)
    key = (connection.settings_dict["NAME"], name)
    now = time.monotonic()
    if now - _seen.get(key, float("-inf")) < _SEEN_FOR_SECONDS:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        exists = cursor.fetchone()[0] is not None
    if not exists:
        event_partitions_create(days=[day])
    if not connection.in_atomic_block:  # inside a caller's transaction a creation may still be rolled back
        _seen[key] = now


def event_partitions_create(*, days: list[date]) -> list[str]:
    """Create the daily partitions for `days` that do not exist yet, moving any of their rows out of DEFAULT."""
    if connection.vendor != "postgresql":
        return []
    created = []
    with connection.cursor() as cursor:
        existing = _existing_partitions(cursor)
        for day in days:
            name = _partition_name(day)
            if name in existing:
                continue
            start, end = _bounds(day)
            # One transaction: the rows that waited in DEFAULT move to their partition, which is then attached.
            with transaction.atomic():
                advisory_lock_name(name)
                if name in _existing_partitions(cursor):
                    continue
                cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                cursor.execute(
                    f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s "
                    f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                    [start, end],
                )
                cursor.execute(
                    f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end]
                )
            created.append(name)
            logger.info("ingest.partition_created", extra={"partition": name})
    return created


def event_partitions_drop_before(cutoff: datetime) -> int:
    """Drop whole daily partitions that end before `cutoff` (and delete older stragglers elsewhere); rows removed."""
    removed = 0
    if connection.vendor != "postgresql":
        with transaction.atomic():
            return Event.objects.filter(received_at__lt=cutoff).delete()[0]
    _seen.clear()  # this process forgets what it saw; others trust it for minutes at most (see _seen)
    with connection.cursor() as cursor:
        for name in sorted(_existing_partitions(cursor)):
            if not name.startswith(f"{TABLE}_p"):
                continue
            day = datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").replace(tzinfo=UTC).date()
            if datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) <= cutoff:
                cursor.execute(f"SELECT count(*) FROM {name}")
                removed += cursor.fetchone()[0]
                with transaction.atomic():
                    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                    cursor.execute(f"DROP TABLE {name}")
                logger.info("ingest.partition_dropped", extra={"partition": name})
        with transaction.atomic():
            cursor.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE received_at < %s", [cutoff])
            removed += cursor.rowcount
    return removed


def event_partitions_maintain(*, days_ahead: int = 3) -> list[str]:
    """Periodic: today's and the next days' partitions exist before their first event arrives."""
    today = datetime.now(UTC).date()
    return event_partitions_create(days=[today + timedelta(days=n) for n in range(days_ahead + 1)])
