"""The triage console: queues, a queue's cases, a case's page and every action on it, notifications."""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from console.lib.audit import AuditEntry
from console.services import saved_view_save
from exceptions.models import Case, CaseActivity, ExceptionRecord, Notification, Queue
from exceptions.services import case_assign, case_comment, case_notify, case_transition, cases_merge
from exceptions.views import cases as case_views
from exceptions.views import triage
from tests.factories import failure

AR = "accounts-receivable"
PERIOD_CLOSED = {
    "code": "F5/201",
    "message": "Posting period 04 2026 is not open",
    "kind": "payment.apply",
    "amount": "500.00",
}


# ---- Fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Six users per test; these tests are about cases, not about how strongly passwords are hashed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member(role_user, reference):
    user = role_user("finance_ops", username="olga")
    Queue.objects.get(slug=AR).members.add(user)
    return user


@pytest.fixture
def colleague(role_user, reference):
    user = role_user("finance_ops", username="carl")
    Queue.objects.get(slug=AR).members.add(user)
    return user


@pytest.fixture
def users(role_user, member):
    """One person per way of meeting a case: a queue member, an outsider of the same role, and the other roles."""
    return {
        "member": member,
        "outsider": role_user("finance_ops", username="otto"),
        "manager": role_user("manager", username="mona"),
        "compliance": role_user("compliance", username="cora"),
        "admin": role_user("admin", username="ada"),
        "integration": role_user("integration", username="ivan"),
    }


@pytest.fixture
def cases(raise_failures, member):
    """Two accounts-receivable cases: a credit block seen twice (in two transactions) and a closed posting period."""
    raise_failures(
        failure(),
        failure(message="Credit check failed for SO 4712: exposure EUR 99.00 exceeds limit", hours=1),
        failure(**PERIOD_CLOSED, hours=2),
    )
    credit, period = Case.objects.order_by("id")
    assert credit.queue.slug == period.queue.slug == AR and credit.occurrence_count == 2
    return credit, period


