import pytest
from django.utils import timezone

from tests.factories import T0, failure, failures_raise, reference_data_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rejected(hours_ago: float, order: str) -> dict:
    record = failure(
        hours=(timezone.now() - T0).total_seconds() / 3600 - hours_ago,
        system="acme-erp",
        code="WF-REJECT",
        message=f"Order {order} rejected by workflow 7",
    )
    record["error"]["type"] = "WorkflowRejection"
    return record


def test_classify_from_the_gap_preview_save_and_the_case_moves(browser_page, live_server, role_user):
    from exceptions.models import Case
    from tests.factories import PASSWORD
    from transactions.services import ingest_source_create

    reference_data_load()
    failures_raise(ingest_source_create(name="erp", actor="system:test"), rejected(1, "4711"), rejected(2, "4712"))
    case = Case.objects.get()
    assert case.category.slug == "unclassified" and case.queue.slug == "triage"
    role_user("manager", username="boss")

    page = browser_page
    page.goto(f"{live_server.url}/taxonomy/gap/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=gap-classify]")
    page.wait_for_selector("[data-testid=classify-form]")
    assert page.input_value("#id_error_code") == "WF-REJECT"
    page.select_option("#id_category", label="Business rule")
    page.click("[data-testid=classify-preview]")
    page.wait_for_selector("[data-testid=classify-summary]")
    assert page.inner_text("[data-testid=preview-gap-matches]") == "2"
    assert page.inner_text("[data-testid=preview-others]") == "0"
    # At 1280 px (Playwright's default width) the form and its preview fit side by side.
    assert page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    page.click("[data-testid=classify-save]")
    page.wait_for_selector("[data-testid=reclassify-form]")
    assert page.inner_text("[data-testid=reclassify-count]") == "1"
    page.click("[data-testid=reclassify-submit]")
    page.wait_for_selector("text=Reclassified 1 open case")

    page.goto(f"{live_server.url}/cases/{case.pk}/")
    assert "Business rule" in page.inner_text("[data-testid=classification]")
    case.refresh_from_db()
    assert case.category.slug == "business_rule" and case.queue.slug == "accounts-receivable"
