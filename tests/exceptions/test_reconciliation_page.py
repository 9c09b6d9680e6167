"""The reconciliation page: who may read it, figures counted by hand, every figure's drill-down returning exactly the
rows it counts, formula-safe CSV downloads, and the ROI dashboard's manual reconciliation avoided."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from exceptions.models import ReconciliationDaily, ReconciliationDirtyDay, ReconciliationResult
from exceptions.selectors import reconciled_transaction_count, reconciled_transactions_in, reconciliation_match_rates
from exceptions.selectors.reconciliation_dashboard import BY, reconciliation_dashboard, reconciliation_match_rates_all
from exceptions.services import reconcile_transactions, reconciliation_rollups_refresh
from slas.services.assumptions import roi_assumption_set
from tests.exceptions.reconciliation_data import build_store
from tests.factories import ingest_and_correlate
from transactions.services import ingest_source_create
from transactions.services.interfaces import day_bounds, local_day

pytestmark = pytest.mark.django_db
PAGE = "/reconciliation/"


@pytest.fixture
def store(reference):
    return build_store()


@pytest.fixture
def ops(client, role_user):
    client.force_login(role_user("finance_ops"))
    return client


def rows_by(response, by: str) -> dict[str, dict]:
    return {row["label"]: row for row in response.context["board"].groups[by]}


@pytest.mark.parametrize(
    ("roles", "status"), [(("finance_ops",), 200), (("manager",), 200), (("compliance",), 200), (("integration",), 403)]
)
def test_who_may_read_the_page_and_its_drill_down(client, role_user, roles, status, store):
    client.force_login(role_user(*roles))
    assert client.get(PAGE).status_code == status
    assert client.get(reverse("reconciliation-drill")).status_code == status
    nav = client.get("/").content.decode()
    assert ('href="/reconciliation/"' in nav) == (status == 200)


def test_anonymous_is_sent_to_login(client):
    assert client.get(PAGE)["Location"].startswith("/accounts/login/")


def test_the_page_is_read_only(ops, store):
    assert ops.post(PAGE).status_code == 405
    assert ops.post(reverse("reconciliation-drill")).status_code == 405


def test_figures_as_counted_by_hand(ops, store):
    response = ops.get(PAGE)
    by_rule = rows_by(response, "rule")
    amount, entity, unique = (
        by_rule["Contract amount vs invoice"],
        by_rule["CRM entity vs company code"],
        by_rule["Invoice number once"],
    )
    # a, c, d agree on the amount; b was invoiced 50.00 more; e's invoice has not arrived.
    assert (amount["matched"], amount["mismatched"], amount["incomplete"]) == (3, 1, 1)
    assert amount["amount_at_stake"] == Decimal("50.00") and amount["match_rate"] == 0.75
    # d is booked in DE01's company code although the CRM says US01; e has neither side.
    assert (entity["matched"], entity["mismatched"], entity["incomplete"]) == (3, 1, 1)
    # c and d both hold INV-3.
    assert (unique["matched"], unique["mismatched"]) == (2, 2)
    by_entity = rows_by(response, "entity")
    assert by_entity["US01"]["mismatched"] == 3 and by_entity["DE01"]["mismatched"] == 1
    board = response.context["board"]
    assert board.totals["matched"] == 8 and board.totals["mismatched"] == 4
    # Open mismatches, the largest amount at stake first: a duplicate puts its whole amount at stake (d's 700.00).
    assert board.open_total == 4
    amounts = [r.amount_at_stake for r in board.open_mismatches]
    known = [a for a in amounts if a is not None]
    assert amounts[: len(known)] == sorted(known, reverse=True) and known[0] == Decimal("700.00")  # none last
    assert store.txns["b"] in {r.txn_id for r in board.open_mismatches}
    html = response.content.decode()
    assert "Match rate by rule" in html and "Match rate by week" in html and 'class="cl-figure"' in html


def test_every_figure_drills_down_to_exactly_the_rows_it_counts(ops, store):
    # From the rollup (the other tests read the store's days before their refresh, from the results).
    reconciliation_rollups_refresh()
    assert not ReconciliationDirtyDay.objects.exists()
    board = ops.get(PAGE).context["board"]
    checked = 0
    for by in BY:
        assert board.groups[by], by
        for row in board.groups[by]:
            for status, url in row["links"].items():
                drill = ops.get(url)
                assert drill.status_code == 200
                assert drill.context["total"] == row[status], (by, row["label"], status, url)
                assert {r.status for r in drill.context["rows"]} <= {status}
                checked += 1
            assert ops.get(row["url"]).context["total"] == row["total"]
            assert ops.get(row["decided_url"]).context["total"] == row["matched"] + row["mismatched"]
    assert checked >= 4 * len(BY)
    # b's amount mismatch: exactly its transaction, linked to the transaction page.
    amount = next(r for r in board.groups["rule"] if r["label"] == "Contract amount vs invoice")
    drill = ops.get(amount["links"]["mismatched"])
    assert [r.txn_id for r in drill.context["rows"]] == [store.txns["b"]]
    assert f'href="/transactions/{store.txns["b"]}/"' in drill.content.decode()
    # Totals and the open mismatches per currency.
    assert ops.get(board.totals["mismatched_url"]).context["total"] == board.totals["mismatched"]
    assert ops.get(board.totals["open_url"]).context["total"] == board.open_total
    for c in board.open_at_stake:
        assert ops.get(c["url"]).context["total"] == c["count"]


def test_an_empty_entity_drills_to_the_results_without_one(ops, store):
    # e's contract names no entity; "-" stands for empty, as on the other drill-downs.
    empty = rows_by(ops.get(PAGE), "entity")["-"]
    drill = ops.get(empty["url"])
    assert drill.context["total"] == empty["total"] > 0
    assert {r.entity for r in drill.context["rows"]} == {""}


def test_a_bad_filter_shows_its_error_and_no_rows(ops, store):
    drill = ops.get(reverse("reconciliation-drill"), {"occurred_since": "yesterday"})
    assert drill.status_code == 200 and drill.context["total"] == 0
    assert "occurred_since" in drill.content.decode()


def test_csv_downloads_are_formula_safe_and_audited(ops, store):
    # A supplier's invoice number is text from outside: one that a spreadsheet would run as a formula.
    ReconciliationResult.objects.filter(rule=store.duplicate_rule).update(left_value='=HYPERLINK("http://x","y")')
    store.amount_rule.name = "+cmd|' /C calc'!A0"
    store.amount_rule.save(update_fields=["name"])
    before = AuditEntry.objects.filter(action="dashboard.exported").count()
    for table in [*BY, "open_mismatches"]:
        response = ops.get(PAGE, {"format": "csv", "table": table})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        cells = [c for row in csv.reader(io.StringIO(b"".join(response.streaming_content).decode())) for c in row]
        assert cells and not [c for c in cells if re.match(r"[=+@\t\r]", c) or re.match(r"-[^0-9]", c)], table
    rule_csv = b"".join(ops.get(PAGE, {"format": "csv", "table": "rule"}).streaming_content).decode()
    assert "'+cmd|' /C calc'!A0" in rule_csv
    drill = ops.get(reverse("reconciliation-drill"), {"rule": store.duplicate_rule.pk, "format": "csv"})
    text = b"".join(drill.streaming_content).decode()
    assert "'=HYPERLINK(" in text and len(list(csv.reader(io.StringIO(text)))) == 1 + 4
    assert AuditEntry.objects.filter(action="dashboard.exported").count() == before + len(BY) + 2
    assert AuditEntry.objects.filter(action="dashboard.drill_exported").exists()
    assert ops.get(PAGE, {"format": "csv", "table": "nope"}).status_code == 404


def test_roi_counts_manual_reconciliation_avoided_with_its_editable_assumption(client, role_user, store):
    client.force_login(role_user("manager"))
    page = client.get("/roi/")
    board = page.context["board"]
    # Only a agrees under every rule (b: amount, c: invoice number, d: entity and number, e: incomplete).
    assert board.reconciliation["reconciled"] == 1
    assert board.reconciliation["hours"] == Decimal("0.2")  # 1 x 12 minutes
    html = page.content.decode()
    assert 'data-testid="assumption-minutes_per_reconciliation"' in html
    assert "Manual reconciliation avoided: transactions whose every reconciliation result" in html
    roi_assumption_set(key="minutes_per_reconciliation", value=Decimal("90"), actor="u:test", version=0)
    assert client.get("/roi/").context["board"].reconciliation["hours"] == Decimal("1.5")
    csv_text = b"".join(client.get("/roi/", {"format": "csv", "table": "reconciliation"}).streaming_content).decode()
    assert csv_text.splitlines()[1] == "1,90.00,1.5"


def test_the_dashboard_selector_reads_a_period(store):
    today = local_day(timezone.now())
    assert reconciliation_dashboard(first=today - timedelta(days=2), last=today).groups["rule"] == []


def _folds_as_the_results(first, last) -> None:
    since, until = day_bounds(first, last)
    folded = reconciliation_match_rates_all(first=first, last=last)
    for by in BY:
        assert folded[by] == reconciliation_match_rates(by=by, since=since, until=until), by
    assert reconciled_transactions_in(first=first, last=last) == reconciled_transaction_count(since=since, until=until)


def test_the_rollup_counts_as_the_results_do_before_and_after_its_refresh_and_a_late_event(store):
    today = local_day(timezone.now())
    first, last = today - timedelta(days=30), today
    # Reconciling marked the store's days dirty: until the refresh the page reads them from the results.
    store_days = set(ReconciliationDirtyDay.objects.values_list("day", flat=True))
    assert store_days and not ReconciliationDaily.objects.exists()
    _folds_as_the_results(first, last)
    assert reconciled_transactions_in(first=first, last=last) == 1

    assert reconciliation_rollups_refresh() > 0
    assert not ReconciliationDirtyDay.objects.exists() and ReconciliationDaily.objects.exists()
    _folds_as_the_results(first, last)

    # b's corrected invoice, two days later: its amount agrees now and b counts as reconciled on the later day. The
    # days of the old and the new result are marked; the rest stays read from the rollup.
    b = store.txns["b"]
    later = ReconciliationResult.objects.get(txn_id=b, rule=store.amount_rule).occurred_at + timedelta(days=2)
    source = ingest_source_create(name="late-correction", actor="u:test")
    correction = {
        "event_id": "b-i-corrected",
        "occurred_at": later.isoformat(),
        "system": "zuora-billing",
        "kind": "invoice.posted",
        "status": "ok",
        "business_keys": {"contract": "C-PAGE-b"},
        "amount": "2000.00",
        "currency": "EUR",
        "entity": "DE01",
    }
    ingest_and_correlate(source, correction, now=later)
    reconcile_transactions([b])
    marked = set(ReconciliationDirtyDay.objects.values_list("day", flat=True))
    # b's days only (its events span six minutes, which may straddle a midnight).
    assert {local_day(later), local_day(later - timedelta(days=2))} <= marked and len(marked) <= 3
    _folds_as_the_results(first, last)
    assert reconciled_transactions_in(first=first, last=last) == 2
    reconciliation_rollups_refresh()
    _folds_as_the_results(first, last)

    # The figures come from the rollup: a change that bypasses the services is not seen until the rebuild command.
    ReconciliationResult.objects.filter(rule=store.amount_rule).update(status="error")
    stale = reconciliation_match_rates_all(first=first, last=last)["rule"]
    assert next(r for r in stale if r["rule_id"] == store.amount_rule.pk)["error"] == 0
    out = io.StringIO()
    call_command("rebuild_reconciliation_rollups", "--since", first.isoformat(), stdout=out)
    assert out.getvalue().startswith("rebuilt 31 days")
    _folds_as_the_results(first, last)
    rows = list(ReconciliationDaily.objects.order_by("day", "rule_id", "left_system", "entity").values())
    call_command("rebuild_reconciliation_rollups", "--since", first.isoformat(), stdout=io.StringIO())
    assert [{**r, "id": 0} for r in rows] == [
        {**r, "id": 0} for r in ReconciliationDaily.objects.order_by("day", "rule_id", "left_system", "entity").values()
    ]