def within_targets(case: Case) -> None:
    """Due dates in the future, as for a case first seen just now."""
    Case.objects.filter(pk=case.pk).update(
        triage_due_at=timezone.now() + timedelta(hours=4), resolve_due_at=timezone.now() + timedelta(days=2)
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def fresh(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


def state(*all_cases: Case) -> tuple:
    """Everything an action could change: the cases, their activities and occurrences, and the audit trail."""
    rows = tuple(
        Case.objects.filter(pk__in=[c.pk for c in all_cases])
        .order_by("pk")
        .values_list("pk", "version", "status", "assignee_id", "merged_into_id", "occurrence_count")
    )
    occurrences = tuple(ExceptionRecord.objects.order_by("pk").values_list("pk", "case_id"))
    return rows, occurrences, CaseActivity.objects.count(), AuditEntry.objects.count()


# ---- Pages and who may read them ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["member", "manager", "compliance", "admin", "outsider"])
def test_pages_render_for_every_reader_of_cases(users, cases, who):
    client = client_for(users[who])
    credit, _ = cases
    for url in (
        "/queues/",
        f"/queues/{AR}/",
        f"/cases/{credit.pk}/",
        "/notifications/",
        f"/transactions/{credit.occurrences.first().txn_id}/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (who, url)
    page = text(client.get(f"/cases/{credit.pk}/"))
    acts = who in {"member", "manager", "admin"}
    assert ('data-testid="assign-form"' in page) is acts
    assert ('data-testid="read-only"' in page) is not acts
    queue_page = text(client.get(f"/queues/{AR}/"))
    assert ('data-testid="bulk-form"' in queue_page) is acts


@pytest.mark.django_db
def test_integration_engineers_cannot_see_cases(users, cases):
    client = client_for(users["integration"])
    credit, _ = cases
    for url in ("/queues/", f"/queues/{AR}/", f"/cases/{credit.pk}/", "/notifications/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/cases/{credit.pk}/comment/", {"version": credit.version, "body": "x"}).status_code == 403
    # The transaction page stays theirs, without the cases panel.
    page = client.get(f"/transactions/{credit.occurrences.first().txn_id}/")
    assert page.status_code == 200 and 'data-testid="transaction-cases"' not in text(page)


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(cases):
    response = Client().get("/queues/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_navigation_offers_queues_and_notifications(users):
    page = text(client_for(users["member"]).get("/"))
    assert 'href="/queues/"' in page and 'href="/notifications/"' in page
    assert 'href="/queues/"' not in text(client_for(users["integration"]).get("/"))


@pytest.mark.django_db
def test_queue_list_counts_backlog_unassigned_overdue_and_age(users, cases, colleague):
    credit, period = cases
    # Targets count from the first occurrence, and the factories' failures happened months ago: the credit block is
    # made current here, so that only the period case is overdue.
    within_targets(credit)
    credit.refresh_from_db()
    case_assign(case_id=credit.pk, assignee=users["member"], actor=users["member"], expected_version=credit.version)
    Case.objects.filter(pk=period.pk).update(resolve_due_at=timezone.now() - timedelta(hours=1))
    page = client_for(users["member"]).get("/queues/")
    summary = {s.queue.slug: s for s in page.context["summaries"]}
    assert set(summary) == {AR}  # finance operations see the queues they work
    row = summary[AR]
    assert (row.backlog, row.unassigned, row.overdue) == (2, 1, 1)
    assert row.oldest_first_seen == credit.first_seen
    assert f'href="/queues/{AR}/"' in text(page)
    managed = client_for(users["manager"]).get("/queues/").context["summaries"]
    assert len(managed) == Queue.objects.count()  # managers see every queue


# ---- The queue page -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_page_shows_the_columns_and_aging(users, cases):
    credit, period = cases
    within_targets(credit)  # see test_queue_list_counts_backlog_unassigned_overdue_and_age
    Case.objects.filter(pk=period.pk).update(resolve_due_at=timezone.now() - timedelta(minutes=5))
    response = client_for(users["member"]).get(f"/queues/{AR}/")
    page = text(response)
    assert [c.pk for c in response.context["cases"]] == [credit.pk, period.pk]  # P2 before P3
    assert f'value="{credit.pk}:{credit.version}"' in page  # every row carries its version for bulk actions
    assert "P2" in page and "Business rule" in page and "250,000.00 EUR" in page
    assert response.context["late"] == {period.pk}
    assert page.count("data-late") == 1
    assert 'data-testid="shortcut-hint"' in page and "js/triage" in page and "cdn" not in page.lower()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["credit", "period"]),
        ("priority=2", ["credit"]),
        ("q=period", ["period"]),
        ("assignee=none", ["period"]),
        ("assignee=olga", ["credit"]),
        ("status=resolved", ["resolved"]),
        ("active=false", ["resolved"]),
        ("active=unknown", ["credit", "period", "resolved"]),
        ("category=business_rule&system=sap-s4", ["credit", "period"]),
        ("category=mapping", []),
    ],
)
def test_queue_filters(users, cases, raise_failures, query, expected):
    credit, period = cases
    case_assign(case_id=credit.pk, assignee=users["member"], actor=users["member"], expected_version=credit.version)
    raise_failures(failure(code="M8/108", message="Duplicate invoice 9001", kind="invoice.post"))
    resolved = Case.objects.order_by("-id").first()
    Case.objects.filter(pk=resolved.pk).update(queue=Queue.objects.get(slug=AR))
    case_transition(case_id=resolved.pk, status="resolved", actor=users["manager"], expected_version=None)
    names = {credit.pk: "credit", period.pk: "period", resolved.pk: "resolved"}
    response = client_for(users["member"]).get(f"/queues/{AR}/?{query}")
    assert response.status_code == 200
    assert sorted(names[c.pk] for c in response.context["cases"]) == sorted(expected)


@pytest.mark.django_db
def test_queue_pages_with_keyset_cursor(users, cases, monkeypatch):
    monkeypatch.setattr(triage, "QUEUE_PAGE", 1)
    client = client_for(users["member"])
    first = client.get(f"/queues/{AR}/?q=")
    assert len(first.context["cases"]) == 1 and first.context["next_cursor"]
    second = client.get(f"/queues/{AR}/", {"q": "", "cursor": first.context["next_cursor"]})
    assert [c.pk for c in first.context["cases"] + second.context["cases"]] == [c.pk for c in cases]
    assert second.context["next_cursor"] is None
    assert client.get(f"/queues/{AR}/?cursor=garbage").status_code == 200


@pytest.mark.django_db
def test_queue_rows_are_named_after_the_latest_message(users, cases):
    credit, _ = cases
    page = text(client_for(users["member"]).get(f"/queues/{AR}/"))
    headline = "Credit check failed for SO 4712: exposure EUR 99.00 exceeds limit"
    assert f'data-testid="case-headline">{headline}</a>' in page
    assert escape(credit.title) in page  # the grouping template stays, in the link's title
    assert f'data-testid="case-headline">{escape(credit.title)}' not in page


@pytest.fixture
def three_cases(users, cases, raise_failures):
    """credit (P2, 2 occurrences, EUR 125,099), period (P3, EUR 500) and duplicate (EUR 7,000, seen last)."""
    credit, period = cases
    raise_failures(
        failure(code="M8/108", message="Duplicate invoice 9001", kind="invoice.post", amount="7000", hours=3)
    )
    duplicate = Case.objects.order_by("-id").first()
    Case.objects.filter(pk=duplicate.pk).update(queue=Queue.objects.get(slug=AR), priority=4)
    # Ages: the period case is the oldest, the duplicate the youngest.
    now = timezone.now()
    for case, days in ((credit, 3), (period, 9), (duplicate, 1)):
        Case.objects.filter(pk=case.pk).update(first_seen=now - timedelta(days=days))
    return {"credit": credit.pk, "period": period.pk, "duplicate": duplicate.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["credit", "period", "duplicate"]),
        ("priority", ["credit", "period", "duplicate"]),
        ("-priority", ["duplicate", "period", "credit"]),
        ("-age", ["period", "credit", "duplicate"]),  # oldest first
        ("age", ["duplicate", "credit", "period"]),
        ("-last_seen", ["duplicate", "period", "credit"]),
        ("last_seen", ["credit", "period", "duplicate"]),
        ("-occurrences", ["credit", "duplicate", "period"]),
        ("-amount", ["credit", "duplicate", "period"]),
        ("amount", ["period", "duplicate", "credit"]),
    ],
)
def test_queue_sorts_by_its_columns(users, three_cases, sort, expected):
    names = {pk: name for name, pk in three_cases.items()}
    response = client_for(users["member"]).get(f"/queues/{AR}/", {"sort": sort} if sort else {})
    assert response.status_code == 200
    assert [names[c.pk] for c in response.context["cases"]] == expected


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["-age", "amount", "-occurrences", "-priority"])
def test_sorted_pages_follow_on_with_the_keyset_cursor(users, three_cases, monkeypatch, sort):
    client = client_for(users["member"])
    whole = client.get(f"/queues/{AR}/", {"sort": sort}).context["cases"]
    monkeypatch.setattr(triage, "QUEUE_PAGE", 1)
    seen, cursor = [], None
    for _ in range(4):
        response = client.get(f"/queues/{AR}/", {"sort": sort, **({"cursor": cursor} if cursor else {})})
        seen += [c.pk for c in response.context["cases"]]
        cursor = response.context["next_cursor"]
        if not cursor:
            break
    assert seen == [c.pk for c in whole] and len(seen) == 3


