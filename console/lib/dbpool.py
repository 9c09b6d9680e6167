"""The health check of pooled database connections, skipped for a connection handed out a moment ago.

With CONN_HEALTH_CHECKS, psycopg's pool checks a connection with an empty query each time it hands it out: a round
trip on every request before its first statement (a single-event ingest request made three, this one included). A
connection handed out within RECENT_SECONDS was working a moment ago and goes out again unchecked, as HikariCP does
within its 500 ms window. Should the server have dropped it in that moment, the request's first statement fails
(ingest answers 503 with Retry-After) and the pool discards the broken connection when it comes back.

Django builds the pool itself and always passes its own `check`, so the pool option cannot name another: the
receiver below swaps it in on the pool's first connection (the pool keeps it as `_check`).
"""

import time
import weakref
from typing import Any

from psycopg_pool import ConnectionPool

RECENT_SECONDS = 0.5
_handed_out: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()


def check_unless_recent(conn: Any) -> None:
    """psycopg_pool's `check` callback: raise when the connection is broken, unless it was handed out recently."""
    now = time.monotonic()
    if now - _handed_out.get(conn, float("-inf")) >= RECENT_SECONDS:
        ConnectionPool.check_connection(conn)
    _handed_out[conn] = now


def recent_check_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: the pool checks through `check_unless_recent` from now on (a pool built
    without health checks, or with another check, is left alone)."""
    pool = getattr(connection, "pool", None)
    if pool is not None and getattr(pool, "_check", None) is ConnectionPool.check_connection:
        pool._check = check_unless_recent
