"""A finance operations user opens /reconciliation/ from the navigation, clicks a mismatch bar of the rule chart and
lands on the transactions behind it, then on one of them."""

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def store():
    from tests.exceptions.reconciliation_data import build_store
    from tests.factories import reference_data_load

    reference_data_load()
    return build_store()


def test_a_mismatch_bar_leads_to_its_transactions(browser_page, live_server, role_user, store):
    page = browser_page
    role_user("finance_ops", username="olga")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=nav] a:text-is('Reconciliation')")
    page.wait_for_url("**/reconciliation/")

    # The rule chart's bars, in the order of the table: the amount rule (position 10) first, one mismatch (b).
    bar = page.locator("[data-testid=chart-rule] .barlayer .point path").first
    bar.wait_for(state="attached")
    box = bar.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url("**/reconciliation/results/**")
    assert "status=mismatched" in page.url and f"rule={store.amount_rule.pk}" in page.url
    links = page.locator("[data-testid=drill-transaction]")
    assert links.count() == int(page.locator("[data-testid=drill-total]").inner_text()) == 1
    assert int(links.first.inner_text().lstrip("#")) == store.txns["b"]
    links.first.click()
    page.wait_for_url(f"**/transactions/{store.txns['b']}/")

    # The table's mismatch numbers lead to the same rows without the chart.
    page.goto(f"{live_server.url}/reconciliation/")
    page.click("[data-testid=mismatched-entity-1]")
    page.wait_for_url("**/reconciliation/results/**")
    total = int(page.locator("[data-testid=drill-total]").inner_text())
    assert total == page.locator("[data-testid=drill-row]").count() > 0