@pytest.mark.django_db
def test_sort_headers_toggle_and_keep_the_filter(users, three_cases):
    response = client_for(users["member"]).get(f"/queues/{AR}/", {"sort": "-age", "priority": "2", "cursor": "x"})
    headers = response.context["headers"]
    assert headers["age"]["state"] == "descending" and headers["age"]["href"] == "?priority=2&sort=age"
    assert headers["amount"]["state"] == "none" and headers["amount"]["href"] == "?priority=2&sort=-amount"
    assert 'aria-sort="descending"' in text(response)


@pytest.mark.django_db
@pytest.mark.parametrize(("sort", "bound"), [("-amount", '"amount_at_stake" <='), ("-age", '"first_seen" >=')])
def test_a_late_sorted_page_bounds_the_sorted_column(three_cases, sort, bound):
    """The cursor's OR of conditions is no index condition; a plain bound on the sorted column is, so a late page
    starts its scan of (queue, column, id) at the cursor (EXPLAIN on PostgreSQL: Index Cond on queue_id and it)."""
    from exceptions.selectors import case_list

    keyset = triage.QUEUE_SORTS[sort]
    ordered = case_list().filter(queue__slug=AR).order_by(*keyset.fields)
    sql = str(keyset.after(ordered, keyset.cursor_of(ordered[0])).query)
    assert f"{bound} " in sql.split(" OR ")[0]


