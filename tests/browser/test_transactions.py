import pytest

from tests.factories import PASSWORD, event, ingest_and_correlate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_by_business_key_then_open_the_timeline(browser_page, live_server, role_user):
    from transactions.reference import process_reference_data_load
    from transactions.services import ingest_source_create

    process_reference_data_load()
    source = ingest_source_create(name="crm", actor="system:test")
    ingest_and_correlate(
        source,
        event("1", "contract.approved", 0, trace="a" * 32, span="1" * 16, contract="C-1001"),
        event("2", "order.created", 1, status="error", contract="C-1001", order="0000012345"),
        event("3", "contract.approved", 0, contract="C-2002"),
    )
    role_user("finance_ops", username="fiona")
    page = browser_page
    page.goto(f"{live_server.url}/transactions/")
    page.fill("#id_username", "fiona")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.fill("#id_business_key", "12345")  # the ERP number without SAP's leading zeros
    page.click("text=Search")
    rows = page.locator("[data-testid=transaction-table] tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    page.wait_for_selector("[data-testid=timeline-chart] .plot-container")
    assert "failed" in page.inner_text("main")
    assert page.locator("[data-testid=event-table] tbody tr.table-danger").count() == 1
    assert "Invoice posted" in page.inner_text("[data-testid=expected-next]")
