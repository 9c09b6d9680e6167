"""`make demo` tells the truth: after a short history and one pass of the periodic jobs, the console's counts agree
with the simulator's summary and every state the console has is shown; the demo starts quietly."""

import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from console.management.commands.serve_demo import DEMO_REPLAYS, demo_counts_lines, demo_replays_run
from console.periodic import run_due_jobs
from console.selectors import demo_counts
from exceptions.choices import ACTIVE_STATUSES, ReplayStatus
from exceptions.models import Case, Notification, Queue, Replay
from tests.transactions.test_simulate import FIXED_END
from transactions.simulation.history import FIRST_SPAN, history_run, history_scenario
from transactions.simulation.replay_target import EstateReplayTarget

ROOT = Path(__file__).resolve().parents[2]


# Two days of history through the real ingest and every follow-up: about 30 s alone, minutes on a loaded machine.
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_after_two_days_of_history_and_one_pass_of_the_jobs_the_console_agrees_with_the_simulator():
    call_command("load_reference_data", stdout=io.StringIO())
    call_command("create_demo_users", stdout=io.StringIO())
    # A failure rate that deals the failure deck through at least once in two days, malformed records included.
    # Ending at a fixed instant, as tests/transactions/test_simulate.py does: a window ending now holds a different
    # traffic mix at each hour, and at some hours correlation joins one transaction the simulator counts as two.
    scenario = replace(history_scenario(days=2, seed=7, now=FIXED_END), failure_rate=0.6)
    moments: list[int] = []
    stats = history_run(scenario=scenario, first_span_stored=lambda: moments.append(len(moments)))
    run_due_jobs({})
    counts = demo_counts()

    # The serve_demo hook: called once, when the first day was stored.
    assert moments == [0]
    # What the simulator says it sent is what the console shows.
    assert counts["events"] == stats.accepted
    assert counts["dead_letters"] == stats.rejected > 0  # malformed records, each kept once
    assert counts["transactions"] == stats.transactions
    # Every state the console has: escalated cases notify their queue's lead, SLA clocks breach and pause.
    assert counts["cases_escalated"] > 0
    assert counts["notifications"] >= counts["cases_escalated"]
    leads = set(Notification.objects.values_list("user__username", flat=True))
    assert leads and leads <= {"ops", "manager"}
    assert counts["clocks_breached"] > 0 and counts["clocks_met"] > 0 and counts["clocks_at_risk"] > 0
    # Transactions that stalled, failed (as the simulator delivered them: a failure no later success made good) and
    # recovered, and cases past their targets on the queue pages.
    assert counts["stalled"] > 0 and counts["recovered"] > 0
    assert counts["failed"] == stats.failed > 0
    assert counts["cases_overdue"] > 0
    lines = "\n".join(stats.summary() + demo_counts_lines(counts))
    assert f"{counts['dead_letters']:,} dead letters" in lines and f"{stats.rejected:,} rejected" in lines
    assert f"{stats.failed:,} failed as delivered" in lines and f"{counts['failed']:,} failed," in lines

    # Replays through the replay service, sent over HTTP to the simulated systems, which report each redone step
    # with a success event through ingest; the confirmation resolves the cases.
    open_before = set(Case.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    target = EstateReplayTarget(
        delivered=lambda record, answer: stats.count_replay(
            record=record, accepted=answer.accepted, duplicates=answer.duplicates
        )
    ).start()
    try:
        requested = demo_replays_run(target=target)
    finally:
        target.stop()
    after = demo_counts()
    assert len(requested) == DEMO_REPLAYS == stats.replayed == after["replays"]
    replays = list(Replay.objects.select_related("case"))
    assert {r.status for r in replays} == {ReplayStatus.SUCCEEDED}
    assert {r.case.status for r in replays} == {"resolved"} and {r.requested_by for r in replays} == {"user:ops"}
    assert after["events"] == stats.accepted == counts["events"] + DEMO_REPLAYS
    # The estate's own account of what its replays made good agrees with the console's failed count.
    assert after["failed"] == stats.failed == counts["failed"] - stats.replays_made_good
    assert f"{stats.replays_made_good:,} of them made a failed transaction good" in "\n".join(stats.summary())
    # The replayed cases closed and no other; the later arrivals may open new ones (a clock judged later breaches).
    open_after = set(Case.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True))
    replayed = {r.case_id for r in replays}
    assert len(replayed) == DEMO_REPLAYS and replayed <= open_before and not replayed & open_after
    assert open_before - replayed <= open_after


def test_the_first_span_is_a_day():
    assert FIRST_SPAN.total_seconds() == 86_400


@pytest.mark.django_db
def test_every_demo_queue_has_a_lead_who_hears_of_escalations():
    from exceptions.reference import exceptions_reference_data_load

    exceptions_reference_data_load()
    call_command("create_demo_users", stdout=io.StringIO())
    leads = dict(Queue.objects.values_list("slug", "lead__username"))
    assert leads and all(leads.values())
    assert leads["billing"] == "ops" and set(leads.values()) == {"ops", "manager"}


def test_a_demo_without_a_broker_logs_no_kombu_hostname_warning():
    # A fresh process: the broker URL is read when the Celery app is configured.
    code = (
        "import django; django.setup()\n"
        "from transactions.tasks import sweep_uncorrelated_batches as t\n"
        "from console.celery import app\n"
        "assert app.conf.task_always_eager\n"
        "with app.producer_or_acquire() as producer: pass\n"
        "print(app.conf.broker_url)\n"
    )
    env = {**os.environ, "DEBUG": "1", "CELERY_BROKER_URL": "", "DJANGO_SETTINGS_MODULE": "console.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("memory://")
    assert "No hostname" not in result.stderr


@pytest.mark.django_db
def test_monitors_are_judged_again_at_each_past_day_so_a_miss_in_the_history_is_a_case_of_its_day():
    from console.management.commands.serve_demo import MONITOR_REPLAY_HOURS, monitors_replay
    from slas.models import VolumeMonitor

    call_command("load_reference_data", stdout=io.StringIO())
    end = timezone.now()
    start = end - timedelta(days=6)
    passes = monitors_replay(start=start, end=end)
    assert 11 <= passes <= 13 and len(MONITOR_REPLAY_HOURS) == 2
    # No traffic at all: the bank statement monitor missed at the first working morning of the window.
    monitor = VolumeMonitor.objects.get(slug="bank-statement-by-0600")
    assert monitor.currently_violated and monitor.case is not None
    assert monitor.violated_since < end - timedelta(hours=12)
    assert monitor.case.first_seen < end - timedelta(hours=12)
