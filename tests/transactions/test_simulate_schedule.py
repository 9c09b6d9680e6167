"""Scheduled traffic in the simulated estate: the German entity's daily bill run and the nightly bank statement, each
missing once in the window, so that the default volume monitors (slas/reference.py) see both states."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from slas.reference import BANK_STATEMENT_KINDS, SAP_BILLING_DOCUMENT_CREATED
from transactions.simulation.estate import (
    BANK_STATEMENT_PROCESS,
    BILL_RUN_PROCESS,
    Scenario,
    generate,
)
from transactions.simulation.history import history_run

END = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)  # a Wednesday evening: both of that day's deliveries are in
BERLIN_WINTER = timedelta(hours=1)


def scenario(**kw) -> Scenario:
    return Scenario(seed=3, start=END - timedelta(days=14), end=END, rate_per_hour=0.5, **kw)


def test_every_weekday_has_a_bill_run_of_de01_invoices_and_a_bank_statement_and_each_misses_once():
    txns = list(generate(scenario()))
    invoices = Counter(e.occurred_at.date() for t in txns if t.process == BILL_RUN_PROCESS for e in t.events)
    statements = {e.occurred_at.date(): e for t in txns if t.process == BANK_STATEMENT_PROCESS for e in t.events}
    weekdays = sorted(day for day in invoices)
    assert all(day.weekday() < 5 for day in weekdays) and len(weekdays) == 10
    assert sorted(statements) == weekdays

    # What the monitors count: Zuora's invoice.posted for DE01 (the DE01 monitor) and SAP's bank statement event.
    bill_run = [e for t in txns if t.process == BILL_RUN_PROCESS for e in t.events]
    assert {(e.system, e.record["kind"], e.record["entity"]) for e in bill_run} == {
        ("zuora-billing", "invoice.posted", "DE01")
    }
    assert "invoice.posted" in "invoice.posted|" + SAP_BILLING_DOCUMENT_CREATED
    assert {e.record["kind"] for e in statements.values()} <= set(BANK_STATEMENT_KINDS.split("|"))

    # At least 200 invoices by 18:00 Berlin on every weekday but one; the statement by 06:00 Berlin but once.
    short = [day for day, n in invoices.items() if n < 200]
    assert len(short) == 1 and 100 < invoices[short[0]] < 200
    late = [day for day, e in statements.items() if (e.occurred_at + BERLIN_WINTER).hour >= 6]
    assert len(late) == 1
    # Not on the last two weekdays: the console shows a miss that recovered and monitors that hold now.
    assert short[0] not in weekdays[-2:] and late[0] not in weekdays[-2:]
    # Each bill run is posted within the Berlin morning, well before the deadline.
    assert all(7 <= (e.occurred_at + BERLIN_WINTER).hour < 12 for e in bill_run)


def test_scheduled_traffic_leaves_the_business_transactions_as_they_were():
    business = [t for t in generate(scenario()) if t.process not in (BILL_RUN_PROCESS, BANK_STATEMENT_PROCESS)]
    again = [t for t in generate(scenario()) if t.process not in (BILL_RUN_PROCESS, BANK_STATEMENT_PROCESS)]
    assert [e.record for t in business for e in t.events] == [e.record for t in again for e in t.events]
    live = Scenario(seed=3, start=END - timedelta(minutes=2), end=END, rate_per_hour=60, live=True)
    assert not [t for t in generate(live) if t.process in (BILL_RUN_PROCESS, BANK_STATEMENT_PROCESS)]


def test_the_summary_names_the_scheduled_traffic(db):
    plan = Scenario(seed=3, start=END - timedelta(hours=18), end=END, rate_per_hour=0.2, failure_rate=0)
    stats = history_run(scenario=plan)
    assert stats.rejected == 0
    line = next(line for line in stats.summary() if line.startswith("  scheduled traffic:"))
    assert f"{BILL_RUN_PROCESS} {stats.processes[BILL_RUN_PROCESS]:,}" in line and BANK_STATEMENT_PROCESS in line