@pytest.mark.django_db
def test_an_unknown_sort_is_a_clear_400(users, three_cases):
    response = client_for(users["member"]).get(f"/queues/{AR}/", {"sort": "password"})
    assert response.status_code == 400
    assert "Cannot sort by &#x27;password&#x27;" in text(response) and len(response.context["cases"]) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"seen_within": "24h"}, set()),  # the factories' failures happened months ago
        ({"seen_within": "7d"}, {"duplicate"}),
        ({"seen_since": "2020-01-01T00:00"}, {"credit", "period", "duplicate"}),  # a date picker's value
        ({"seen_until": "2020-01-01T00:00"}, set()),
    ],
)
def test_recency_filters(users, three_cases, query, expected):
    names = {pk: name for name, pk in three_cases.items()}
    Case.objects.filter(pk=three_cases["duplicate"]).update(last_seen=timezone.now() - timedelta(days=2))
    response = client_for(users["member"]).get(f"/queues/{AR}/", query)
    assert response.status_code == 200
    assert {names[c.pk] for c in response.context["cases"]} == expected


@pytest.mark.django_db
def test_filter_bar_is_chips_and_pickers_not_raw_widgets(users, three_cases):
    response = client_for(users["member"]).get(
        f"/queues/{AR}/", {"status": ["open", "waiting"], "priority": "2", "seen_within": "7d", "sort": "-age"}
    )
    page = text(response)
    assert "---------" not in page and "Any category" in page and "is greater than" not in page
    assert "<select multiple" not in page and 'type="datetime-local"' in page
    assert 'id="status-open" autocomplete="off" checked' in page
    assert 'id="status-resolved" autocomplete="off">' in page
    chips = {chip["label"]: chip["href"] for chip in response.context["chips"]}
    assert chips["Status: Open"] == "?status=waiting&priority=2&seen_within=7d&sort=-age"
    assert chips["Priority: P2"] == "?status=open&status=waiting&seen_within=7d&sort=-age"
    assert chips["Last seen: last 7 d"] == "?status=open&status=waiting&priority=2&sort=-age"
    assert "Sort" not in " ".join(chips)  # the order is not a filter


@pytest.mark.django_db
def test_a_bad_date_is_a_form_error_on_the_page(users, three_cases):
    response = client_for(users["member"]).get(f"/queues/{AR}/", {"seen_since": "yesterday"})
    assert response.status_code == 200 and list(response.context["cases"]) == []
    assert 'data-testid="filter-error"' in text(response)


@pytest.mark.django_db
def test_date_pickers_show_the_filter_in_utc(users, three_cases):
    response = client_for(users["member"]).get(f"/queues/{AR}/", {"seen_since": "2026-05-18T10:15:00+02:00"})
    assert 'value="2026-05-18T08:15"' in text(response)


@pytest.mark.django_db
def test_csv_download_is_formula_safe_and_audited(users, raise_failures):
    raise_failures(failure(system='=HYPERLINK("http://evil.example")'))
    response = client_for(users["compliance"]).get(f"/queues/{AR}/?format=csv&priority=2")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == triage.CSV_HEADER and len(rows) == 2
    system = rows[1][rows[0].index("system")]
    assert system == '\'=HYPERLINK("http://evil.example")'
    entry = AuditEntry.objects.get(action="cases.exported")
    assert entry.actor == "user:cora" and entry.after == {"queue": AR, "filters": {"priority": "2"}}


