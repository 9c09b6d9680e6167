"""Dashboard KPI arithmetic against hand-computed values (no database)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from slas import kpis
from slas.charts import number
from transactions.correlation import StepSpec


def test_empty_period_gives_no_figure_rather_than_zero_or_an_error():
    assert kpis.attainment(0, 0) is None
    assert kpis.touchless_rate(0, 0) is None
    assert kpis.success_rate(0, 0) is None
    assert kpis.percentile([], 50) is None
    assert kpis.mean([]) is None
    assert kpis.within_share([], 3600) is None
    assert kpis.period_change(None, 80.0) is None
    assert kpis.hours_avoided(
        0, 0, minutes_per_correlation=Decimal(15), minutes_per_classification=Decimal(10)
    ) == Decimal("0.0")
    assert kpis.contributions({}) == []


def test_single_transaction():
    assert kpis.attainment(1, 0) == 100.0
    assert kpis.attainment(0, 1) == 0.0
    assert kpis.touchless_rate(1, 1) == 100.0
    assert kpis.percentile([7200], 50) == 7200
    assert kpis.percentile([7200], 95) == 7200
    assert kpis.mean([7200]) == 7200


def test_rates_and_percentiles_by_hand():
    # 3 met of 4 closed; 2 of 5 completed without a case; 9 of 10 replays.
    assert kpis.attainment(3, 1) == 75.0
    assert kpis.touchless_rate(5, 2) == 40.0
    assert kpis.success_rate(9, 1) == 90.0
    # Closest-rank interpolation: rank (n-1)p: [1,2,3,4] p50 -> 2.5, p90 -> rank 2.7 -> 3 + 0.7.
    assert kpis.percentile([4, 1, 3, 2], 50) == 2.5
    assert abs(kpis.percentile([4, 1, 3, 2], 90) - 3.7) < 1e-9
    assert kpis.percentile([10, 20], 95) == 19.5
    # 12 transactions x 15 min + 6 exceptions x 10 min = 240 min = 4 h.
    assert kpis.hours_avoided(
        12, 6, minutes_per_correlation=Decimal(15), minutes_per_classification=Decimal(10)
    ) == Decimal("4.0")
    assert kpis.within_share([3600, 86400, 90000], 86400) == 200 / 3
    assert kpis.period_change(92.5, 90.0) == 2.5


def test_ratio_histogram_buckets_are_tenths_of_the_target_and_invert_exactly():
    # Target 100 s: bucket i holds [10 i, 10 i + 10) seconds; 200 s and beyond share the last bucket.
    counts = kpis.ratio_histogram([0, 9, 10, 99, 100, 199, 200, 1000], 100)
    assert counts[0] == 2 and counts[1] == 1 and counts[9] == 1 and counts[10] == 1 and counts[19] == 1
    assert counts[20] == 2 and sum(counts) == 8
    assert kpis.ratio_bucket_range(10, 100) == (100, 110)
    assert kpis.ratio_bucket_range(20, 100) == (200, None)
    # A target that is not a multiple of 20: every second lands in the bucket whose range holds it.
    target = 333
    for seconds in range(0, 2 * target + 5):
        low, high = kpis.ratio_bucket_range(kpis.ratio_bucket(seconds, target), target)
        assert low <= seconds and (high is None or seconds < high)


def test_contributions_rank_and_share():
    assert kpis.contributions({"sap": 6, "crm": 3, "bank": 1, "idle": 0}) == [
        ("sap", 6, 60.0),
        ("crm", 3, 30.0),
        ("bank", 1, 10.0),
    ]


def test_days_across_dst_changes():
    # Berlin springs forward on 29 March 2026 (23-hour day) and falls back on 25 October (25-hour day).
    start, end = kpis.day_bounds(date(2026, 3, 29), "Europe/Berlin")
    assert start == datetime(2026, 3, 28, 23, tzinfo=UTC) and end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert end - start == timedelta(hours=23)
    start, end = kpis.day_bounds(date(2026, 10, 25), "Europe/Berlin")
    assert end - start == timedelta(hours=25)
    # 22:30 UTC is already the next local day after the change, but not the evening before it.
    assert kpis.local_day(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2026, 3, 30)
    assert kpis.local_day(datetime(2026, 3, 27, 22, 30, tzinfo=UTC), "Europe/Berlin") == date(2026, 3, 27)
    # A week crossing the change is 167 hours long, and its days tile it without gap or overlap.
    first, last = date(2026, 3, 23), date(2026, 3, 29)
    start, end = kpis.period_bounds(first, last, "Europe/Berlin")
    assert end - start == timedelta(hours=167)
    days = [kpis.day_bounds(first + timedelta(days=i), "Europe/Berlin") for i in range(7)]
    assert all(days[i][1] == days[i + 1][0] for i in range(6))


def test_periods():
    assert kpis.week_start(date(2026, 3, 29)) == date(2026, 3, 23)
    assert kpis.month_end(date(2026, 2, 10)) == date(2026, 2, 28)
    assert kpis.month_end(date(2026, 12, 31)) == date(2026, 12, 31)
    assert kpis.previous_month(date(2026, 1, 15)) == date(2025, 12, 1)


def _step(name: str, kind: str) -> StepSpec:
    return StepSpec(1, name, "", kind, timedelta(days=1), True)


def test_milestones_from_step_facts():
    steps = {
        "Contract approved": _step("Contract approved", "contract.approved"),
        "Invoice posted": _step("Invoice posted", "invoice.posted|*billingdocument*.created*"),
        "Payment received": _step("Payment received", "payment.received"),
        "Evidence captured": _step("Evidence captured", "evidence.captured"),
    }
    facts = {
        "crm|contract.approved": {"status": "ok", "first_at": "2026-03-28T10:00:00+00:00", "count": 1},
        # A failed posting does not count; the later successful one (SAP's name for it) does.
        "erp|invoice.posted": {"status": "error", "first_at": "2026-03-29T08:00:00+00:00", "count": 1},
        "erp|sap.s4.billingdocument.created.v1": {
            "status": "ok",
            "first_at": "2026-03-30T09:00:00+00:00",
            "count": 1,
        },
        "bank|payment.received": {"status": "ok", "first_at": "2026-04-29T09:00:00+00:00", "count": 1},
    }
    spans = kpis.milestone_spans(steps, facts)
    assert spans["invoice_cycle"][1] - spans["invoice_cycle"][0] == timedelta(hours=47)  # across the DST change
    assert spans["dso"][1] - spans["dso"][0] == timedelta(days=30)
    assert "evidence" not in spans and "payment_sync" not in spans
    assert kpis.breach_system("", ["crm", "sap-s4"]) == "sap-s4"
    assert kpis.breach_system("bank", ["crm"]) == "bank"
    assert kpis.breach_system("", []) == ""


def test_assumption_values_read_as_people_write_them():
    assert number(Decimal("12.00")) == "12"
    assert number(Decimal("7.50")) == "7.5"
    assert number(Decimal("100")) == "100"
    assert number(Decimal("0.25")) == "0.25"
