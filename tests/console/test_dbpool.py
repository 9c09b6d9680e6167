import pytest
from django.db import connection

from console.lib import dbpool


class _Connection:
    """Stands for a pooled psycopg connection: counts the pool's health-check queries."""

    autocommit = True

    def __init__(self) -> None:
        self.checks = 0

    def execute(self, query: str) -> None:
        assert query == ""
        self.checks += 1


def test_a_connection_handed_out_a_moment_ago_is_not_checked_again(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(dbpool.time, "monotonic", lambda: now[0])
    conn = _Connection()
    dbpool.check_unless_recent(conn)
    assert conn.checks == 1  # never seen: checked
    now[0] += dbpool.RECENT_SECONDS / 2
    dbpool.check_unless_recent(conn)
    assert conn.checks == 1
    now[0] += dbpool.RECENT_SECONDS
    dbpool.check_unless_recent(conn)
    assert conn.checks == 2  # idle long enough to have been dropped: checked again
    other = _Connection()
    dbpool.check_unless_recent(other)
    assert other.checks == 1


@pytest.mark.postgres(reason="psycopg's connection pool")
@pytest.mark.django_db
def test_the_pool_checks_through_it():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.pool._check is dbpool.check_unless_recent
