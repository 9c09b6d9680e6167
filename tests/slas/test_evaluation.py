"""The pure clock logic: matching, pauses, state transitions and the forecast (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from slas.calendars import CalendarClock, WorkCalendar
from slas.choices import ClockStatus
from slas.evaluation import (
    CasePause,
    ClockState,
    EventFact,
    Matcher,
    StepInfo,
    Target,
    evaluate_clock,
    expected_finish,
    forecast_parts,
    p90_step_durations,
    parse_pause_conditions,
    percentile,
    scan_events,
)

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)  # a Wednesday, 08:00 UTC
H = timedelta(hours=1)
ALWAYS = CalendarClock(
    WorkCalendar.from_data(
        time_zone="UTC",
        working_hours={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
)
START = Matcher(system="", kind="contract.approved", status="ok")
STOP = Matcher(system="", kind="invoice.posted|*billingdocument*.created*", status="ok")
FOUR_HOURS = Target(seconds=4 * 3600, at_risk_percent=80)
STEPS = [
    StepInfo(1, "Contract approved", "", "contract.approved"),
    StepInfo(2, "Sales order created", "", "order.created"),
    StepInfo(3, "Invoice posted", "", "invoice.posted|*billingdocument*.created*"),
    StepInfo(4, "Payment received", "", "payment.received"),
]


def ev(n: int, kind: str, hours: float, status: str = "ok", system: str = "crm", keys: tuple = ()) -> EventFact:
    return EventFact(n, T0 + timedelta(hours=hours), system, kind, status, frozenset(keys), "DE01")


def facts(*pairs: tuple[str, float]) -> dict:
    return {
        f"sys|{kind}": {
            "status": "ok",
            "first_at": (T0 + h * H).isoformat(),
            "last_at": (T0 + h * H).isoformat(),
            "count": 1,
        }
        for kind, h in pairs
    }


def started(hours: float = 0) -> ClockState:
    return ClockState(status=ClockStatus.RUNNING, started_at=T0 + hours * H, start_event_id=1)


def test_matchers_use_globs_alternatives_status_and_key_types() -> None:
    assert STOP.matches(ev(1, "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1", 0))
    assert not START.matches(ev(1, "contract.approved", 0, status="error"))
    keyed = Matcher(system="sap-*", kind="*", key_type="invoice")
    assert keyed.matches(ev(1, "x", 0, system="sap-s4", keys=("invoice",)))
    assert not keyed.matches(ev(1, "x", 0, system="sap-s4"))
    assert not keyed.matches(ev(1, "x", 0, system="crm", keys=("invoice",)))


@pytest.mark.parametrize(
    ("start", "stop", "overlap"),
    [
        (Matcher("", "contract.approved"), Matcher("", "contract.approved"), True),
        (Matcher("", "invoice.*"), Matcher("", "invoice.posted"), True),
        (Matcher("", "*"), Matcher("", "invoice.posted"), True),
        (Matcher("", "contract.approved", "ok"), Matcher("", "contract.approved", "error"), False),
        (Matcher("crm", "invoice.*"), Matcher("erp", "invoice.posted"), False),
        (Matcher("", "contract.approved"), Matcher("", "invoice.posted|*billingdocument*"), False),
    ],
)
def test_overlapping_matchers_are_detected(start: Matcher, stop: Matcher, overlap: bool) -> None:
    assert start.overlaps(stop) is overlap


def test_pause_conditions_are_parsed_or_refused_with_the_entry_at_fault() -> None:
    rules = parse_pause_conditions(
        [{"case_category": "data_quality"}, {"event_kind": "vendor.query", "until_kind": "vendor.answer"}]
    )
    assert [r.on_case for r in rules] == [True, False]
    with pytest.raises(ValueError, match="pause condition 2"):
        parse_pause_conditions([{"case_category": "x"}, {"event_kind": "a"}])
    with pytest.raises(ValueError, match="must be a list"):
        parse_pause_conditions({"case_category": "x"})


def test_scan_takes_the_first_start_and_the_first_stop_after_it() -> None:
    events = [
        ev(3, "invoice.posted", -1),  # before the start: ignored
        ev(1, "contract.approved", 0),
        ev(2, "contract.approved", 1),
        ev(5, "invoice.posted", 3),
        ev(4, "invoice.posted", 2),
    ]
    found = scan_events(start=START, stop=STOP, pause_rules=(), events=events)
    assert (found.start.event_id, found.stop.event_id) == (1, 4)
    assert scan_events(start=START, stop=STOP, pause_rules=(), events=[ev(9, "x", 0)]) is None


def test_event_pauses_open_and_close() -> None:
    rules = parse_pause_conditions([{"event_kind": "vendor.query", "until_kind": "vendor.answer"}])
    events = [
        ev(1, "contract.approved", 0),
        ev(2, "vendor.query", 1),
        ev(3, "vendor.answer", 2),
        ev(4, "vendor.query", 3),
    ]
    found = scan_events(start=START, stop=STOP, pause_rules=rules, events=events)
    assert [(p["from"], p["to"], p["event_id"]) for p in found.event_pauses] == [
        ((T0 + H).isoformat(), (T0 + 2 * H).isoformat(), 2),
        ((T0 + 3 * H).isoformat(), None, 4),
    ]


def evaluate(state: ClockState, now_hours: float, **kwargs) -> ClockState:
    return evaluate_clock(state, target=FOUR_HOURS, business=ALWAYS, now=T0 + now_hours * H, **kwargs)


def test_running_then_at_risk_then_breached() -> None:
    state = evaluate(started(), 1)
    assert (state.status, state.elapsed_seconds, state.remaining_seconds) == (ClockStatus.RUNNING, 3600, 3 * 3600)
    assert state.due_at == T0 + 4 * H
    state = evaluate(state, 3.5)
    assert state.status == ClockStatus.AT_RISK and state.at_risk_at == T0 + 3.5 * H
    state = evaluate(state, 5)
    assert state.status == ClockStatus.BREACHED and state.breached_at == T0 + 4 * H
    # A breach is final, even if the stop event turns up later.
    stop = ev(2, "invoice.posted", 6)
    state = evaluate(
        state,
        7,
        facts=scan_events(start=START, stop=STOP, pause_rules=(), events=[ev(1, "contract.approved", 0), stop]),
    )
    assert state.status == ClockStatus.BREACHED and state.stopped_at == T0 + 6 * H


def test_stop_within_target_is_met_and_late_stop_is_breached() -> None:
    on_time = scan_events(
        start=START, stop=STOP, pause_rules=(), events=[ev(1, "contract.approved", 0), ev(2, "invoice.posted", 3)]
    )
    state = evaluate(started(), 10, facts=on_time)
    assert (state.status, state.met_at, state.elapsed_seconds) == (ClockStatus.MET, T0 + 3 * H, 3 * 3600)
    late = scan_events(
        start=START, stop=STOP, pause_rules=(), events=[ev(1, "contract.approved", 0), ev(2, "invoice.posted", 5)]
    )
    state = evaluate(started(), 10, facts=late)
    assert state.status == ClockStatus.BREACHED and state.breached_at == T0 + 4 * H


def test_case_pause_stops_the_clock_and_moves_the_deadline() -> None:
    pause = CasePause(since=T0 + H, reason="open data_quality case")
    state = evaluate(started(), 2, case_pause=pause)
    assert state.status == ClockStatus.PAUSED
    assert (state.elapsed_seconds, state.paused_seconds, state.paused_since) == (3600, 3600, T0 + H)
    state = evaluate(state, 10, case_pause=pause)  # still paused: never breaches while paused
    assert state.status == ClockStatus.PAUSED and state.elapsed_seconds == 3600
    state = evaluate(state, 11)  # the case was resolved: resumes now
    assert state.status == ClockStatus.RUNNING
    assert (state.elapsed_seconds, state.paused_seconds) == (3600, 10 * 3600)
    assert state.due_at == T0 + 14 * H


def test_pauses_overlapping_are_counted_once() -> None:
    state = started()
    state.pauses = [
        {"from": (T0 + H).isoformat(), "to": (T0 + 3 * H).isoformat(), "reason": "a", "source": "event", "event_id": 1},
        {
            "from": (T0 + 2 * H).isoformat(),
            "to": (T0 + 4 * H).isoformat(),
            "reason": "b",
            "source": "case",
            "event_id": None,
        },
    ]
    state = evaluate(state, 5)
    assert (state.paused_seconds, state.elapsed_seconds) == (3 * 3600, 2 * 3600)


def test_percentile_and_step_durations() -> None:
    assert percentile([1.0] * 9 + [100.0]) == 1.0
    assert percentile([float(i) for i in range(1, 11)]) == 9.0
    samples = [
        (T0, facts(("contract.approved", 0), ("order.created", 1), ("invoice.posted", 1 + i))) for i in range(1, 11)
    ]
    p90 = p90_step_durations(STEPS, samples)
    assert p90 == {2: 3600.0, 3: 9 * 3600.0}


def test_forecast_names_the_awaited_step_and_its_expected_finish() -> None:
    p90 = {2: 3600.0, 3: 9 * 3600.0}
    current = facts(("contract.approved", 0), ("order.created", 1))
    parts = forecast_parts(STEPS, p90, current, started_at=T0, stop=STOP)
    assert parts.waiting_for_step == "Invoice posted"
    assert (parts.since, parts.step_p90, parts.after_p90) == (T0 + H, 9 * 3600.0, 0.0)
    assert expected_finish(parts.as_data(), now=T0 + 2 * H) == T0 + 10 * H
    # Overdue against its own p90: expected now, never in the past.
    assert expected_finish(parts.as_data(), now=T0 + 12 * H) == T0 + 12 * H
    # Waiting for the sales order: its p90 and the invoice's after it.
    parts = forecast_parts(STEPS, p90, facts(("contract.approved", 0)), started_at=T0, stop=STOP)
    assert (parts.waiting_for_step, parts.step_p90, parts.after_p90) == ("Sales order created", 3600.0, 9 * 3600.0)


def test_forecast_late_puts_the_clock_at_risk_before_the_threshold() -> None:
    parts = forecast_parts(
        STEPS,
        {2: 3600.0, 3: 9 * 3600.0},
        facts(("contract.approved", 0), ("order.created", 1)),
        started_at=T0,
        stop=STOP,
    )
    state = evaluate(started(), 1.5, forecast=parts)
    assert state.status == ClockStatus.AT_RISK
    assert state.expected_finish_at == T0 + 10 * H
    assert "waiting for Invoice posted" in state.at_risk_reason
    # A process without history forecasts nothing, so nothing is at risk on no evidence.
    parts = forecast_parts(STEPS, {}, facts(("contract.approved", 0)), started_at=T0, stop=STOP)
    assert parts.as_data() is None and parts.waiting_for_step == "Sales order created"
    assert evaluate(started(), 1.5, forecast=parts).status == ClockStatus.RUNNING


def test_without_a_process_step_for_the_stop_the_clock_waits_for_the_stop_event() -> None:
    parts = forecast_parts(STEPS, {}, {}, started_at=T0, stop=Matcher("", "evidence.captured"))
    assert parts.waiting_for_step == "evidence.captured" and parts.as_data() is None
