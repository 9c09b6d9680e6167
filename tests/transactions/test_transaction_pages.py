import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse

from console.lib.audit import AuditEntry
from console.lib.saved_views import SavedView
from tests.factories import T0, event, ingest_and_correlate
from transactions.models import Transaction
from transactions.views import transactions as transaction_views


@pytest.fixture
def estate(source, processes):
    """Three transactions: an order-to-cash in flight, a failed one, and a procure-to-pay."""
    ingest_and_correlate(
        source,
        event("1", "contract.approved", 0, trace="a" * 32, span="1" * 16, contract="C-1", customer="ACME"),
        event("2", "order.created", 1, trace="a" * 32, span="2" * 16, contract="C-1", order="0000012345"),
        event("3", "contract.approved", 2, contract='=HYPERLINK("x")'),
        event("4", "order.created", 3, status="error", contract='=HYPERLINK("x")'),
        event("5", "purchase_order.created", 4, purchase_order="PO-7"),
    )
    return {t.business_keys.get("contract", ["PO"])[0]: t for t in Transaction.objects.all()}


@pytest.fixture
def processes(db):
    from transactions.reference import process_reference_data_load

    process_reference_data_load()


@pytest.fixture
def reader(client, role_user):
    client.force_login(role_user("finance_ops"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("business_key=12345", ["C-1"]),
        ("business_key=0000012345", ["C-1"]),
        ("business_key=acme", ["C-1"]),
        (f"trace_id={'A' * 32}", ["C-1"]),
        ("status=failed", ['=HYPERLINK("X")']),
        ("has_errors=true", ['=HYPERLINK("X")']),
        ("process=procure-to-pay", ["PO"]),
        ("system=salesforce-crm", ["C-1", '=HYPERLINK("X")', "PO"]),
        ("system=nowhere", []),
    ],
)
def test_api_filters(reader, estate, query, expected):
    response = reader.get(f"/api/v1/transactions/?{query}")
    assert response.status_code == 200
    names = {t.pk: k for k, t in estate.items()}
    assert sorted(names[r["id"]] for r in response.json()["results"]) == sorted(expected)


@pytest.mark.django_db
def test_api_cursor_pagination_and_time_range(reader, estate):
    first = reader.get("/api/v1/transactions/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = reader.get(first["next"]).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 3
    since = (T0 + timedelta(hours=3, minutes=30)).isoformat()
    assert [r["id"] for r in reader.get("/api/v1/transactions/", {"since": since}).json()["results"]] == [
        estate["PO"].pk
    ]
    assert reader.get("/api/v1/transactions/?status=bogus").status_code == 400


@pytest.mark.django_db
def test_api_timeline_and_merged_redirect(reader, estate, source):
    txn = estate["C-1"]
    body = reader.get(f"/api/v1/transactions/{txn.pk}/").json()
    assert body["transaction"]["process"] == "order-to-cash"
    assert [i["kind"] for i in body["items"]] == ["contract.approved", "order.created"]
    assert body["expected_next"]["name"] == "Invoice posted" and body["lanes"] == ["salesforce-crm"]
    assert body["critical_path"] == [i["id"] for i in body["items"]]
    ingest_and_correlate(source, event("9", "invoice.posted", 5, order="O-9", invoice="I-9"))
    newer = Transaction.objects.latest("id")
    ingest_and_correlate(source, event("10", "order.created", 6, order="O-9", contract="C-1"))
    moved = reader.get(f"/api/v1/transactions/{newer.pk}/")
    assert moved.status_code == 301 and moved["Location"] == f"/api/v1/transactions/{txn.pk}/"
    assert reader.get("/api/v1/transactions/999999/").status_code == 404


@pytest.mark.django_db
def test_transactions_need_login(client, estate):
    assert client.get("/api/v1/transactions/").status_code == 401
    assert client.get(reverse("transaction-list")).status_code == 302


@pytest.mark.django_db
def test_list_page_filters_and_csv_is_formula_safe(reader, estate):
    page = reader.get(reverse("transaction-list"), {"business_key": "C-1"}).content.decode()
    assert f'href="/transactions/{estate["C-1"].pk}/"' in page and "PO-7" not in page
    response = reader.get(reverse("transaction-list"), {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "id" and len(rows) == 4
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    assert AuditEntry.objects.filter(action="transactions.exported").exists()


@pytest.mark.django_db
def test_list_page_pages_with_a_keyset_cursor(reader, estate, monkeypatch):
    monkeypatch.setattr(transaction_views, "TRANSACTION_PAGE", 2)
    first = reader.get(reverse("transaction-list"))
    last = first.context["transactions"][-1]
    # The cursor keeps its format (last activity, then id), so that links bookmarked before still open the same page.
    assert first.context["next_cursor"] == f"{last.last_event_at.isoformat()}_{last.pk}"
    second = reader.get(reverse("transaction-list"), {"cursor": first.context["next_cursor"]})
    assert second.context["next_cursor"] is None
    listed = [t.pk for t in first.context["transactions"] + second.context["transactions"]]
    newest_first = sorted(estate.values(), key=lambda t: (t.last_event_at, t.pk), reverse=True)
    assert listed == [t.pk for t in newest_first]
    assert len(reader.get(reverse("transaction-list"), {"cursor": "garbage"}).context["transactions"]) == 2


@pytest.mark.django_db
def test_saved_views(reader, estate):
    response = reader.post(
        reverse("saved-view-create"), {"page": "transactions", "name": "Failed O2C", "query": "status=failed&cursor=x"}
    )
    view = SavedView.objects.get()
    assert view.query == "status=failed" and response["Location"].endswith("?status=failed")
    page = reader.get(reverse("transaction-list")).content.decode()
    assert "Failed O2C" in page
    reader.post(reverse("saved-view-delete", args=[view.pk]), {"page": "transactions"})
    assert not SavedView.objects.exists()
    assert reader.post(reverse("saved-view-create"), {"page": "nope", "name": "x"}).status_code == 400


@pytest.mark.django_db
def test_detail_page_shows_timeline_and_finds_events(reader, estate):
    txn = estate["C-1"]
    html = reader.get(reverse("transaction-detail", args=[txn.pk])).content.decode()
    assert "data-figure=" in html and "Invoice posted" in html and "critical" in html
    found = reader.get(reverse("transaction-detail", args=[txn.pk]), {"q": "2222222222222222"}).content.decode()
    assert "1 of 2 events" in found
    assert reader.get(reverse("transaction-detail", args=[999999])).status_code == 404


@pytest.mark.django_db
def test_home_dashboard_counts_transactions_by_process(reader, estate):
    html = reader.get(reverse("home")).content.decode()
    assert "Transactions by process and status" in html and "Order to cash" in html
