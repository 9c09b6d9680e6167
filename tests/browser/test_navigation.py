import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPECTED_SECTIONS = {
    "finance_ops": ["Overview", "Operations"],
    "manager": ["Overview", "Operations", "Management"],
    "compliance": ["Overview", "Operations", "Management", "Compliance"],
    "integration": ["Overview", "Operations", "Integration"],
    "admin": ["Overview", "Operations", "Management", "Compliance", "Integration", "Administration"],
}


def test_each_role_logs_in_and_sees_its_navigation(browser_page, live_server, role_user):
    for role in EXPECTED_SECTIONS:
        role_user(role, username=f"{role}-person")
    page = browser_page
    for role, sections in EXPECTED_SECTIONS.items():
        page.goto(f"{live_server.url}/")
        page.fill("#id_username", f"{role}-person")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=nav]")
        shown = page.eval_on_selector_all("[data-section]", "els => els.map(e => e.dataset.section)")
        assert shown[: len(sections)] == sections and len(shown) == len(sections), (role, shown)
        assert role in page.inner_text("[data-testid=current-user]")
        page.wait_for_selector("[data-testid=activity-chart] .plot-container")  # plotly.js really drew the chart
        page.click("text=Sign out")
        page.wait_for_selector("#id_username")


def test_settings_pages_and_the_admin_lead_back_to_the_console(browser_page, live_server, role_user):
    admin = role_user("admin", username="ada")
    admin.is_staff = admin.is_superuser = True  # as create_demo_users makes the administrator
    admin.save()
    page = browser_page
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=nav]")
    nav = page.locator("[data-testid=nav]")
    assert nav.locator("a", has_text="Queue settings").get_attribute("href") == "/queues/manage/"
    assert nav.locator("a:text-is('Queues')").count() == 1  # only the operators' queues keep the name
    for label, landmark in (("Users and groups", "#changelist"), ("API docs", "#swagger-ui .info")):
        nav.locator("a", has_text=label).click()
        page.wait_for_selector(landmark)
        page.click("[data-testid=back-to-console]")
        page.wait_for_selector("[data-testid=nav]")
        assert page.url == f"{live_server.url}/"
