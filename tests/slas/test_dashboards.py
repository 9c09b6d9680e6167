"""Rollups, the SLA and ROI dashboards, their drill-downs, CSV downloads and who may see and edit what."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from slas import dashboards as selectors
from slas.kpis import local_day
from slas.models import DailyRollup, RoiAssumption, RollupMetric
from slas.services.rollups import rollups_rebuild, rollups_refresh_recent
from slas.tasks import refresh_dashboard_rollups
from tests.factories import PASSWORD
from tests.slas.dashboard_data import build_store, make_clock, make_txn

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings):
    settings.DASHBOARD_TIME_ZONE = "Europe/Berlin"
    # Every fact lies in the three days before the anchor, an hour ago: inside the default 12 weeks, none in the future.
    anchor = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    data = build_store(anchor)
    today = local_day(timezone.now(), "Europe/Berlin")
    rollups_rebuild(first=today - timedelta(days=10), last=today)
    return data


def _signed_in(client, role_user, role):
    user = role_user(role)
    assert client.login(username=user.username, password=PASSWORD)
    return user


def _total(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return int(response.content.decode().split('data-testid="drill-total">')[1].split("<")[0])


def _period():
    today = local_day(timezone.now(), "Europe/Berlin")
    return today - timedelta(days=83), today, today


# ---- Rollups --------------------------------------------------------------------------------------------------------


def test_rebuild_replaces_days_and_is_idempotent(store):
    today = local_day(timezone.now(), "Europe/Berlin")
    before = sorted(DailyRollup.objects.values_list("day", "metric", "count", "good", "bad", "total_seconds"))
    assert before
    rollups_rebuild(first=today - timedelta(days=10), last=today)
    rollups_rebuild(first=today - timedelta(days=10), last=today)
    after = sorted(DailyRollup.objects.values_list("day", "metric", "count", "good", "bad", "total_seconds"))
    assert after == before
    clocks = DailyRollup.objects.filter(metric=RollupMetric.SLA_CLOCKS)
    assert sum(r.good for r in clocks) == 2 and sum(r.bad for r in clocks) == 2


def test_refresh_task_and_command_keep_recent_days_current(store):
    today = local_day(timezone.now(), "Europe/Berlin")
    DailyRollup.objects.all().delete()
    # (an eager result: disable_sync_subtasks, as Celery's process-wide "inside a task" flag may be left set by a thread
    # of an earlier test in this process running an eager task)
    assert refresh_dashboard_rollups.delay().get(disable_sync_subtasks=False) >= 1
    assert set(DailyRollup.objects.values_list("day", flat=True)) <= {today, today - timedelta(days=1)}
    out = io.StringIO()
    call_command("rebuild_rollups", "--since", (today - timedelta(days=10)).isoformat(), stdout=out)
    assert "rebuilt 11 days" in out.getvalue()
    assert DailyRollup.objects.filter(day__lt=today - timedelta(days=1)).exists()
    assert rollups_refresh_recent(now=timezone.now()) >= 1


def test_a_day_crossing_dst_counts_by_local_day(settings, db):
    settings.DASHBOARD_TIME_ZONE = "Europe/Berlin"
    data = build_store(datetime(2026, 3, 28, 9, tzinfo=UTC))
    # Met at 22:30 UTC on 29 March: already 30 March in Berlin (summer time began that night).
    txn = make_txn(
        process=data.payment.process,
        started_at=datetime(2026, 3, 29, 20, tzinfo=UTC),
        last_event_at=datetime(2026, 3, 29, 22, 30, tzinfo=UTC),
    )
    make_clock(
        definition=data.payment,
        txn=txn,
        status="met",
        started_at=txn.started_at,
        closed_at=datetime(2026, 3, 29, 22, 30, tzinfo=UTC),
        elapsed=600,
    )
    rollups_rebuild(first=date(2026, 3, 23), last=date(2026, 3, 31))
    met = {r.day: r.good for r in DailyRollup.objects.filter(metric=RollupMetric.SLA_CLOCKS, definition=data.payment)}
    assert met[date(2026, 3, 30)] == 1
    # The week of 23-29 March (167 hours long) holds the clocks of the anchor days, the new one is in the next week.
    board = selectors.sla_dashboard(first=date(2026, 3, 23), last=date(2026, 3, 31), today=date(2026, 3, 31))
    weeks = {(r["definition"].slug, r["week"]): (r["met"], r["breached"]) for r in board.weekly}
    assert weeks[("payment-synced", date(2026, 3, 30))] == (1, 0)
    assert weeks[("invoice-after-contract", date(2026, 3, 23))] == (1, 2)


# ---- SLA dashboard: figures and drill-downs -------------------------------------------------------------------------


def test_sla_figures_by_hand(store):
    first, last, today = _period()
    board = selectors.sla_dashboard(first=first, last=last, today=today)
    by_entity = {(r["definition"].slug, r["entity"]): (r["met"], r["breached"]) for r in board.by_entity}
    assert by_entity == {
        ("invoice-after-contract", "DE01"): (1, 1),
        ("invoice-after-contract", "FR01"): (0, 1),
        ("payment-synced", "DE01"): (1, 0),
    }
    assert {r["step"]: (r["breached"], r["share"]) for r in board.worst_steps} == {"Invoice posted": (2, 100.0)}
    assert {r["system"]: r["breached"] for r in board.worst_systems} == {"sap-s4": 1, "salesforce-crm": 1}
    buckets = {(r["definition"].slug, r["from_percent"]): r["count"] for r in board.distribution}
    assert buckets == {("invoice-after-contract", 60): 1, ("invoice-after-contract", 100): 2, ("payment-synced", 50): 1}
    assert sum(r["breached"] for r in board.breaches_daily) == 2
    assert [c.pk for c in selectors.at_risk_clocks()] == [store.clocks["risk"].pk]


def test_every_sla_drill_down_returns_exactly_the_counted_clocks(store, client, role_user):
    _signed_in(client, role_user, "manager")
    first, last, today = _period()
    board = selectors.sla_dashboard(first=first, last=last, today=today)
    checks = [(r["url"], r["met"] + r["breached"]) for r in board.weekly + board.by_entity]
    checks += [(r["breached_url"], r["breached"]) for r in board.weekly]
    checks += [(r["url"], r["breached"]) for r in board.breaches_daily + board.worst_systems + board.worst_steps]
    checks += [(r["url"], r["count"]) for r in board.distribution]
    checks += [(r["current_url"], r["current_closed"]) for r in board.comparison]
    assert len(checks) >= 12
    for url, expected in checks:
        assert _total(client, url) == expected, url
    # The breach bar of t2's day lists t2's transaction, and nothing else.
    day_of_t2 = local_day(store.clocks["t2"].breached_at, "Europe/Berlin")
    bar = next(r for r in board.breaches_daily if r["day"] == day_of_t2)
    page = client.get(bar["url"]).content.decode()
    assert reverse("transaction-detail", args=[store.txns["t2"].pk]) in page
    assert reverse("transaction-detail", args=[store.txns["t1"].pk]) not in page


def test_sla_page_renders_figures_with_drill_links(store, client, role_user):
    _signed_in(client, role_user, "manager")
    response = client.get(reverse("sla-dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "data-figure=" in page and "cdn" not in page.lower()
    assert "/slas/drill/clocks/?" in page and 'data-testid="at-risk-table"' in page
    assert "js/drilldown" in page


# ---- ROI dashboard --------------------------------------------------------------------------------------------------


def test_roi_figures_by_hand(store):
    first, last, _ = _period()
    board = selectors.roi_dashboard(first=first, last=last)
    assert sum(h["auto_correlated"] for h in board.hours) == 2  # t1 and t2 span two systems
    assert sum(h["auto_classified"] for h in board.hours) == 5  # 6 occurrences, one matched no rule
    assert board.totals["hours"] == Decimal("1.3")  # 2 x 15 min + 5 x 10 min = 80 min
    touchless = {r["process"]: (r["completed"], r["touchless"]) for r in board.touchless}
    assert touchless == {"order-to-cash": (2, 1), "payment-application": (1, 1)}
    assert board.totals["touchless_rate"] == pytest.approx(200 / 3)
    assert [(r["queue"], r["resolved"], r["mean_hours"], r["p90_hours"]) for r in board.resolve] == [
        ("billing", 1, 6.0, 6.0)
    ]
    assert [(r["succeeded"], r["failed"], r["rate"]) for r in board.replays] == [(1, 1, 50.0)]
    cycle = [r for r in board.milestones["invoice_cycle"]]
    assert sum(r["count"] for r in cycle) == 2
    dso = board.milestones["dso"]
    assert [r["mean_days"] for r in dso] == [1.8]  # 42 hours
    assert [r["p50_hours"] for r in board.milestones["payment_sync"]] == [2.0]
    assert sum(r["captured"] for r in board.evidence) == 2 and sum(r["within"] for r in board.evidence) == 2
    by_category = {}
    for r in board.exceptions_by_category:
        by_category[r["category"]] = by_category.get(r["category"], 0) + r["count"]
    assert by_category == {"business_rule": 4, "control": 2}


def test_every_roi_drill_down_returns_exactly_the_counted_rows(store, client, role_user):
    _signed_in(client, role_user, "manager")
    first, last, _ = _period()
    board = selectors.roi_dashboard(first=first, last=last)
    checks = [(h["correlated_url"], h["auto_correlated"]) for h in board.hours]
    checks += [(h["classified_url"], h["auto_classified"]) for h in board.hours]
    for r in board.touchless:
        checks += [
            (r["url"], r["completed"]),
            (r["touchless_url"], r["touchless"]),
            (r["with_case_url"], r["with_case"]),
        ]
    checks += [(r["url"], r["count"]) for r in board.exceptions_by_category + board.exceptions_by_system]
    checks += [(r["url"], r["resolved"]) for r in board.resolve]
    checks += [(r["url"], r["succeeded"] + r["failed"]) for r in board.replays]
    checks += [(r["url"], r["count"]) for rows in board.milestones.values() for r in rows]
    checks += [(r["url"], r["captured"]) for r in board.evidence]
    assert len(checks) >= 15
    for url, expected in checks:
        assert _total(client, url) == expected, url


def test_editing_an_assumption_is_audited_and_changes_the_figure(store, client, role_user):
    _signed_in(client, role_user, "manager")
    first, last, _ = _period()
    url = reverse("roi-assumption-edit", args=["evidence_window_hours"])
    response = client.post(url, {"value": "12", "version": "0"})
    assert response.status_code == 302
    assumption = RoiAssumption.objects.get(key="evidence_window_hours")
    assert assumption.value == Decimal("12") and assumption.version == 1
    entry = AuditEntry.objects.filter(action="roi_assumption.created").get()
    assert entry.after == {"key": "evidence_window_hours", "value": "12", "unit": "hours"}
    board = selectors.roi_dashboard(first=first, last=last)
    assert sum(r["within"] for r in board.evidence) == 1  # t1's evidence came 24 h after posting
    # A second editor who still sees version 0 is refused, and nothing changes.
    client.post(url, {"value": "48", "version": "0"})
    assert RoiAssumption.objects.get(key="evidence_window_hours").value == Decimal("12")
    client.post(url, {"value": "36", "version": "1"})
    assumption.refresh_from_db()
    assert assumption.value == Decimal("36") and assumption.version == 2
    assert AuditEntry.objects.filter(action="roi_assumption.updated").get().before["value"] == "12.00"
    page = client.get(reverse("roi-dashboard")).content.decode()
    assert 'value="36.00"' in page
    assert client.post(url, {"value": "-1", "version": "2"}).status_code == 302
    assert RoiAssumption.objects.get(key="evidence_window_hours").value == Decimal("36")


# ---- Access -------------------------------------------------------------------------------------------------------


def test_roles(store, client, role_user):
    edit = reverse("roi-assumption-edit", args=["minutes_per_correlation"])
    _signed_in(client, role_user, "finance_ops")
    assert client.get(reverse("sla-dashboard")).status_code == 403
    assert client.get(reverse("roi-dashboard")).status_code == 403
    assert client.post(edit, {"value": "1", "version": "0"}).status_code == 403
    client.logout()
    _signed_in(client, role_user, "compliance")
    page = client.get(reverse("roi-dashboard"))
    assert page.status_code == 200 and "roi-assumption-edit" not in page.content.decode()
    assert 'action="/roi/assumptions/' not in page.content.decode()
    assert client.get(reverse("sla-dashboard")).status_code == 200
    assert client.post(edit, {"value": "1", "version": "0"}).status_code == 403
    assert not RoiAssumption.objects.exists()
    client.logout()
    _signed_in(client, role_user, "manager")
    nav = client.get(reverse("home")).content.decode()
    assert 'href="/slas/"' in nav and 'href="/roi/"' in nav


# ---- CSV ------------------------------------------------------------------------------------------------------------


def test_every_table_downloads_as_formula_safe_csv(store, client, role_user):
    _signed_in(client, role_user, "manager")
    store.invoice.name = '=HYPERLINK("http://evil")'
    store.invoice.save()
    for page, tables in (
        (
            "sla-dashboard",
            ["weekly", "entity", "breaches", "at_risk", "distribution", "systems", "steps", "comparison"],
        ),
        (
            "roi-dashboard",
            [
                "hours",
                "touchless",
                "exceptions_category",
                "exceptions_system",
                "resolve",
                "replays",
                "evidence",
                "invoice_cycle",
                "payment_sync",
                "dso",
            ],
        ),
    ):
        for table in tables:
            response = client.get(reverse(page), {"format": "csv", "table": table})
            assert response.status_code == 200, table
            assert response["Content-Type"].startswith("text/csv")
    weekly = b"".join(client.get(reverse("sla-dashboard"), {"format": "csv", "table": "weekly"}).streaming_content)
    cells = [c for row in csv.reader(io.StringIO(weekly.decode())) for c in row]
    assert '\'=HYPERLINK("http://evil")' in cells and not any(c.startswith("=") for c in cells)
    drill = client.get(reverse("roi-drill-cases"), {"category": "control", "format": "csv"})
    cells = [c for row in csv.reader(io.StringIO(b"".join(drill.streaming_content).decode())) for c in row]
    assert "'=HYPERLINK(1)" in cells
    assert AuditEntry.objects.filter(action="dashboard.exported").count() == 19  # 18 tables, weekly twice
    assert client.get(reverse("sla-dashboard"), {"format": "csv", "table": "nope"}).status_code == 404


@pytest.mark.django_db
def test_rollup_totals_sum_per_dimension_and_period_in_the_database():
    def row(day: date, entity: str, count: int, good: int, samples: list[int]) -> DailyRollup:
        return DailyRollup(
            day=day,
            metric=RollupMetric.SLA_CLOCKS,
            entity=entity,
            count=count,
            good=good,
            bad=count - good,
            total_seconds=sum(samples),
            samples=samples,
        )

    # Sunday 2026-03-29 and Monday 2026-03-30 are in different ISO weeks; 2026-04-01 in another month.
    DailyRollup.objects.bulk_create(
        [
            row(date(2026, 3, 29), "DE01", 3, 2, [10, 20, 30]),
            row(date(2026, 3, 30), "DE01", 1, 1, [40]),
            row(date(2026, 3, 30), "FR01", 2, 0, []),
            row(date(2026, 4, 1), "DE01", 5, 5, [50]),
            DailyRollup(day=date(2026, 3, 30), metric=RollupMetric.EXCEPTIONS, count=99),  # another metric
        ]
    )
    span = {"metric": RollupMetric.SLA_CLOCKS, "first": date(2026, 3, 1), "last": date(2026, 3, 31)}
    assert selectors.rollup_totals(**span) == {(): {"count": 6, "good": 3, "bad": 3, "total_seconds": 100}}
    weekly = selectors.rollup_totals(**span, by=("entity",), period="week")
    assert weekly == {
        ("DE01", date(2026, 3, 23)): {"count": 3, "good": 2, "bad": 1, "total_seconds": 60},
        ("DE01", date(2026, 3, 30)): {"count": 1, "good": 1, "bad": 0, "total_seconds": 40},
        ("FR01", date(2026, 3, 30)): {"count": 2, "good": 0, "bad": 2, "total_seconds": 0},
    }
    monthly = selectors.rollup_totals(**{**span, "last": date(2026, 4, 30)}, period="month")
    assert {key: m["count"] for key, m in monthly.items()} == {(date(2026, 3, 1),): 6, (date(2026, 4, 1),): 5}
    assert selectors.rollup_totals(**span, by=("entity",), bad__gt=0) == {
        ("DE01",): {"count": 3, "good": 2, "bad": 1, "total_seconds": 60},
        ("FR01",): {"count": 2, "good": 0, "bad": 2, "total_seconds": 0},
    }
    samples = selectors.rollup_samples(**span, by=("entity",), period="week")
    assert samples == {("DE01", date(2026, 3, 23)): [10, 20, 30], ("DE01", date(2026, 3, 30)): [40]}
    assert selectors.rollup_samples(**span) == {(): [10, 20, 30, 40]}
