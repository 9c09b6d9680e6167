import json
import urllib.error
import urllib.request

import pytest

from tests.factories import PASSWORD, canonical
from transactions.choices import DeadLetterStatus
from transactions.models import DeadLetter, Event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def post_events(base_url: str, token: str, records: list) -> dict:
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{base_url}/api/v1/events",
        data=json.dumps(records).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_integration_engineer_sets_up_a_source_and_replays_a_repaired_dead_letter(browser_page, live_server, role_user):
    role_user("integration", username="ingrid")
    page = browser_page
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "ingrid")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")

    # A source, then a token for it: shown once, with how to send it.
    page.click("[data-testid=nav] >> text=Ingest sources")
    page.fill("#id_name", "crm-gateway")
    page.fill("#id_description", "Salesforce through MuleSoft")
    page.click("text=Create source")
    page.wait_for_selector("h1:has-text('crm-gateway')")
    detail_url = page.url
    page.fill("#id_label", "prod")
    page.click("text=Create token")
    token = page.input_value("[data-testid=new-token-value]")
    assert token.startswith("clt_")
    assert f"Authorization: Bearer {token}" in page.inner_text("[data-testid=new-token]")
    page.goto(detail_url)
    assert page.locator("[data-testid=new-token]").count() == 0
    assert token not in page.content()
    assert token[:12] in page.inner_text("[data-testid=tokens]")

    # The sender's first record has a bad currency: it lands in the dead-letter store.
    result = post_events(live_server.url, token, [canonical(event_id="browser-1", currency="euro")])
    assert result["accepted"] == 0 and "currency" in result["rejected"][0]["error"]

    page.click("[data-testid=nav] >> text=Dead letters")
    page.click("[data-testid=dead-letters] >> text=currency must be")
    assert "currency must be an ISO 4217 code" in page.inner_text("[data-testid=dead-letter-reason]")
    record = json.loads(page.input_value("#id_raw"))
    assert record["currency"] == "euro"
    page.fill("#id_raw", json.dumps({**record, "currency": "EUR"}, indent=2))
    page.click("[data-testid=repair-replay]")
    page.wait_for_selector(".alert-success:has-text('Replayed: stored as event')")
    assert "replayed" in page.inner_text("[data-testid=dead-letter-status]")

    event = Event.objects.get(event_id="browser-1")
    assert event.currency == "EUR" and event.source.name == "crm-gateway"
    assert DeadLetter.objects.get().status == DeadLetterStatus.REPLAYED
