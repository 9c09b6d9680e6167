"""A prefork Celery worker keeps its database connections between tasks (celery/celery#10554 closed Django's pool
around every task: each task opened new PostgreSQL sessions)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
TASKS = 12


def _sessions_opened() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_reuses_its_connections_across_tasks(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL sessions (pg_stat_database)")
    from celery.result import allow_join_result

    from transactions.tasks import sweep_uncorrelated_batches

    db = connection.settings_dict
    queue = f"test-connections-{os.getpid()}"
    before = _sessions_opened()
    command = [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["-Q", queue, "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    worker = subprocess.Popen(
        command,
        cwd=ROOT,
        # The worker works on this test's database, so that its sessions are the ones counted.
        env={
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            f"/{db['NAME']}",
        },
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        with allow_join_result():
            for _ in range(TASKS):
                assert sweep_uncorrelated_batches.apply_async(queue=queue).get(timeout=60) == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    # A backend counts its session in the statistics by the time it exits; the worker's have exited.
    deadline = time.monotonic() + 5
    while (opened := _sessions_opened() - before) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    log = (tmp_path / "worker.log").read_text()[-2000:]
    # One pool in the child (psycopg_pool's minimum of 4) and what the parent opened at start-up; one pool per task
    # opened 4 sessions a task (52 here).
    assert 1 <= opened < TASKS, f"{opened} sessions for {TASKS} tasks\n{log}"