@pytest.mark.django_db
def test_saved_views_of_a_queue_page(users, cases):
    client = client_for(users["member"])
    view = saved_view_save(user=users["member"], page="queue", name="Unassigned", query=f"queue={AR}&assignee=none")
    page = text(client.get(f"/queues/{AR}/?priority=2"))
    assert 'data-testid="saved-views"' in page and "Unassigned" in page
    # The form that saves a view keeps the queue, which the path alone would lose.
    assert f'name="query" value="priority=2&amp;queue={AR}"' in page
    response = client.get(f"/queues/?{view.query}")
    assert response.status_code == 302 and response["Location"] == f"/queues/{AR}/?assignee=none"
    other = client.get(f"/queues/billing/?queue={AR}&assignee=none")
    assert other.status_code == 302 and other["Location"] == f"/queues/{AR}/?assignee=none"


@pytest.mark.django_db
def test_saving_a_queue_view_through_the_console(users, cases):
    client = client_for(users["member"])
    response = client.post("/views/", {"page": "queue", "name": "P2", "query": f"priority=2&queue={AR}"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/queues/{AR}/?priority=2"
    assert [c.priority for c in response.context["cases"]] == [2]


# ---- Actions: who may, and what they change -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One POST of the console: its URL and data for the two cases, and the check that it took effect."""

    url: Callable[[Case, Case], str]
    data: Callable[[Case, Case, object], dict]
    took_effect: Callable[[Case, Case, object], bool]


def carl_id() -> str:
    return str(Queue.objects.get(slug=AR).members.get(username="carl").pk)


def _tomorrow() -> str:
    return (timezone.localdate() + timedelta(days=1)).isoformat()


ACTIONS = {
    "assign_me": Action(
        lambda a, b: f"/cases/{a.pk}/assign/",
        lambda a, b, u: {"version": a.version, "assignee": "me"},
        lambda a, b, u: fresh(a).assignee == u and fresh(a).status == "in_progress",
    ),
    "assign_colleague": Action(
        lambda a, b: f"/cases/{a.pk}/assign/",
        lambda a, b, u: {
            "version": a.version,
            "assignee": str(Queue.objects.get(slug=AR).members.get(username="carl").pk),
        },
        lambda a, b, u: fresh(a).assignee.username == "carl",
    ),
    "comment": Action(
        lambda a, b: f"/cases/{a.pk}/comment/",
        lambda a, b, u: {"version": a.version, "body": "Called the credit desk"},
        lambda a, b, u: CaseActivity.objects.filter(case=a, kind="comment", body="Called the credit desk").exists(),
    ),
    "resolve": Action(
        lambda a, b: f"/cases/{a.pk}/status/",
        lambda a, b, u: {"version": a.version, "status": "resolved", "note": "limit raised"},
        lambda a, b, u: fresh(a).status == "resolved" and fresh(a).resolved_at is not None,
    ),
    "snooze_until": Action(
        lambda a, b: f"/cases/{a.pk}/snooze/",
        lambda a, b, u: {"version": a.version, "until": _tomorrow()},
        lambda a, b, u: fresh(a).status == "ignored" and fresh(a).snooze_until > timezone.now(),
    ),
    "snooze_occurrences": Action(
        lambda a, b: f"/cases/{a.pk}/snooze/",
        lambda a, b, u: {"version": a.version, "occurrences": "3"},
        lambda a, b, u: fresh(a).status == "ignored" and fresh(a).snooze_occurrences == 3,
    ),
    "merge": Action(
        lambda a, b: f"/cases/{a.pk}/merge/",
        lambda a, b, u: {"version": a.version, "cases": f"#{b.pk}"},
        lambda a, b, u: fresh(b).merged_into_id == a.pk and fresh(a).occurrence_count == 3,
    ),
    "split": Action(
        lambda a, b: f"/cases/{a.pk}/split/",
        lambda a, b, u: {
            "version": a.version,
            "occurrence": a.occurrences.order_by("occurred_at").first().pk,
            "message_contains": "SO 4711",
        },
        lambda a, b, u: fresh(a).occurrence_count == 1 and Case.objects.count() == 3,
    ),
    "bulk_assign_me": Action(
        lambda a, b: f"/queues/{AR}/bulk/",
        lambda a, b, u: {
            "action": "assign_me",
            "case": [f"{a.pk}:{a.version}", f"{b.pk}:{b.version}"],
            "selected": [a.pk, b.pk],
        },
        lambda a, b, u: fresh(a).assignee == u and fresh(b).assignee == u,
    ),
    "bulk_resolve": Action(
        lambda a, b: f"/queues/{AR}/bulk/",
        lambda a, b, u: {
            "action": "resolve",
            "case": [f"{a.pk}:{a.version}", f"{b.pk}:{b.version}"],
            "selected": [b.pk],
        },
        lambda a, b, u: fresh(b).status == "resolved" and fresh(a).status == "open",
    ),
    "bulk_snooze": Action(
        lambda a, b: f"/queues/{AR}/bulk/",
        lambda a, b, u: {"action": "ignore", "occurrences": "2", "case": [f"{a.pk}:{a.version}"], "selected": [a.pk]},
        lambda a, b, u: fresh(a).status == "ignored" and fresh(a).snooze_occurrences == 2,
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["member", "manager"])
@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_works_for_members_and_managers(users, cases, colleague, who, name):
    action, user = ACTIONS[name], users[who]
    credit, period = cases
    response = client_for(user).post(action.url(credit, period), action.data(credit, period, user), follow=True)
    assert response.status_code == 200
    assert action.took_effect(credit, period, user), text(response)
    assert any(m.level_tag == "success" for m in response.context["messages"])


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["compliance", "outsider"])
@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_readers_outside_the_queue_get_403_and_nothing_changes(users, cases, colleague, who, name):
    action, user = ACTIONS[name], users[who]
    credit, period = cases
    client = client_for(user)  # before the snapshot: logging in writes its own audit entry
    before = state(credit, period)
    response = client.post(action.url(credit, period), action.data(credit, period, user))
    assert response.status_code == 403
    assert state(credit, period) == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["assign_me", "comment", "resolve", "snooze_until", "merge", "split"])
def test_a_stale_version_is_shown_and_changes_nothing(users, cases, colleague, name):
    action, user = ACTIONS[name], users["member"]
    credit, period = cases
    data = action.data(credit, period, user)
    # Someone else commented after the page was rendered: the page's version is now stale.
    case_comment(case_id=credit.pk, body="meanwhile", actor=colleague, expected_version=credit.version)
    client = client_for(user)
    before = state(credit, period)
    response = client.post(action.url(credit, period), data)
    assert response.status_code == 409
    assert "changed since you loaded it" in text(response) and 'data-testid="form-error"' in text(response)
    assert state(credit, period) == before
    # The form comes back with what was typed, now based on the current version.
    assert f'name="version" value="{fresh(credit).version}"' in text(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "data", "error"),
    [
        ("status/", {"status": "waiting", "version": 0}, "Ensure this value is greater than"),
        ("status/", {"status": "ignored"}, "Select a valid choice"),
        ("comment/", {"body": "   "}, "This field is required"),
        ("snooze/", {}, "Snooze until a date or for a number"),
        ("snooze/", {"until": "2020-01-01"}, "The date must be after today"),
        ("snooze/", {"until": "2099-01-01", "occurrences": "2"}, "not both"),
        ("merge/", {"cases": "999999"}, "at least one other existing case"),
        ("merge/", {"cases": "itself"}, "Name at least one case number"),
        ("split/", {"occurrence": "999999"}, "Select a valid choice"),
        ("split/", {"message_contains": "not in the message"}, "must appear in this occurrence"),
        ("assign/", {"assignee": "424242"}, "Select a valid choice"),
    ],
)
def test_invalid_input_is_shown_on_the_page(users, cases, url, data, error):
    credit, _ = cases
    data = {"version": credit.version, **data}
    if url == "split/" and "occurrence" not in data:
        data["occurrence"] = credit.occurrences.first().pk
    client = client_for(users["member"])
    before = state(*cases)
    response = client.post(f"/cases/{credit.pk}/{url}", data)
    assert response.status_code == 400 and error in text(response)
    assert state(*cases) == before


