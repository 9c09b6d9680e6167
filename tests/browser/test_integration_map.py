"""An integration engineer opens the integration map, picks the days, clicks an interface and lands on its
transactions."""

from datetime import date

import pytest

from tests.factories import PASSWORD, at, canonical, ingest_and_correlate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _record(event_id, system, kind, hours, order):
    return canonical(
        event_id=event_id,
        system=system,
        kind=kind,
        occurred_at=at(hours),
        trace_id=None,
        span_id=None,
        approval=None,
        business_keys={"order": order},
    )


def test_map_interface_click_through_to_its_transactions(browser_page, live_server, role_user, settings):
    from transactions.services import ingest_source_create, interface_map_rebuild

    settings.DASHBOARD_TIME_ZONE = "UTC"
    source = ingest_source_create(name="gateway", actor="system:test")
    ingest_and_correlate(
        source,
        _record("1", "crm", "order.created", 0, "SO-1"),
        _record("2", "erp", "order.posted", 0.5, "SO-1"),
        _record("3", "crm", "order.created", 1, "SO-2"),
        _record("4", "erp", "order.posted", 2, "SO-2"),
        _record("5", "crm", "order.created", 3, "SO-3"),  # never reached the ERP
    )
    interface_map_rebuild(first=date(2026, 5, 18), last=date(2026, 5, 18))
    role_user("integration", username="ines")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "ines")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=nav] a:text-is('Integration map')")
    page.wait_for_url("**/map/")
    page.fill("#id_since", "2026-05-18")
    page.fill("#id_until", "2026-05-18")
    page.click("[data-testid=map-range] button[type=submit]")
    page.wait_for_url("**/map/?**")
    row = page.locator("[data-testid=interface-table] tbody tr[data-interface='crm>erp']")
    assert row.locator("[data-col=volume]").inner_text() == "2"

    # The interface's marker (the first point drawn: interfaces come before systems), hovered then clicked.
    marker = page.locator("[data-testid=map-chart] .scatterlayer .point").first
    marker.wait_for(state="attached")
    box = marker.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url("**/transactions/?interface=**")
    rows = page.locator("[data-testid=transaction-table] tbody tr")
    assert rows.count() == 2
    assert "SO-3" not in page.inner_text("[data-testid=transaction-table]")
