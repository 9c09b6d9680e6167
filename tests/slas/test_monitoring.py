"""Silence as plain data: volume windows and verdicts, evidence checks (no database)."""

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from slas.calendars import BusinessTimeline, WorkCalendar, business_elapsed
from slas.monitoring import (
    EvidenceSpec,
    TripleMatcher,
    VolumeSpec,
    business_window_start,
    evidence_check,
    volume_period,
    volume_verdict,
)

OFFICE = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
BERLIN = WorkCalendar.from_data(time_zone="Europe/Berlin", working_hours=OFFICE, holidays=[date(2026, 12, 25)])
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # Berlin is UTC+1 in winter: working hours 07:00-17:00 UTC


def volume(**overrides) -> VolumeSpec:
    fields = {
        "monitor_id": 1,
        "system": "mulesoft-ipaas",
        "kind": "*",
        "entity": "",
        "mode": "window",
        "window": timedelta(minutes=30),
        "deadline_time": None,
        "min_count": 1,
        "max_count": None,
        "working_hours_only": True,
    }
    return VolumeSpec(**{**fields, **overrides})


# ---- Volume windows -------------------------------------------------------------------------------------------------


def test_a_working_time_window_reaches_back_over_the_weekend():
    now = MONDAY.replace(hour=7, minute=10)  # 08:10 in Berlin
    period = volume_period(volume(), BERLIN, now)
    assert period.start == datetime(2026, 11, 27, 16, 40, tzinfo=UTC)  # Friday 17:40 in Berlin
    assert period.end == now and "working time" in period.label


def test_a_plain_window_is_wall_clock_time():
    now = MONDAY.replace(hour=3)
    period = volume_period(volume(working_hours_only=False), BERLIN, now)
    assert (period.start, period.end) == (now - timedelta(minutes=30), now)


@settings(max_examples=60, deadline=None)
@given(
    end=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)).map(
        lambda d: d.replace(tzinfo=UTC, second=0, microsecond=0)
    ),
    minutes=st.integers(min_value=1, max_value=3000),
)
def test_window_start_holds_exactly_the_window_of_working_time_and_is_the_latest_such(end, minutes):
    timeline = BusinessTimeline(BERLIN, end - timedelta(days=40), end)
    start = business_window_start(timeline, end, timedelta(minutes=minutes))
    assert start is not None
    assert business_elapsed(BERLIN, start, end) == timedelta(minutes=minutes)
    assert business_elapsed(BERLIN, start + timedelta(seconds=1), end) < timedelta(minutes=minutes)


def test_window_start_is_none_when_the_timeline_does_not_reach_back_far_enough():
    now = MONDAY.replace(hour=9)
    timeline = BusinessTimeline(BERLIN, now - timedelta(hours=3), now)
    assert business_window_start(timeline, now, timedelta(hours=40)) is None


def test_daily_deadline_counts_the_latest_working_day_whose_deadline_passed():
    spec = volume(mode="daily_deadline", window=None, deadline_time=time(6, 0), working_hours_only=False)
    tuesday_early = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 05:00 in Berlin: today's deadline not yet passed
    period = volume_period(spec, BERLIN, tuesday_early)
    assert period.start == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Monday 00:00 in Berlin
    assert period.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # until Monday's end: its verdict stands
    tuesday_later = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    period = volume_period(spec, BERLIN, tuesday_later)
    assert (period.start, period.end) == (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), tuesday_later)
    assert period.label == "2026-12-01 by 06:00"


def test_daily_deadline_skips_weekends_and_holidays():
    spec = volume(mode="daily_deadline", window=None, deadline_time=time(6, 0))
    sunday = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert volume_period(spec, BERLIN, sunday).label == "2026-12-04 by 06:00"  # Friday
    boxing_day = datetime(2026, 12, 26, 12, 0, tzinfo=UTC)  # Saturday after Christmas (a holiday)
    assert volume_period(spec, BERLIN, boxing_day).label == "2026-12-24 by 06:00"


def test_verdict_too_few_too_many_and_fine():
    spec = volume(min_count=2, max_count=5)
    period = volume_period(spec, BERLIN, MONDAY.replace(hour=10))
    assert volume_verdict(spec, 1, period).violated
    assert "at least 2 expected" in volume_verdict(spec, 1, period).reason
    assert volume_verdict(spec, 6, period).violated and "at most 5" in volume_verdict(spec, 6, period).reason
    assert not volume_verdict(spec, 2, period).violated and not volume_verdict(spec, 5, period).violated