@pytest.mark.django_db
def test_bulk_reports_done_and_failed_counts(users, cases):
    credit, period = cases
    data = {"action": "resolve", "case": [f"{credit.pk}:{credit.version}", f"{period.pk}:{period.version - 1}"]}
    data["selected"] = [credit.pk, period.pk]
    response = client_for(users["member"]).post(f"/queues/{AR}/bulk/", {**data, "query": "priority=2"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/queues/{AR}/?priority=2"
    shown = [str(m) for m in response.context["messages"]]
    assert "Resolve: 1 done, 1 failed." in shown
    assert any(f"Case #{period.pk}:" in m and "changed since" in m for m in shown)
    assert fresh(credit).status == "resolved" and fresh(period).status == "open"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "resolve"}, "Select at least one case"),
        ({"action": "assign", "selected": ["1"], "case": ["1:1"]}, "Choose whom"),
        ({"action": "ignore", "selected": ["1"], "case": ["1:1"]}, "Snooze until a date"),
        ({"action": "drop-table"}, "Select a valid choice"),
    ],
)
def test_bulk_without_what_it_needs_changes_nothing(users, cases, data, error):
    client = client_for(users["member"])
    before = state(*cases)
    response = client.post(f"/queues/{AR}/bulk/", data, follow=True)
    assert any(error in str(m) for m in response.context["messages"]), list(response.context["messages"])
    assert state(*cases) == before


