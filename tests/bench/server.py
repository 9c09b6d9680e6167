"""gunicorn for the benchmarks, started as production runs it (gthread workers, DEBUG off, a fresh SECRET_KEY), and the
whole fleet (gunicorn, two Celery workers, beat) for the soak benchmark."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn_serving(
    env: dict[str, str], *, threads: int | None = None, workers: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, server process) once /healthz answers on a free loopback port; the server stops on exit. Workers
    and threads not given are gunicorn.conf.py's (production's).

    Plain HTTP on loopback: production's TLS redirect and TLS-only cookies are off for the measurement only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server_env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        **env,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "console.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--worker-class", "gthread"]
    command += ["--workers", str(workers)] if workers is not None else []
    command += ["--threads", str(threads)] if threads is not None else []
    server = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 (our own loopback server)
                break
            except OSError:
                time.sleep(0.1)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def _proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:  # the process is gone
        return ""


def _rss_mb(pid: int) -> float:
    sizes = [int(line.split()[1]) for line in _proc(pid, "status").splitlines() if line.startswith("VmRSS:")]
    return sizes[0] / 1024 if sizes else 0.0


def _children(pid: int) -> list[int]:
    return [int(child) for child in _proc(pid, f"task/{pid}/children").split()]


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces); [] once the process is gone."""
    stat = _proc(pid, "stat")
    return stat.rsplit(")", 1)[1].split() if stat else []


def _cpu_seconds(fields: list[str], *, reaped_children: bool = False) -> float:
    """User + system CPU of a process (and of its waited-for children that exited, when asked)."""
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def postgres_cpu_seconds() -> float:
    """CPU of the local PostgreSQL server: its live processes plus the backends that ended (the postmaster reaps
    them, so their time is in its children's total). Everything on this machine's server counts."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _proc(int(entry.name), "comm").strip() == "postgres":
            fields = _stat_fields(int(entry.name))
            is_postmaster = bool(fields) and _proc(int(fields[1]), "comm").strip() != "postgres"
            total += _cpu_seconds(fields, reaped_children=is_postmaster)
    return total


@dataclass
class Fleet:
    """The processes under load, the peak RSS seen of each (role -> MB) and the CPU each root and its children used."""

    roots: dict[str, subprocess.Popen]
    peak: dict[str, float] = field(default_factory=dict)
    cpu_by_pid: dict[int, tuple[str, float]] = field(default_factory=dict)  # the last reading of each process seen

    def sample(self) -> None:
        for role, process in self.roots.items():
            pids = [(role, process.pid)]
            pids += [(f"{role} child {n}", child) for n, child in enumerate(_children(process.pid), 1)]
            for name, pid in pids:
                self.peak[name] = max(self.peak.get(name, 0.0), _rss_mb(pid))
                used = _cpu_seconds(_stat_fields(pid))
                if used:
                    self.cpu_by_pid[pid] = (role, used)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU so far per role, children included (a child that exited keeps its last reading)."""
        self.sample()
        totals: dict[str, float] = {}
        for role, used in self.cpu_by_pid.values():
            totals[role] = totals.get(role, 0.0) + used
        return totals

    def dead(self) -> list[str]:
        return [role for role, process in self.roots.items() if process.poll() is not None]


def _wait_for_workers(broker: str, names: list[str], roots: dict[str, subprocess.Popen]) -> None:
    """Load starts once both workers answer a ping: their start-up is not part of the measured lag."""
    from celery import Celery

    # Not set as the current app: shared tasks resolve through the current app, so a test process's tasks would
    # then go to this broker instead of running in-process (every later test on the same pytest worker failed).
    control = Celery(broker=broker, set_as_current=False).control
    wanted = {f"{name}@{socket.gethostname()}" for name in names}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answered = {name for reply in control.ping(destination=sorted(wanted), timeout=1) for name in reply}
        if answered >= wanted:
            return
        if any(process.poll() is not None for process in roots.values()):
            break
    raise SystemExit(f"the Celery workers did not start: {sorted(wanted)}")


@contextmanager
def fleet(env: dict[str, str], logs: Path, *, concurrency: int = 1) -> Iterator[tuple[str, Fleet]]:
    """gunicorn + two Celery workers (each with `concurrency` pool processes) + beat on the given environment;
    (base URL, fleet); all stop on exit."""
    celery = [sys.executable, "-m", "celery", "-A", "console"]
    quiet = ["--loglevel", "WARNING"]
    worker = [
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--without-heartbeat",
        "--without-mingle",
    ]
    with ExitStack() as stack, gunicorn_serving(env, threads=4, workers=2) as (base, server):
        roots: dict[str, subprocess.Popen] = {"gunicorn": server}
        commands = {
            f"celery worker {n}": [*celery, *worker, "--without-gossip", "-n", f"soak{n}@%h", *quiet] for n in (1, 2)
        }
        commands["celery beat"] = [*celery, "beat", "--schedule", str(logs / "beat-schedule"), *quiet]
        for role, command in commands.items():
            log = stack.enter_context((logs / f"{role.replace(' ', '-')}.log").open("w"))
            roots[role] = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            _wait_for_workers(env["CELERY_BROKER_URL"], ["soak1", "soak2"], roots)
            yield base, Fleet(roots)
        finally:
            celery_processes = [process for role, process in roots.items() if role != "gunicorn"]
            for process in celery_processes:
                process.terminate()  # a warm shutdown: a task under way finishes first
            for process in celery_processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def run_bench_script(script: str, *args: str, timeout: float = 600) -> str:
    """Run tests/bench/<script> as `make` does, in a throwaway database (its name contains 'bench', as the scripts
    demand before they rebuild one; dropped afterwards). Its standard output; AssertionError on a non-zero exit."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    host, port, user = db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["USER"] or "postgres"
    name = f"closeloop_bench_smoke_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{name}",
        "CELERY_BROKER_URL": "",  # tasks in-process, as the scripts expect
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "bench" / script), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert result.returncode == 0, (
        f"{script} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout
