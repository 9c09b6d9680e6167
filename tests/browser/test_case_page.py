"""Issue 14 in the browser: the case page (items 3, 10), the timeline (item 4) and auto-resolve (item 5)."""

from datetime import timedelta

import pytest

from tests.factories import PASSWORD, T0, event, failure, failures_raise, ingest_and_correlate, reference_data_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AR = "accounts-receivable"
SCREEN = {"width": 1440, "height": 900}


class Clicks:
    """Every click or key the user makes, counted."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def click(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)


def log_in(page, live_server, path: str, username: str) -> None:
    page.set_viewport_size(SCREEN)
    page.goto(f"{live_server.url}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


@pytest.fixture
def source(db):
    from transactions.services import ingest_source_create

    reference_data_load()
    return ingest_source_create(name="erp", actor="system:test")


@pytest.fixture
def fay(role_user):
    from exceptions.models import Queue

    user = role_user("finance_ops", username="fay")
    Queue.objects.get(slug=AR).members.add(user)
    return user


def wait_until(page, expression: str) -> None:
    """Poll an expression: page.wait_for_function evaluates a string, which the Content-Security-Policy refuses."""
    for _ in range(100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


def top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


def test_from_a_queue_to_a_resolved_case_in_at_most_four_clicks_without_a_reload(
    browser_page, live_server, source, fay
):
    from exceptions.models import Case

    failures_raise(source, *(failure(hours=h) for h in range(12)))  # a case with a long list of occurrences
    case = Case.objects.get()
    page = browser_page
    log_in(page, live_server, f"/queues/{AR}/", "fay")
    page.wait_for_selector(f"a[href='/cases/{case.pk}/']")
    clicks = Clicks(page)

    clicks.click(f"a[href='/cases/{case.pk}/']")
    page.wait_for_selector("[data-testid=linked-timeline] .plot-container")
    # Why it failed, without scrolling: category, rule, message, and the failing step of the latest transaction.
    why = page.inner_text("[data-testid=classification]")
    assert "Business rule" in why and "Credit block" in why and "Credit check failed for SO" in why
    assert "V1/154" in page.inner_text("[data-testid=failing-step]")
    for testid in ("classification", "failing-step", "linked-timeline", "resolve-form", "case-history"):
        assert top(page, f"[data-testid={testid}]") < SCREEN["height"], testid

    page.evaluate("window.__same_page = true")
    page.evaluate("document.querySelector('[data-testid=occurrences]').open = true")  # a page long enough to scroll
    page.mouse.wheel(0, 120)
    wait_until(page, "window.scrollY > 0")
    scrolled = page.evaluate("window.scrollY")

    clicks.click("[data-testid=assign-me-form] button")
    page.wait_for_selector("[data-testid=case-history] >> text=assigned to fay")
    clicks.click("[data-testid=resolve-button]")
    page.wait_for_selector("[data-testid=case-message] >> text=is now resolved")

    assert clicks.count <= 4, clicks.count
    case.refresh_from_db()
    assert case.status == "resolved" and case.assignee == fay
    assert page.evaluate("window.__same_page") is True  # no reload: htmx swapped the fragment in place
    assert page.evaluate("window.scrollY") == scrolled
    assert "resolved" in page.inner_text("[data-testid=case-status]")
    assert page.inner_text("[data-testid=case-assignee]") == "fay"
    assert "case.resolved" in page.inner_text("[data-testid=case-history]")


def test_case_page_is_short_and_puts_what_matters_first(browser_page, live_server, source, fay):
    from exceptions.models import Case

    failures_raise(source, *(failure(hours=h) for h in range(25)))
    case = Case.objects.get()
    page = browser_page
    log_in(page, live_server, f"/cases/{case.pk}/", "fay")
    page.wait_for_selector("[data-testid=linked-timeline] .plot-container")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2 * SCREEN["height"], height  # was about 4,300 px with history at the bottom
    assert page.locator("[data-testid=linked-timeline] .plot-container").count() == 1  # one timeline drawn
    assert not page.locator("[data-testid=occurrence-table]").is_visible()  # collapsed

    # Other transactions' timelines on demand.
    page.click("[data-testid=show-timeline] >> nth=0")
    wait_until(page, "document.querySelectorAll('[data-testid=linked-timeline] .plot-container').length == 2")

    # Occurrences: ten per page, the next page swapped in place.
    page.click("[data-testid=occurrences] summary")
    assert page.locator("[data-testid=occurrence-table] tbody tr").count() == 10
    page.click("[data-testid=older-occurrences]")
    page.wait_for_selector("text=page 2 of 3")
    assert page.locator("[data-testid=occurrence-table] tbody tr").count() == 10

    # A comment in place: the activity stream shows it at the top, the form is empty again.
    page.fill("#id_comment_body", "asked the credit desk")
    page.click("[data-testid=comment-form] button[type=submit]")
    page.wait_for_selector("[data-testid=case-history] >> text=asked the credit desk")
    first = page.locator("[data-testid=case-history] tbody tr[data-source=activity]").first.inner_text()
    assert "asked the credit desk" in first
    assert page.input_value("#id_comment_body") == ""


def retried_order(source) -> int:
    """Order to cash over eleven days; the ERP's first attempt at the sales order failed, a retry a day later worked."""
    from transactions.models import Transaction

    records = [
        event("1", "contract.approved", 0, contract="C-7"),
        event("2", "order.create", 24, status="error", contract="C-7", order="SO-7"),
        event("3", "order.created", 48, contract="C-7", order="SO-7"),
        event("4", "invoice.posted", 72, order="SO-7", invoice="INV-7"),
        event("5", "payment.received", 240, invoice="INV-7"),
        event("6", "evidence.captured", 264, invoice="INV-7"),
    ]
    for record in records:
        record["system"] = "sap-s4" if record["kind"].startswith(("order", "invoice")) else "salesforce-crm"
        record["duration_ms"] = 250
        if record["kind"] == "contract.approved":
            record["approval"] = {"actor": "j.doe", "decision": "approved", "step": "deal-desk"}
        ingest_and_correlate(source, record, now=T0 + timedelta(days=12))
    return Transaction.objects.get(keys__value="C-7").pk


