"""Demo only: set up, serve the console, store simulated history in the background and run the periodic jobs.

`make demo` is this one process, so that Django starts once: the console answers as soon as the first day of history
is in, the rest is stored while people look around (progress on stderr), the periodic jobs (stalls, escalations, SLA
clocks, monitors, rollups) run once the history is complete, and the URL and the logins are printed last.
"""

import io
import logging
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from console.lib.errors import DomainError
from console.lib.logs import loggers_quiet
from console.periodic import run_due_jobs
from console.selectors import demo_counts
from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import ReplayTarget
from exceptions.selectors import case_list
from exceptions.services import replay_request, replay_target_create, replay_target_update, replays_confirm
from slas.services.monitors import volume_monitors_evaluate
from transactions.models import Event
from transactions.simulation.catalogue import SYSTEMS
from transactions.simulation.history import history_run, history_scenario
from transactions.simulation.progress import RunStats
from transactions.simulation.replay_target import EstateReplayTarget

logger = logging.getLogger(__name__)

# The beat judges volume monitors every minute as traffic arrives; history arrives all at once, so the monitors are
# judged again at these moments of each past day (UTC: after 06:00 and 18:00 in Berlin, summer and winter), where a
# missed bill run or a late bank statement opens its case and the next day's traffic resolves it.
MONITOR_REPLAY_HOURS = (5.5, 17.5)

# Per-batch INFO lines of ingest, correlation, SLA clocks and case handling would bury the progress lines while the
# history is stored and the first pass of the periodic jobs catches up with it.
CHATTY_LOGGERS = (
    "transactions.services",
    "exceptions.services",
    "slas.services",
    "slas.tasks",
    "console.periodic",
    "console.services",
    "console.wsgi",  # the warm-up line, between "serving" and the progress lines
    "celery.app.trace",
)
# The demo's finance operations user replays this many open cases of retryable categories (timeouts, rate limits...)
# once the history is in, so that replays and the cases they resolved are there to look at.
DEMO_REPLAYS = 5
DEMO_ACTOR = "system:demo"


def demo_counts_lines(counts: dict[str, int]) -> list[str]:
    """The console's counts, in the words of its pages."""
    c = counts
    return [
        f"console: {c['events']:,} events in {c['transactions']:,} transactions ({c['completed']:,} completed, "
        f"{c['recovered']:,} recovered, {c['in_flight']:,} in flight, {c['failed']:,} failed, "
        f"{c['stalled']:,} stalled)",
        f"  {c['dead_letters']:,} dead letters, {c['cases_open']:,} open cases ({c['cases_overdue']:,} overdue, "
        f"{c['cases_escalated']:,} escalated), "
        f"{c['notifications']:,} notifications, {c['replays']:,} replays",
        f"  SLA clocks: {c['clocks_breached']:,} breached, {c['clocks_at_risk']:,} at risk, {c['clocks_paused']:,} "
        f"paused, {c['clocks_met']:,} met; {c['monitors_violated']:,} volume monitors violated, "
        f"{c['evidence_missing']:,} controls missing their evidence",
    ]


