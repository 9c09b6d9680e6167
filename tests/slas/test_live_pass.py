"""The minute pass over many live clocks (the PostgreSQL COPY path, its writer thread, and the portable one)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count

from exceptions.models import Case
from exceptions.services import signals as signal_service
from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus
from slas.evaluation import ClockState
from slas.models import SlaClock
from slas.services import clocks as clock_service
from slas.services.clocks import clocks_evaluate_live
from tests.factories import SlaDefinitionFactory
from tests.slas.conftest import T0
from transactions.models import Transaction

H = timedelta(hours=1)


QUERY_PAUSE = {"from": T0.isoformat(), "to": None, "reason": "query", "source": "event", "event_id": 1}


def live_clocks(count: int) -> list[int]:
    definition = SlaDefinitionFactory(pause_conditions=[{"case_category": "data_quality"}])
    txns = Transaction.objects.bulk_create(
        [Transaction(started_at=T0, last_event_at=T0) for _ in range(count)], batch_size=1000
    )
    SlaClock.objects.bulk_create(
        [
            SlaClock(
                definition=definition,
                txn=txn,
                started_at=T0 - (i % 5) * H,  # 0 to 4 business hours before T0 (all on Monday's office hours)
                start_event_id=i,
                entity="DE01",
                pauses=[]
                if i % 7
                else [{"from": T0.isoformat(), "to": None, "reason": "query", "source": "event", "event_id": 1}],
                forecast={"since": T0.isoformat(), "step_p90": 600.0, "after_p90": 0.0} if i % 3 == 0 else None,
            )
            for i, txn in enumerate(txns)
        ],
        batch_size=1000,
    )
    return [t.pk for t in txns]


def test_minute_pass_moves_every_live_clock_in_chunks(db, reference):
    live_clocks(1200)
    result = clocks_evaluate_live(now=T0 + 0.5 * H, chunk=500)
    assert result["clocks"] == 1200 and result["written"] == 1200
    by_status = dict(SlaClock.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
    # Paused from T0 on, unless the target was used up before (started 4 h earlier): that is a breach.
    assert by_status[ClockStatus.PAUSED] == len([i for i in range(1200) if i % 7 == 0 and i % 5 != 4])
    fresh = SlaClock.objects.exclude(status=ClockStatus.PAUSED).get(start_event_id=5)
    assert fresh.elapsed_seconds == 1800 and fresh.due_at == T0 + 4 * H and fresh.version == 2
    oldest = SlaClock.objects.get(start_event_id=4)  # started 4 h before T0: target used up
    assert oldest.breached_at == T0 and oldest.remaining_seconds == -1800
    forecast = SlaClock.objects.get(start_event_id=3)
    assert forecast.expected_finish_at == T0 + 0.5 * H
    # Nothing moved since: a second pass at the same instant writes nothing but the breaches still waiting for their
    # case (each pass tries to open it again; see test_breach_whose_case_fails_stays_live_and_is_retried).
    waiting = SlaClock.objects.filter(breached_at__isnull=False, breach_case__isnull=True).count()
    assert clocks_evaluate_live(now=T0 + 0.5 * H, chunk=500)["written"] == waiting


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the writer thread runs on PostgreSQL only")
def test_beat_pass_outside_a_transaction_writes_in_a_thread_with_the_same_result(transactional_db, reference):
    live_clocks(1200)
    assert not connection.in_atomic_block
    result = clocks_evaluate_live(now=T0 + 0.5 * H, chunk=500)
    breached = SlaClock.objects.filter(status=ClockStatus.BREACHED)
    assert result == {"clocks": 1200, "written": 1200, "breached": breached.count()}
    assert breached.count() == len([i for i in range(1200) if i % 5 == 4 and i % 7]) + len(
        [i for i in range(1200) if i % 5 == 4 and i % 7 == 0]
    )
    # Every breach has its case, committed with the clock by the writer thread.
    assert not breached.filter(breach_case__isnull=True).exists()
    assert Case.objects.filter(pk__in=breached.values("breach_case")).count() == 1
    fresh = SlaClock.objects.exclude(status=ClockStatus.PAUSED).get(start_event_id=5)
    assert fresh.elapsed_seconds == 1800 and fresh.due_at == T0 + 4 * H and fresh.version == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the writer thread runs on PostgreSQL only")
def test_a_failing_chunk_in_the_writer_thread_fails_the_pass(transactional_db, reference, monkeypatch):
    live_clocks(30)

    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clock_service, "_write", refuse)
    with pytest.raises(RuntimeError, match="disk full"):
        clocks_evaluate_live(now=T0 + 0.5 * H, chunk=10)
    assert not SlaClock.objects.filter(version__gt=1).exists()


def test_breach_whose_case_fails_stays_live_and_is_retried(db, reference, monkeypatch):
    def refuse(signals, **kwargs):
        raise RuntimeError("case store unavailable")

    monkeypatch.setattr(signal_service, "signals_record", refuse)
    live_clocks(5)
    clocks_evaluate_live(now=T0 + 0.5 * H)
    clock = SlaClock.objects.get(start_event_id=4)
    assert clock.status == ClockStatus.RUNNING and clock.breached_at == T0 and clock.breach_case_id is None
    assert "its case could not be opened yet" in clock.at_risk_reason
    calls = []
    monkeypatch.setattr(
        signal_service, "signals_record", lambda signals, **kw: calls.extend(signals) or refuse(signals)
    )
    clocks_evaluate_live(now=T0 + 0.6 * H)
    # The batch, then each signal on its own: the same single breach both times.
    assert {c.signal_key for c in calls} == {f"sla-breach:{clock.pk}"}
    assert calls[0].fingerprint_parts == (clock.definition.slug, "invoice.posted status ok")
    assert calls[0].category_slug == "control" and calls[0].txn_id == clock.txn_id
    monkeypatch.undo()
    clocks_evaluate_live(now=T0 + 0.7 * H)
    clock.refresh_from_db()
    assert clock.status == ClockStatus.BREACHED and clock.breach_case is not None


def test_a_clock_changed_since_it_was_read_is_not_overwritten(db, reference):
    live_clocks(2)
    clock = SlaClock.objects.order_by("id").first()
    state = ClockState(status=ClockStatus.AT_RISK, started_at=clock.started_at, start_event_id=clock.start_event_id)
    SlaClock.objects.filter(pk=clock.pk).update(version=5)  # the correlation path wrote it in between
    written = clock_service._write([clock_service._Write(clock.pk, 1, state, True, "running")], T0)
    assert written == set()
    clock.refresh_from_db()
    assert clock.status == ClockStatus.RUNNING and clock.version == 5
    written = clock_service._write([clock_service._Write(clock.pk, 5, state, True, "running")], T0)
    assert written == {clock.pk}
    clock.refresh_from_db()
    assert (clock.status, clock.version, clock.evaluated_at) == (ClockStatus.AT_RISK, 6, T0)


def test_time_passing_alone_is_stored_every_ten_minutes_and_changes_of_state_at_once(db, reference):
    live_clocks(10)
    clocks_evaluate_live(now=T0)
    running = SlaClock.objects.filter(status=ClockStatus.RUNNING).order_by("id")
    first = running.first()
    elapsed = first.elapsed_seconds
    # (Breaches waiting for their case are retried, and so written, every pass: signal_record may be missing here.)
    pending = SlaClock.objects.filter(breached_at__isnull=False, breach_case__isnull=True).count()
    assert clocks_evaluate_live(now=T0 + timedelta(minutes=1))["written"] == pending
    first.refresh_from_db()
    assert first.elapsed_seconds == elapsed  # one minute of drift is not written
    # Ten minutes on, every live clock drifted far enough (elapsed, or paused time) to be stored again.
    live = SlaClock.objects.filter(status__in=LIVE_CLOCK_STATUSES).count()
    assert clocks_evaluate_live(now=T0 + timedelta(minutes=10))["written"] == live
    first.refresh_from_db()
    assert first.elapsed_seconds == elapsed + 600
    # Crossing the at-risk threshold is written at once, whatever the drift.
    clocks_evaluate_live(now=T0 + timedelta(minutes=10, seconds=1))
    at_risk = SlaClock.objects.get(start_event_id=3)  # started 3 h before T0: 80% of 4 h reached at T0 + 12 min
    assert at_risk.status == ClockStatus.RUNNING
    assert clocks_evaluate_live(now=T0 + timedelta(minutes=13))["written"] >= 1
    at_risk.refresh_from_db()
    assert at_risk.status == ClockStatus.AT_RISK and at_risk.at_risk_at == T0 + timedelta(minutes=13)
