"""Advisory locks on sets of keys, taken in sorted order so that two writers always queue alike and never deadlock."""

import zlib
from collections.abc import Iterable

from django.db import connection


def key_bucket(text: str, buckets: int = 2**31) -> int:
    """A stable 31-bit number for a key (crc32, not hash(), which differs between processes)."""
    return (zlib.crc32(text.encode()) & 0x7FFFFFFF) % buckets


def advisory_lock_keys(namespace: int, keys: Iterable[int]) -> None:
    """Hold transaction-level advisory locks on (namespace, key) for every key, in ascending order.

    On SQLite this does nothing: its IMMEDIATE transactions already hold the database's single write lock.
    """
    ordered = sorted(set(keys))
    if connection.vendor != "postgresql" or not ordered:
        return
    with connection.cursor() as cursor:
        # One round trip; ORDER BY inside the subquery fixes the order in which the locks are taken.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM (SELECT unnest(%s::int[]) AS k ORDER BY 1) AS sorted",
            [namespace, ordered],
        )


def advisory_lock_name(name: str) -> None:
    """Hold one transaction-level advisory lock named by text (e.g. a partition being created)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
