import argparse
import math
import secrets
import textwrap
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from django.utils import timezone

from console.lib.errors import DomainError
from console.lib.logs import loggers_quiet
from transactions.models import Event
from transactions.simulation.catalogue import (
    DEFAULT_FAILURE_RATE,
    DEFAULT_FAILURE_WEIGHTS,
    FAILURES,
    MAX_MISMATCH_SCALE,
    SILENT_MISMATCHES,
    SYSTEMS,
    parse_failure_weights,
)
from transactions.simulation.estate import Scenario
from transactions.simulation.history import (
    DEFAULT_EVIDENCE_LOSS,
    DEFAULT_HISTORY_RATE,
    DEFAULT_SILENCE,
    history_run,
)
from transactions.simulation.progress import RunStats

DEFAULT_LIVE_RATE = 30.0  # business transactions per minute
MAX_DAYS = 366
# Per-batch INFO lines of ingest, correlation and Celery would bury the progress lines; -v 2 shows them again.
# transactions.services covers its modules (ingest, correlation...): their loggers are its children.
# The in-process follow-ups (SLA clocks, stalls, cases) log per batch too; named by their module paths, so that this app
# imports nothing from the apps above it.
CHATTY_LOGGERS = ("transactions.services", "exceptions.services", "slas.services", "slas.tasks", "celery.app.trace")

EXAMPLES = """\
examples:
  manage.py simulate                                  21 days of history, ready in well under a minute
  manage.py simulate --days 7 --rate 12 --seed 7      a busier week, the same ids on every run with seed 7
  manage.py simulate --failure-rate 0.3 --failures erp_timeout=3,credit_block=2,late_event=1
  manage.py simulate --mode live --duration 300 --rate 60 --url http://127.0.0.1:8000

history mode stores back-dated traffic through the same decoders and ingest service as the HTTP endpoints, without
HTTP, delivering each source's records in batches as they would have arrived (late and out-of-order ones included).
live mode sends in real time over HTTP: OTLP spans through the OpenTelemetry SDK exporter (salesforce-crm,
mulesoft-ipaas), CloudEvents batches (sap-s4, stripe-payments) and the native events API (the others). It creates
ingest tokens for the run (revoked afterwards) in this command's database, so the console at --url must use the same
DATABASE_URL, and it needs the dev dependencies (pip install -e '.[dev]').

systems: {systems}

failure kinds (--failures NAME=WEIGHT,...; default weights in brackets):
{failures}

silent mismatches (no system reports an error; rates per transaction of the process, --mismatch-scale multiplies):
{mismatches}
"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's argument order, with the examples and catalogue below kept as written."""


def _positive(kind: type[float] | type[int], name: str) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name} must be a number above 0, got {text}")
        return value

    return parse


def _share(name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0 <= value <= 1:
            raise argparse.ArgumentTypeError(f"{name} must be between 0 and 1, got {text}")
        return value

    return parse


def _silence(text: str) -> tuple[str, timedelta]:
    if text.strip().lower() in ("", "none", "0"):
        return "", timedelta(0)
    system, sep, hours = text.partition("=")
    system = system.strip()
    if not sep or system not in SYSTEMS:
        raise argparse.ArgumentTypeError(
            f"--silence takes SYSTEM=HOURS with one of: {', '.join(SYSTEMS)}; got {text!r}"
        )
    try:
        value = float(hours)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--silence: HOURS must be a number, got {hours!r}") from None
    if not (0 <= value <= 24 * MAX_DAYS):
        raise argparse.ArgumentTypeError(f"--silence: HOURS must be between 0 and {24 * MAX_DAYS}, got {hours}")
    return system, timedelta(hours=value)


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mismatch-scale must be a number, got {text!r}") from None
    if not 0 <= value <= MAX_MISMATCH_SCALE:
        raise argparse.ArgumentTypeError(f"--mismatch-scale must be between 0 and {MAX_MISMATCH_SCALE:g}, got {text}")
    return value


def _failure_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--failure-rate must be a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"--failure-rate must be between 0 and 1, got {text}")
    return value


class Command(BaseCommand):
    # Wrapped here: the raw formatter that keeps the examples' layout also keeps the description's.
    help = textwrap.fill(
        "Drive a simulated finance integration estate (CRM, CLM, iPaaS, ERP, billing, tax, payments, compliance "
        "evidence) through the real ingest paths: order-to-cash, procure-to-pay, customer master sync, payment "
        "application and close evidence, with a configurable rate, time span and mix of real integration failures.",
        width=100,
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        failures = "\n".join(f"  {f.name:<30} [{DEFAULT_FAILURE_WEIGHTS[f.name]:g}] {f.summary}" for f in FAILURES)
        mismatches = "\n".join(f"  {m.name:<30} [{m.rate:.1%} of {m.process}] {m.summary}" for m in SILENT_MISMATCHES)
        epilog = EXAMPLES.format(systems=", ".join(SYSTEMS), failures=failures, mismatches=mismatches)
        return super().create_parser(prog_name, subcommand, formatter_class=_HelpFormatter, epilog=epilog, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mode",
            choices=("history", "live"),
            default="history",
            help="history: back-dated traffic stored quickly without HTTP (default); live: real time over HTTP",
        )
        parser.add_argument(
            "--days",
            type=_positive(float, "--days"),
            default=21.0,
            help=f"history: how many days back the traffic starts (default 21, at most {MAX_DAYS})",
        )
        parser.add_argument(
            "--rate",
            type=_positive(float, "--rate"),
            help=f"business transactions per hour in history (default {DEFAULT_HISTORY_RATE:g}, averaged over the "
            f"business week) or per minute in live mode (default {DEFAULT_LIVE_RATE:g})",
        )
        parser.add_argument(
            "--duration",
            type=_positive(float, "--duration"),
            default=60.0,
            help="live: seconds to run (default 60)",
        )
        parser.add_argument(
            "--failure-rate",
            type=_failure_rate,
            default=DEFAULT_FAILURE_RATE,
            help=f"share of business transactions hit by a failure or delivery anomaly, 0 to 1 "
            f"(default {DEFAULT_FAILURE_RATE:g})",
        )
        parser.add_argument(
            "--failures",
            metavar="KIND=WEIGHT,...",
            help="the failure mix instead of the default one; only the kinds listed occur (see below)",
        )
        parser.add_argument(
            "--seed", type=int, help="random seed: the same seed and time window give the same ids (default: random)"
        )
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="live: the console to send to (default %(default)s)"
        )
        parser.add_argument(
            "--silence",
            type=_silence,
            default=DEFAULT_SILENCE,
            metavar="SYSTEM=HOURS|none",
            help="SLA pressure: SYSTEM stops delivering for the last HOURS of working time (weekdays 06-18 UTC; live "
            "mode: plain seconds x 3600) before the end, as a webhook endpoint that stopped accepting "
            "(default %(default)s; none: no silence)",
        )
        parser.add_argument(
            "--evidence-loss",
            type=_share("--evidence-loss"),
            default=DEFAULT_EVIDENCE_LOSS,
            help="SLA pressure: share of control evidence (evidence.captured and its approval) that never arrives, "
            "0 to 1 (default %(default)s)",
        )
        parser.add_argument(
            "--mismatch-scale",
            type=_scale,
            default=1.0,
            help="silent mismatches at their realistic rates (1, the default) times this factor; 0: none "
            f"(at most {MAX_MISMATCH_SCALE:g}, where every order-to-cash transaction has one)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress lines; only the one-line summary")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="history: do nothing when events are stored already (so that `make demo` can run again)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and options["mode"] == "history" and Event.objects.exists():
            self.stdout.write("simulate: events are stored already; history left as it is (--if-empty)")
            return
        if options["days"] > MAX_DAYS:
            raise CommandError(f"--days must be at most {MAX_DAYS}, got {options['days']:g}")
        weights = dict(DEFAULT_FAILURE_WEIGHTS)
        if options["failures"]:
            try:
                weights = parse_failure_weights(options["failures"])
            except ValueError as exc:
                raise CommandError(f"--failures: {exc}") from exc
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(1_000_000)
        live = options["mode"] == "live"
        now = timezone.now()
        if live:
            rate = options["rate"] or DEFAULT_LIVE_RATE
            start = now + timedelta(seconds=1)  # a moment to set up tokens and exporters before the first delivery
            scenario = Scenario(
                seed=seed,
                start=start,
                end=start + timedelta(seconds=options["duration"]),
                rate_per_hour=rate * 60,
                failure_rate=options["failure_rate"],
                failure_weights=weights,
                live=True,
                silent_system=options["silence"][0],
                silence=options["silence"][1] / 3600,  # live runs last seconds: an hour of silence is a second
                evidence_loss=options["evidence_loss"],
                mismatch_scale=options["mismatch_scale"],
            )
            plan = f"live for {options['duration']:g}s at {rate:g} business transactions/min to {options['url']}"
        else:
            rate = options["rate"] or DEFAULT_HISTORY_RATE
            scenario = Scenario(
                seed=seed,
                start=now - timedelta(days=options["days"]),
                end=now,
                rate_per_hour=rate,
                failure_rate=options["failure_rate"],
                failure_weights=weights,
                silent_system=options["silence"][0],
                silence=options["silence"][1],
                evidence_loss=options["evidence_loss"],
                mismatch_scale=options["mismatch_scale"],
            )
            plan = f"history of {options['days']:g} days at {rate:g} business transactions/hour"
        quiet = options["quiet"]
        if not quiet:
            self.stdout.write(f"simulate: {plan}, seed {seed} (repeat with --seed {seed})")
        write = None if quiet else self.stderr.write
        chatty = CHATTY_LOGGERS if options["verbosity"] < 2 else ()
        try:
            with loggers_quiet(chatty):
                stats = self.run(scenario=scenario, live=live, url=options["url"], write=write)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(stats.headline() if quiet else "\n".join(stats.summary()))

    def run(self, *, scenario: Scenario, live: bool, url: str, write: Any) -> RunStats:
        if not live:
            return history_run(scenario=scenario, write=write)
        try:
            # Imported on demand: live mode needs optional dependencies (the OpenTelemetry SDK), history mode does not.
            from transactions.simulation.live import live_run
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith(("opentelemetry.sdk", "opentelemetry.exporter", "requests")):
                raise CommandError(
                    f"live mode needs the OpenTelemetry SDK and OTLP/HTTP exporter ({exc.name} is missing): "
                    "install the dev dependencies with .venv/bin/pip install -e '.[dev]'"
                ) from exc
            raise
        return live_run(scenario=scenario, url=url, write=write)
