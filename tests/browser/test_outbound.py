import pytest

from exceptions.models import ReplayTarget
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_integration_engineer_creates_a_replay_target_and_its_dry_run_shows_the_request(
    browser_page, live_server, role_user
):
    role_user("integration", username="ingrid")
    page = browser_page
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "ingrid")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")

    page.click("[data-testid=nav] >> text=Replay targets")
    page.click("text=New replay target")
    page.fill("#id_system", "sap-s4")
    page.fill("#id_url", "https://erp.example/replay")
    page.fill("#id_auth_header", "Bearer br0wser-s3cret")
    page.fill("#id_business_key_paths", "$.business_keys.invoice\n$.entity")
    page.click("text=Create target")

    # Straight to the dry run: the exact request, its credential masked, nothing sent.
    page.wait_for_selector("[data-testid=dry-run]")
    assert page.inner_text("[data-testid=dry-run-line]") == "POST https://erp.example/replay"
    headers = page.inner_text("[data-testid=dry-run-headers]")
    assert "Authorization\tBearer ••••••••" in headers and "Idempotency-Key" in headers
    assert '"system":"sap-s4"' in page.inner_text("[data-testid=dry-run-body]")
    assert "br0wser-s3cret" not in page.content()
    assert ReplayTarget.objects.get().auth_secret.startswith("fernet:")

    page.click("text=Edit")
    assert "br0wser-s3cret" not in page.content()
    assert page.input_value("#id_auth_header") == ""
