"""A manager opens the SLA dashboard, clicks a breach bar and lands on its transactions; edits an ROI assumption and
sees the figure it drives change."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def store(settings):
    from slas.services.rollups import rollups_rebuild
    from tests.slas.dashboard_data import build_store

    settings.DASHBOARD_TIME_ZONE = "UTC"
    # Mid-month of last month: every fact of the store falls in one month, inside the default 12 weeks.
    today = datetime.now(UTC)
    anchor = (today.replace(day=1) - timedelta(days=1)).replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    data = build_store(anchor)
    rollups_rebuild(first=anchor.date() - timedelta(days=5), last=today.date())
    return data


def test_breach_bar_to_transactions_and_assumption_to_figure(browser_page, live_server, role_user, store):
    page = browser_page
    role_user("manager", username="mia")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=nav] a:text-is('SLAs')")
    page.wait_for_url("**/slas/")

    # The breaches chart: hover a bar, then click it, as a person would.
    bar = page.locator("[data-testid=breaches-chart] .barlayer .point path").first
    bar.wait_for(state="attached")
    box = bar.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url("**/slas/drill/clocks/**")
    assert "status=breached" in page.url
    links = page.locator("[data-testid=drill-transaction]")
    assert links.count() == int(page.locator("[data-testid=drill-total]").inner_text()) == 1
    breached_txns = {store.txns["t2"].pk, store.txns["t3"].pk}
    txn_id = int(links.first.inner_text().lstrip("#"))
    assert txn_id in breached_txns
    links.first.click()
    page.wait_for_url(f"**/transactions/{txn_id}/")

    # ROI: the evidence window drives evidence completeness; 24 h -> 12 h leaves one of two captures inside it.
    page.goto(f"{live_server.url}/roi/")
    month = store.anchor.strftime("%Y-%m")
    cell = page.locator(f"[data-testid=evidence-{month}]")
    assert cell.inner_text().strip() == "100.0 %"
    assert "within 24 h" in page.locator("[data-testid=evidence-chart]").inner_text()
    form = page.locator("[data-testid=assumption-evidence_window_hours] form")
    form.locator("input[name=value]").fill("12")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(f"[data-testid=evidence-{month}]").inner_text().strip() == "50.0 %"
    # Charts below the first screen are drawn one per frame after load: wait for this one's text.
    expect(page.locator("[data-testid=evidence-chart]")).to_contain_text("within 12 h")
    assert "now 12" in page.locator(".alert").first.inner_text()
