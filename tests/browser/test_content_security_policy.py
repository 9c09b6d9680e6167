"""Every console page works under the Content-Security-Policy: the browser_page fixture fails a test on any refused
script, style or image, so walking each page an admin can reach (charts drawn, API docs rendered) proves it."""

import pytest

from console.lib.navigation import navigation_for
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_renders_without_a_policy_violation(browser_page, live_server, role_user):
    admin = role_user("admin", username="ada")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    assert "default-src 'self'" in page.evaluate(
        "() => fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=activity-chart] .plot-container")  # plotly.js drew it from charts.js
    urls = [item.url for _, items in navigation_for(admin) for item in items]
    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 200, url
        page.wait_for_load_state("load")
    page.goto(f"{live_server.url}/slas/")
    page.wait_for_selector("[data-testid=attainment-chart] .plot-container")
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")  # Swagger UI started from its script file
    assert len(urls) >= 15