@pytest.mark.django_db
def test_bulk_assign_to_a_queue_member(users, cases, colleague):
    credit, period = cases
    data = {"action": "assign", "assignee": colleague.pk, "case": [f"{credit.pk}:{credit.version}"]}
    response = client_for(users["member"]).post(f"/queues/{AR}/bulk/", {**data, "selected": [credit.pk]}, follow=True)
    assert "Assign to: 1 done, 0 failed." in [str(m) for m in response.context["messages"]]
    assert fresh(credit).assignee == colleague and fresh(period).assignee is None
    # Only members are offered (and accepted) as assignees.
    outsider = users["outsider"]
    data = {"action": "assign", "assignee": outsider.pk, "case": [f"{period.pk}:{period.version}"]}
    client_for(users["member"]).post(f"/queues/{AR}/bulk/", {**data, "selected": [period.pk]})
    assert fresh(period).assignee is None


# ---- The case page --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_case_page_explains_the_case(users, cases):
    credit, _ = cases
    case_comment(case_id=credit.pk, body="<b>calling</b> the desk", actor=users["member"], expected_version=None)
    response = client_for(users["member"]).get(f"/cases/{credit.pk}/")
    page = text(response)
    assert "Credit block" in page and escape(credit.explanation) in page  # the rule and why it matched
    assert credit.category.suggested_action in page and "not retryable" in page
    assert f'data-testid="case-version">{fresh(credit).version}<' in page
    for occurrence in credit.occurrences.all():
        assert f'href="/transactions/{occurrence.txn_id}/"' in page
    # One timeline, of the latest transaction, with its failed step inline; the other is drawn on demand.
    assert len(response.context["linked"]) == 2 and page.count('data-testid="linked-timeline"') == 1
    assert 'data-testid="failing-step"' in page and "V1/154" in page
    other = response.context["linked"][1]["txn"]
    assert f'hx-get="/cases/{credit.pk}/timeline/{other.pk}/"' in page
    on_demand = text(client_for(users["member"]).get(f"/cases/{credit.pk}/timeline/{other.pk}/"))
    assert 'data-testid="linked-timeline"' in on_demand and "data-figure=" in on_demand
    assert "plotly" in page  # the charts' library, from our static files
    history = response.context["history"]
    assert {"created", "comment"} <= {e.what for e in history if e.source == "activity"}
    assert "case.commented" in {e.what for e in history if e.source == "audit"}
    assert "&lt;b&gt;calling&lt;/b&gt;" in page  # comments are text, never markup
    status_choices = [value for value, _ in response.context["forms"]["transition"].fields["status"].choices]
    assert sorted(status_choices) == ["in_progress", "resolved", "waiting"]