def test_a_multi_day_timeline_is_readable_and_a_recovered_transaction_says_so(browser_page, live_server, source, fay):
    txn_id = retried_order(source)
    page = browser_page
    log_in(page, live_server, f"/transactions/{txn_id}/", "fay")
    page.wait_for_selector("[data-testid=timeline-chart] .plot-container")
    assert "recovered" in page.inner_text("main h1 ~ span, main .badge")
    assert page.locator("[data-testid=expected-next]").count() == 0  # no expected step after a recovery
    # Spans of 250 ms in an eleven-day transaction are bars you can see and point at.
    widths = page.eval_on_selector_all(
        "[data-testid=timeline-chart] .bars path", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert len(widths) == 6 and min(widths) >= 8, widths
    legend = page.eval_on_selector("[data-testid=timeline-chart] .legend", "e => e.textContent")
    assert "failed step" in legend and "approval" in legend
    # The failed step's marker is a red ✕; the approval a star.
    fills = page.eval_on_selector_all(
        "[data-testid=timeline-chart] .scatterlayer .trace .point", "els => els.map(e => e.style.fill)"
    )
    assert "rgb(224, 49, 49)" in fills, fills
    assert page.locator("[data-testid=timeline-chart] .annotation-text", has_text="⋯").count() >= 3
    # Every event is on the path of a sequential transaction: none is singled out as "critical".
    assert page.locator("[data-testid=event-table] .badge", has_text="critical").count() == 0
    assert page.locator("[data-testid=event-table] .badge", has_text="made good").count() == 1


def test_a_case_whose_transaction_recovered_is_resolved_with_the_reason(browser_page, live_server, source, fay):
    from exceptions.models import Case

    records = [event("1", "contract.approved", 0, contract="C-9"), failure(hours=24, contract="C-9", order="SO-9")]
    failures_raise(source, *records)
    case = Case.objects.get()
    assert case.status == "open"
    later = [
        event("3", "order.created", 48, contract="C-9", order="SO-9"),
        event("4", "invoice.posted", 72, order="SO-9", invoice="INV-9"),
        event("5", "payment.received", 240, invoice="INV-9"),
        event("6", "evidence.captured", 264, invoice="INV-9"),
    ]
    for record in later:
        record["system"] = "sap-s4"
        record["approval"] = None
        ingest_and_correlate(source, record)
    # Correlation committed and announced the transaction; the task after it resolved the case.
    case.refresh_from_db()
    assert case.status == "resolved"

    page = browser_page
    log_in(page, live_server, f"/cases/{case.pk}/", "fay")
    page.wait_for_selector("[data-testid=case-history]")
    assert "resolved" in page.inner_text("[data-testid=case-status]")
    history = page.inner_text("[data-testid=case-history]")
    assert "system:recovery" in history and "every affected transaction completed after the failure" in history
    assert "recovered" in page.inner_text("[data-testid=linked-transaction]")