def monitors_replay(*, start: datetime, end: datetime) -> int:
    """Judge the volume monitors at MONITOR_REPLAY_HOURS of every day from `start` to `end`; the passes made."""
    passes = 0
    day = datetime.combine(start.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    while day < end:
        for hours in MONITOR_REPLAY_HOURS:
            moment = day + timedelta(hours=hours)
            if start <= moment < end:
                volume_monitors_evaluate(now=moment)
                passes += 1
        day += timedelta(days=1)
    return passes


def demo_replays_run(*, target: EstateReplayTarget, count: int = DEMO_REPLAYS, username: str = "ops") -> list[str]:
    """Point every simulated system's replays at the estate's webhook, replay the latest occurrence of up to `count`
    open retryable cases (oldest first) as `username` through the replay service, and confirm them once their
    success events are in; the ids of the replays requested."""
    for system in SYSTEMS:
        url = target.url_for(system)
        existing = ReplayTarget.objects.filter(system=system).first()
        if existing is None:
            replay_target_create(actor=DEMO_ACTOR, system=system, url=url)
        else:  # a demo served again listens on another port
            replay_target_update(target=existing, actor=DEMO_ACTOR, expected_version=None, url=url, is_active=True)
    user = get_user_model().objects.filter(username=username).first()
    candidates = (
        case_list()
        .filter(status__in=ACTIVE_STATUSES, category__retryable=True)
        .order_by("first_seen", "id")
        .values_list("id", flat=True)
    )
    requested: list[str] = []
    for case_id in candidates[: count * 4]:
        try:
            requested.append(str(replay_request(case_id=case_id, actor=user, expected_version=None).pk))
        except DomainError as exc:  # a case whose latest occurrence is a signal, or already being replayed
            logger.debug("demo.replay_skipped", extra={"case": case_id, "reason": str(exc)})
            continue
        if len(requested) >= count:
            break
    if requested and not target.wait_for(len(requested)):
        logger.warning("demo.replays_unconfirmed", extra={"requested": len(requested)})
    replays_confirm()
    return requested


class Command(BaseCommand):
    help = (
        "Demo only: serve the console on 127.0.0.1, store simulated history in the background (--history-days) and "
        "run the periodic jobs in-process (there is no beat)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--tick", type=float, default=30.0, help="seconds between checks for due jobs")
        parser.add_argument(
            "--setup",
            action="store_true",
            help="first migrate, collect static files, load the reference data and create the demo users",
        )
        parser.add_argument(
            "--history-days",
            type=float,
            default=0.0,
            help="when no events are stored: simulate this many days of history (the console answers once the "
            "first day is in; the periodic jobs start when all of it is)",
        )
        parser.add_argument("--seed", type=int, help="the simulator's seed (default: random)")

    def handle(self, *args: object, **options: Any) -> None:
        # Quiet for the whole run: the periodic jobs' INFO lines every minute would push the URL and the logins
        # off the screen; warnings and errors still show, and -v 2 shows everything.
        with loggers_quiet(CHATTY_LOGGERS if options["verbosity"] < 2 else ()):
            self.serve(options)

    def serve(self, options: dict[str, Any]) -> None:
        logins = ""
        collecting = None
        if options["setup"] and not settings.DEBUG:
            # Collecting (and compressing) static files is the slowest step of a first setup and needs no database:
            # a process of its own does it on the other core while this one migrates and stores the first day.
            collecting = subprocess.Popen([sys.executable, "-m", "django", "collectstatic", "--noinput", "-v0"])
        elif options["setup"]:
            # With DEBUG on (`make demo`), WhiteNoise serves the source files through the finders and never the
            # collected copies, so collecting them (74 s of CPU, mostly Brotli) would only slow the history down.
            # The empty directory spares WhiteNoise's "No directory at" warning.
            Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        if options["setup"]:
            logins = self.setup()
        history_done = threading.Event()
        ready = threading.Event()
        outcome: dict[str, Any] = {}
        if options["history_days"] > 0 and not Event.objects.exists():
            seed = options["seed"] if options["seed"] is not None else secrets.randbelow(1_000_000)
            scenario = history_scenario(days=options["history_days"], seed=seed, now=timezone.now())
            outcome.update(start=scenario.start, end=scenario.end)
            self.stderr.write(
                f"simulate: {options['history_days']:g} days of history, seed {seed}; the console answers once the "
                "first day is in"
            )
            threading.Thread(
                target=self.fill,
                kwargs={"scenario": scenario, "ready": ready, "done": history_done, "outcome": outcome},
                name="demo-history",
                daemon=True,
            ).start()
            ready.wait()
        else:
            ready.set()
            history_done.set()
        url = f"http://{options['addr']}/"
        stop = threading.Event()

        def redone(record: dict[str, Any], answer: Any) -> None:
            stats = outcome.get("stats")
            if stats is not None:
                stats.count_replay(record=record, accepted=answer.accepted, duplicates=answer.duplicates)

        # The simulated systems' replay webhook, for as long as the console is served.
        replays = EstateReplayTarget(delivered=redone).start()

        def loop() -> None:
            # The jobs wait for the whole history: judged on a partial one, they would raise stalls and silences
            # that the rest of it answers, and write while the history is being written.
            history_done.wait()
            if "stats" in outcome:
                try:
                    monitors_replay(start=outcome["start"], end=outcome["end"])
                except Exception:  # the live passes below still judge the monitors as of now
                    logger.exception("demo.monitor_replay_failed")
            last_runs: dict[str, float] = {}
            run_due_jobs(last_runs)
            try:
                # Replays need the cases the first pass escalated and routed; a second `make demo` only re-points the
                # systems' replays at this run's webhook, so that replays asked for in the console reach it.
                demo_replays_run(target=replays, count=DEMO_REPLAYS if "stats" in outcome else 0)
            except Exception:
                logger.exception("demo.replays_failed")
            self.announce(url=url, logins=logins, stats=outcome.get("stats"))
            while not stop.wait(options["tick"]):
                run_due_jobs(last_runs)

        threading.Thread(target=loop, name="periodic-jobs", daemon=True).start()
        if collecting is not None and collecting.wait() != 0:
            raise CommandError("collectstatic failed (see above)")
        if not history_done.is_set():
            self.stderr.write(f"serving {url} while the rest of the history is stored (progress below)")
        time.sleep(0.1)
        call_command("runserver", options["addr"], use_reloader=False)
        stop.set()

    def setup(self) -> str:
        """The demo's one-time setup in this process (each step is idempotent); the logins, to print last."""
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_reference_data", stdout=io.StringIO())
        out = io.StringIO()
        call_command("create_demo_users", stdout=out)
        return out.getvalue().rstrip()

    def fill(self, *, scenario: Any, ready: threading.Event, done: threading.Event, outcome: dict) -> None:
        try:
            outcome["stats"] = history_run(scenario=scenario, write=self.stderr.write, first_span_stored=ready.set)
        except Exception:
            logger.exception("demo.history_failed")
        finally:
            connections.close_all()
            ready.set()
            done.set()

    def announce(self, *, url: str, logins: str, stats: RunStats | None) -> None:
        lines = list(stats.summary()) if stats is not None else []
        lines += demo_counts_lines(demo_counts())
        lines += ["", f"Closeloop demo ready: {url}"]
        if logins:
            lines.append(logins)
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
