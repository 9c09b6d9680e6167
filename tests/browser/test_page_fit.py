"""Screenshot test: the pages operators live in, at the screen sizes they use. A queue shows 25 or more cases on one
1440x900 screen (one line per case), and no page scrolls sideways at 1280 px or wider."""

import pytest

from tests.factories import PASSWORD, failure, failures_raise, reference_data_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AR = "accounts-receivable"
CASES = 32
WIDTHS = (1280, 1440)
# Messages as long as real ones: SAP's credit check names the order, the exposure and the limit.
LONG = "Credit check failed for sales order {n} of customer ACME Industrial Holdings GmbH: exposure EUR {n}5,000.00 "
LONG += "exceeds the credit limit of EUR 100,000.00 set for credit segment 0000 (credit control area 1000)"

VISIBLE_ROWS = """() => Array.from(document.querySelectorAll("[data-testid=case-table] tbody tr[data-case]"))
.filter(row => {
  const box = row.getBoundingClientRect();
  return box.top >= 0 && box.bottom <= window.innerHeight;
}).length"""
SIDEWAYS = "() => document.scrollingElement.scrollWidth - window.innerWidth"


@pytest.fixture
def busy_queue(role_user):
    """32 cases in accounts receivable (distinct kinds, so distinct fingerprints), each with a long message."""
    from exceptions.models import Case, Queue
    from transactions.services import ingest_source_create

    reference_data_load()
    letters = "abcdefghijklmnopqrstuvwxyz"
    records = [
        failure(kind=f"order.create.{letters[i % 26]}{letters[i // 26]}", message=LONG.format(n=4711 + i), hours=i)
        for i in range(CASES)
    ]
    failures_raise(ingest_source_create(name="erp", actor="system:test"), *records)
    queue = Queue.objects.get(slug=AR)
    Case.objects.update(queue=queue)
    user = role_user("finance_ops", username="fay")
    queue.members.add(user)
    return Case.objects.order_by("priority", "-last_seen").first()


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=nav]")


def test_queue_case_transaction_and_home_pages_fit_the_screen(browser_page, live_server, busy_queue, tmp_path):
    page = browser_page
    log_in(page, live_server, "fay")
    case = busy_queue
    txn_id = case.occurrences.first().txn_id
    pages = {
        "queue": f"/queues/{AR}/",
        "case": f"/cases/{case.pk}/",
        "transaction": f"/transactions/{txn_id}/",
        "home": "/",
    }
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("load")
            page.screenshot(path=str(tmp_path / f"{name}-{width}.png"))
            assert page.evaluate(SIDEWAYS) <= 0, f"{name} page scrolls sideways at {width} px"
            if name == "queue" and width == 1440:
                visible = page.evaluate(VISIBLE_ROWS)
                assert visible >= 25, f"only {visible} cases visible on a 1440x900 screen"
                # One line per case: every row is as tall as the shortest.
                heights = page.eval_on_selector_all(
                    "[data-testid=case-table] tbody tr[data-case]", "rows => rows.map(r => r.offsetHeight)"
                )
                assert max(heights) == min(heights) and max(heights) <= 26, heights


def test_the_rule_preview_does_not_scroll_sideways(browser_page, live_server, role_user):
    from datetime import timedelta

    from django.utils import timezone

    from exceptions.models import Category
    from transactions.services import ingest_source_create

    reference_data_load()
    recent = (timezone.now() - timedelta(hours=2)).isoformat()
    records = [
        failure(
            system="sap-s4-production-frankfurt-eu-central",
            kind=f"SalesOrder.CreditManagement.CreditCheckPerformedAndBlocked.v{i}",
            code=f"SAP/FIN-CR/DOCUMENT-BLOCKED-{i:04d}",
            message=LONG.format(n=4711 + i),
        )
        | {"occurred_at": recent}
        for i in range(5)
    ]
    failures_raise(ingest_source_create(name="erp", actor="system:test"), *records)
    role_user("manager", username="mona")
    page = browser_page
    log_in(page, live_server, "mona")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/taxonomy/rules/new/")
        page.fill("#id_name", "Credit blocks")
        page.select_option("#id_category", str(Category.objects.get(slug="business_rule").pk))
        page.fill("#id_error_code", "SAP/FIN-CR/*")
        page.click("[data-testid=rule-preview]")
        page.wait_for_selector("[data-testid=preview-rows]")
        assert page.locator("[data-testid=preview-rows] tbody tr").count() == 5
        assert page.evaluate(SIDEWAYS) <= 0, f"the rule preview scrolls sideways at {width} px"


def test_no_console_page_scrolls_sideways(browser_page, live_server, busy_queue, role_user):
    """Every page in the navigation of the role that sees them all, with a busy queue behind it."""
    admin = role_user("admin", username="ada")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    page = browser_page
    log_in(page, live_server, "ada")
    links = page.eval_on_selector_all("[data-testid=nav] a", "links => links.map(a => a.getAttribute('href'))")
    assert len(links) > 15
    wide = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in links:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("load")
            overflow = page.evaluate(SIDEWAYS)
            if overflow > 0:
                wide.append((width, path, overflow))
    assert not wide, f"pages that scroll sideways (width, path, px): {wide}"