@pytest.mark.django_db
def test_linked_transactions_are_capped_at_three(users, raise_failures):
    raise_failures(*(failure(hours=h) for h in range(5)))
    case = Case.objects.get()
    response = client_for(users["member"]).get(f"/cases/{case.pk}/")
    assert case.occurrence_count == 5 and len(response.context["linked"]) == 3


@pytest.mark.django_db
def test_a_merged_case_redirects_to_its_target(users, cases):
    credit, period = cases
    cases_merge(target_id=credit.pk, source_ids=[period.pk], actor=users["manager"])
    client = client_for(users["member"])
    response = client.get(f"/cases/{period.pk}/")
    assert response.status_code == 301 and response["Location"] == f"/cases/{credit.pk}/"
    # Acting on the merged case's old page changes nothing and leads to the live one.
    before = state(credit, period)
    response = client.post(f"/cases/{period.pk}/comment/", {"version": fresh(period).version, "body": "late"})
    assert response.status_code == 302 and response["Location"] == f"/cases/{credit.pk}/"
    assert state(credit, period) == before


@pytest.mark.django_db
def test_missing_cases_and_queues_are_404(users):
    client = client_for(users["member"])
    assert client.get("/cases/999999/").status_code == 404
    assert client.post("/cases/999999/comment/", {"version": 1, "body": "x"}).status_code == 404
    assert client.get("/queues/no-such-queue/").status_code == 404


# ---- The transaction page panel and notifications -------------------------------------------------------------------


@pytest.mark.django_db
def test_transaction_page_lists_its_cases(users, cases):
    credit, _ = cases
    txn_id = credit.occurrences.order_by("occurred_at").first().txn_id
    page = text(client_for(users["member"]).get(f"/transactions/{txn_id}/"))
    assert 'data-testid="transaction-cases"' in page and f'href="/cases/{credit.pk}/"' in page
    assert case_views.transaction_cases_panel(request=_request_of(users["member"]), txn=_Txn(pk=0)) is None


@dataclass
class _Txn:
    pk: int


def _request_of(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.mark.django_db
def test_notifications_list_and_mark_as_read(users, cases):
    credit, period = cases
    member, manager = users["member"], users["manager"]
    for case in (credit, period):
        case_assign(case_id=case.pk, assignee=member, actor=manager, expected_version=None)
        case_notify(case_id=case.pk, kind="assigned")
    case_assign(case_id=credit.pk, assignee=manager, actor=manager, expected_version=None)
    case_notify(case_id=credit.pk, kind="assigned")  # the manager's own, which olga must not touch
    client = client_for(member)
    response = client.get("/notifications/")
    page = text(response)
    assert response.context["unread"] == 2 and f"Case #{credit.pk} was assigned to you" in page
    assert f'href="/cases/{credit.pk}/"' in page
    assert "2 unread notifications" in text(client.get("/queues/"))
    first, second = Notification.objects.filter(user=member).order_by("id")
    theirs = Notification.objects.get(user=manager)
    client.post("/notifications/read/", {"notification": [first.pk, theirs.pk]})
    first.refresh_from_db()
    theirs.refresh_from_db()
    assert first.read_at is not None and theirs.read_at is None
    assert [n.pk for n in client.get("/notifications/?unread=1").context["notifications"]] == [second.pk]
    client.post("/notifications/read/", {"all": "1"})
    assert not Notification.objects.filter(user=member, read_at__isnull=True).exists()
    assert Notification.objects.get(user=manager).read_at is None
    assert client.get("/notifications/read/").status_code == 405
