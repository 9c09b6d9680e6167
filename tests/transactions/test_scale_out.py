"""Scaling out on existing engines: PgBouncer in transaction mode in front of PostgreSQL (DATABASE_POOL=0), and
correlation from two worker processes at once on overlapping keys (issue 13, item 5)."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection

from console.settings import database_from_url
from tests.factories import event, ingest
from tests.transactions.test_ingest_faults import gunicorn
from transactions.models import Event, IngestBatch, Transaction, TransactionEvent, TransactionKey
from transactions.reference import process_reference_data_load
from transactions.services import ingest_source_create, ingest_token_create

ROOT = Path(__file__).resolve().parents[2]
PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _url(*, port: int | None = None) -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{port or db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def pgbouncer(transactional_db) -> Iterator[int]:
    """A pgbouncer of the test's own, in transaction mode on a free port, in front of the test database."""
    if not PGBOUNCER:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\nadmin_users = {user}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    command = [PGBOUNCER, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root: it drops to the database's system user
        account = pwd.getpwnam("postgres")
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command += ["-u", "postgres"]
    log_path = workdir / "pgbouncer.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(_url(port=port), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pgbouncer did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


def _transactions_through(port: int) -> int:
    """Transactions pgbouncer carried to the test database (its admin console speaks the simple protocol only)."""
    admin = _url(port=port).rsplit("/", 1)[0] + "/pgbouncer"
    with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cursor = conn.execute("SHOW STATS")
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return sum(int(row["total_xact_count"]) for row in rows if row["database"] == connection.settings_dict["NAME"])


def test_without_the_pool_no_session_state_outlives_a_transaction(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL", "0")
    behind_pgbouncer = database_from_url("postgres://app@pgbouncer:6432/closeloop")
    assert behind_pgbouncer["OPTIONS"] == {"prepare_threshold": None}
    assert behind_pgbouncer["DISABLE_SERVER_SIDE_CURSORS"] is True
    monkeypatch.setenv("DATABASE_POOL", "1")
    pooled = database_from_url("postgres://app@db:5432/closeloop")
    assert "pool" in pooled["OPTIONS"] and pooled["DISABLE_SERVER_SIDE_CURSORS"] is False


@pytest.mark.pgbouncer
@pytest.mark.postgres(reason="pgbouncer fronts a PostgreSQL server")
def test_ingest_and_correlation_through_pgbouncer_in_transaction_mode(pgbouncer, tmp_path):
    process_reference_data_load()
    source = ingest_source_create(name="behind-pgbouncer", actor="system:test")
    token = ingest_token_create(source=source, actor="system:test")[1]
    records = [
        event(f"pgb-{i}", "order.created", 1, status="error" if i % 10 == 0 else "ok", contract=f"C-{i // 4}")
        for i in range(200)
    ]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    before = _transactions_through(pgbouncer)
    # No broker: the correlation and classification tasks run in the web process after its commit, through pgbouncer.
    with gunicorn(tmp_path, DATABASE_URL=_url(port=pgbouncer), DATABASE_POOL="0") as base:
        first = requests.post(f"{base}/api/v1/events", data=json.dumps(records), headers=auth, timeout=60)
        again = requests.post(f"{base}/api/v1/events", data=json.dumps(records[:50]), headers=auth, timeout=60)
        listed = requests.get(f"{base}/api/v1/transactions/?business_key=C-7", headers=auth, timeout=60)
    assert first.status_code == 200 and first.json() == {"accepted": 200, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 50, "rejected": []}
    assert listed.status_code == 401  # an ingest token is not an API token; the request still went through
    assert Event.objects.filter(source=source).count() == 200
    assert IngestBatch.objects.get(source=source, accepted=200).correlated_at is not None
    assert TransactionEvent.objects.count() == 200
    assert sorted(Transaction.objects.values_list("event_count", flat=True)) == [4] * 50
    from exceptions.models import ExceptionRecord

    assert ExceptionRecord.objects.filter(event_id__isnull=False).count() == 20  # every failed event classified
    assert _transactions_through(pgbouncer) - before > 10  # the work went through pgbouncer, not around it


WORKER = """
import os, sys
import django
django.setup()
from transactions.services import batch_correlate
print("ready", flush=True)
sys.stdin.readline()
for batch_id in sys.argv[1:]:
    batch_correlate(batch_id=int(batch_id))
print("done", flush=True)
"""


@pytest.mark.postgres(reason="two processes correlate at once on one database")
@pytest.mark.parametrize("through", ["postgresql", pytest.param("pgbouncer", marks=pytest.mark.pgbouncer)])
def test_two_worker_processes_correlating_overlapping_keys_do_not_race(through, transactional_db, request, monkeypatch):
    from transactions.tasks import correlate_batch

    url = _url(port=request.getfixturevalue("pgbouncer")) if through == "pgbouncer" else _url()
    process_reference_data_load()
    source = ingest_source_create(name="two-workers", actor="system:test")
    # Stored only: the two processes below do the correlating, as two Celery workers on two machines would.
    monkeypatch.setattr(correlate_batch, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(correlate_batch, "apply_async", lambda *args, **kwargs: None)
    batches = [
        ingest(
            source, *[event(f"{w}-{i}", "order.created", 1, contract=f"C-{i}", order=f"O-{w}-{i}") for i in range(40)]
        ).pk
        for w in range(6)
    ]
    assert IngestBatch.objects.filter(correlated_at__isnull=True).count() == 6
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": url, "CELERY_BROKER_URL": ""}
    if through == "pgbouncer":
        env["DATABASE_POOL"] = "0"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *map(str, batches[n::2])],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:  # both start at once, each on a batch sharing every contract with the other's
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=90) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert IngestBatch.objects.filter(correlated_at__isnull=True).count() == 0
    live = Transaction.objects.exclude(status="merged")
    assert live.count() == 40
    assert sorted(live.values_list("event_count", flat=True)) == [6] * 40
    assert TransactionEvent.objects.count() == 240  # each event in exactly one transaction (event_id is unique)
    assert TransactionEvent.objects.exclude(txn__in=live).count() == 0
    assert TransactionKey.objects.filter(key_type="contract").count() == 40