def test_triple_matcher_applies_system_kind_and_entity_globs():
    rows = [
        ("sap-s4", "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1", "DE01"),
        ("sap-s4", "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1", "US01"),
        ("sap-s4", "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1", "DE01"),
        ("stripe-payments", "invoice.paid", ""),
    ]
    matcher = TripleMatcher(rows)
    invoices_de = volume(system="sap-*", kind="*billingdocument*", entity="DE01")
    assert matcher.matching(invoices_de) == [rows[0]]
    assert matcher.matching(volume(system="sap-s4", kind="*", entity="")) == rows[:3]
    assert matcher.matching(volume(system="stripe-payments|sap-s4", kind="invoice.*|*journalentry*")) == [
        rows[2],
        rows[3],
    ]


# ---- Evidence -------------------------------------------------------------------------------------------------------


def evidence(**overrides) -> EvidenceSpec:
    fields = {
        "monitor_id": 1,
        "trigger_system": "sap-s4",
        "trigger_kind": "*journalentry*",
        "trigger_status": "ok",
        "evidence_system": "compliance-vault",
        "evidence_kind": "evidence.captured",
        "evidence_approval_step": "",
        "direction": "after",
        "window": timedelta(hours=24),
    }
    return EvidenceSpec(**{**fields, **overrides})


def ev(event_id: int, kind: str, at: datetime, *, system: str = "sap-s4", approval: dict | None = None) -> dict:
    return {"id": event_id, "occurred_at": at, "system": system, "kind": kind, "status": "ok", "approval": approval}


TIMELINE = BusinessTimeline(BERLIN, MONDAY - timedelta(days=30), MONDAY + timedelta(days=30))
POSTED = MONDAY.replace(hour=8)  # Monday 09:00 in Berlin


def test_evidence_after_the_trigger_within_the_window_satisfies_it():
    events = [
        ev(1, "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1", POSTED),
        ev(2, "evidence.captured", POSTED + timedelta(days=2), system="compliance-vault"),  # 20 business hours later
    ]
    [outcome] = evidence_check(evidence(), events, now=POSTED + timedelta(days=5), timeline=TIMELINE)
    assert outcome.evidence is events[1] and not outcome.missing
    # 9 h on Monday, 10 on Tuesday, 5 on Wednesday: due Wednesday 13:00 in Berlin.
    assert outcome.due_at == datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_evidence_is_missing_only_once_its_window_of_business_time_has_passed():
    events = [ev(1, "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1", POSTED)]
    [waiting] = evidence_check(evidence(), events, now=POSTED + timedelta(days=1), timeline=TIMELINE)
    assert not waiting.missing and waiting.evidence is None
    late = [*events, ev(2, "evidence.captured", POSTED + timedelta(days=4), system="compliance-vault")]
    [missing] = evidence_check(evidence(), late, now=POSTED + timedelta(days=4), timeline=TIMELINE)
    assert missing.missing and missing.evidence is None  # 3 business days later is outside the 24 h


def test_evidence_before_the_trigger_from_an_approval_step():
    spec = evidence(
        trigger_kind="vendor.bank_details.changed",
        evidence_system="",
        evidence_kind="",
        evidence_approval_step="vendor-master-approval",
        direction="before",
        window=timedelta(hours=40),
    )
    approval = {"actor": "t.nguyen", "decision": "approved", "step": "vendor-master-approval"}
    approved = ev(1, "vendor.bank_details.requested", POSTED - timedelta(days=1), approval=approval)
    change = ev(2, "vendor.bank_details.changed", POSTED)
    [ok] = evidence_check(spec, [approved, change], now=POSTED, timeline=TIMELINE)
    assert ok.evidence is approved and not ok.missing
    # An approval given after the change does not count, and neither does a rejected one.
    after = ev(3, "vendor.bank_details.requested", POSTED + timedelta(hours=1), approval=approval)
    rejected = ev(4, "x", POSTED - timedelta(hours=1), approval={**approval, "decision": "rejected"})
    [missing] = evidence_check(spec, [rejected, change, after], now=POSTED, timeline=TIMELINE)
    assert missing.missing and missing.evidence is None


def test_a_trigger_is_never_its_own_evidence():
    spec = evidence(trigger_kind="evidence.captured", trigger_system="", evidence_system="")
    events = [ev(1, "evidence.captured", POSTED, system="compliance-vault")]
    [outcome] = evidence_check(spec, events, now=POSTED + timedelta(days=10), timeline=TIMELINE)
    assert outcome.missing
    # A second capture is evidence for the first (and the first, earlier, is not evidence for the second).
    events.append(ev(2, "evidence.captured", POSTED + timedelta(hours=1), system="compliance-vault"))
    first, second = evidence_check(spec, events, now=POSTED + timedelta(days=10), timeline=TIMELINE)
    assert first.evidence is events[1] and second.missing
