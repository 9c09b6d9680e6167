import pytest

from tests.factories import PASSWORD, failure, failures_raise, reference_data_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AR = "accounts-receivable"


def raise_failures(*records: dict) -> None:
    """Ingest, correlate and classify failures the way the tasks would."""
    from transactions.services import ingest_source_create

    reference_data_load()
    failures_raise(ingest_source_create(name="erp", actor="system:test"), *records)


def log_in(page, live_server, path: str, username: str) -> None:
    page.goto(f"{live_server.url}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


@pytest.fixture
def ops(role_user):
    from exceptions.models import Queue

    raise_failures(
        failure(),
        failure(code="F5/201", message="Posting period 04 2026 is not open", kind="payment.apply", amount="500"),
    )
    user = role_user("finance_ops", username="fay")
    Queue.objects.get(slug=AR).members.add(user)
    return user


def test_a_full_triage_from_queue_to_resolved(browser_page, live_server, ops):
    from exceptions.models import Case, CaseActivity

    page = browser_page
    log_in(page, live_server, "/queues/", "fay")
    page.click(f"[data-testid=queue-table] a[href='/queues/{AR}/']")
    page.wait_for_selector("[data-testid=case-table]")
    assert page.locator("[data-testid=case-table] tbody tr[data-case]").count() == 2
    # Keyboard: j focuses the first (most urgent) row, o opens it.
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_selector("[data-testid=case-title]")
    case = Case.objects.order_by("priority", "-last_seen").first()
    assert page.url.endswith(f"/cases/{case.pk}/")
    assert "Credit block" in page.inner_text("[data-testid=classification]")
    page.wait_for_selector("[data-testid=linked-timeline] .plot-container")  # plotly.js drew the transaction

    page.select_option("#id_assign_assignee", "me")
    page.click("[data-testid=assign-form] button[type=submit]")
    page.wait_for_selector("text=assigned to fay")
    assert page.inner_text("[data-testid=case-assignee]") == "fay"

    page.fill("#id_comment_body", "Credit desk raised the limit; replaying.")
    page.click("[data-testid=comment-form] button[type=submit]")
    page.wait_for_selector("text=Comment added.")

    page.select_option("#id_transition_status", "resolved")
    page.fill("#id_transition_note", "limit raised")
    page.click("[data-testid=transition-form] button[type=submit]")
    page.wait_for_selector("text=is now resolved")

    case.refresh_from_db()
    assert case.status == "resolved" and case.assignee == ops and case.resolved_at is not None
    assert CaseActivity.objects.filter(case=case, kind="comment", actor="user:fay").exists()
    assert "resolved" in page.inner_text("[data-testid=case-status]")
    history = page.inner_text("[data-testid=case-history]")
    for expected in ("assigned to fay", "Credit desk raised the limit; replaying.", "case.assigned", "case.resolved"):
        assert expected in history, expected
    # A resolved case can only be reopened now.
    options = page.eval_on_selector_all("#id_transition_status option", "els => els.map(e => e.value)")
    assert options == ["open"]


def test_keyboard_bulk_assign_and_resolve_on_the_queue_page(browser_page, live_server, ops):
    from exceptions.models import Case

    page = browser_page
    log_in(page, live_server, f"/queues/{AR}/", "fay")
    page.wait_for_selector("[data-testid=shortcut-hint]")
    first, second = Case.objects.order_by("priority", "-last_seen")
    page.keyboard.press("j")
    page.keyboard.press("a")  # nothing selected: the focused row
    page.wait_for_selector("text=Assign to me: 1 done, 0 failed.")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.is_checked(f"input[name=selected][value='{second.pk}']")
    page.keyboard.press("r")
    page.wait_for_selector("text=Resolve: 1 done, 0 failed.")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.assignee == ops and first.status == "in_progress"
    assert second.status == "resolved" and second.assignee is None


def test_sort_by_a_column_filter_with_chips_and_save_the_view(browser_page, live_server, ops):
    from datetime import timedelta

    from django.utils import timezone

    from exceptions.models import Case

    credit, period = Case.objects.order_by("priority", "-last_seen")
    # The period case is the older one, and the only one seen this week.
    Case.objects.filter(pk=credit.pk).update(first_seen=timezone.now() - timedelta(days=10))
    Case.objects.filter(pk=period.pk).update(
        first_seen=timezone.now() - timedelta(days=30), last_seen=timezone.now() - timedelta(days=2)
    )
    page = browser_page
    log_in(page, live_server, f"/queues/{AR}/", "fay")
    rows = "[data-testid=case-table] tbody tr[data-case]"
    page.wait_for_selector(rows)
    assert page.eval_on_selector_all(rows, "rs => rs.map(r => +r.dataset.case)") == [credit.pk, period.pk]
    # One line per case, named after its real message (no template placeholders).
    assert "<n>" not in page.inner_text("[data-testid=case-table] tbody")
    page.click("th a[data-sort=age]")  # the first click: oldest first
    page.wait_for_url("**sort=-age**")
    assert page.eval_on_selector_all(rows, "rs => rs.map(r => +r.dataset.case)") == [period.pk, credit.pk]
    assert page.get_attribute("th:has(a[data-sort=age])", "aria-sort") == "descending"
    # A relative range is a chip that applies at once, and stays in the URL with the order.
    page.click("label[for=seen-within-7d]")
    page.wait_for_url("**seen_within=7d**")
    assert "sort=-age" in page.url
    assert page.eval_on_selector_all(rows, "rs => rs.map(r => +r.dataset.case)") == [period.pk]
    assert "Last seen: last 7 d" in page.inner_text("[data-testid=filter-chips]")
    # Saved views keep the filter and the order.
    page.fill("[data-testid=saved-views] input[name=name]", "This week, oldest first")
    page.click("[data-testid=saved-views] button:has-text('Save view')")
    page.click("[data-testid=filter-chip]:has-text('Last seen')")  # removing the chip drops the filter
    page.wait_for_function("!location.search.includes('seen_within')")
    assert page.locator(rows).count() == 2
    page.click("[data-testid=saved-views] a:has-text('This week, oldest first')")
    page.wait_for_url("**seen_within=7d**")
    assert "sort=-age" in page.url and page.locator(rows).count() == 1
    # A date picker: last seen before a day long ago leaves nothing.
    page.fill("#id_seen_until", "2020-01-01T00:00")
    page.click("[data-testid=case-filters] button:has-text('Apply')")
    page.wait_for_url("**seen_until=2020-01-01T00%3A00**")
    assert "No cases match." in page.inner_text("[data-testid=case-table]")
