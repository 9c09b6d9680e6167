"""The case page answers actions in place (htmx) and keeps long lists out of the way (issue 14 items 3, 10)."""

import pytest

from exceptions.models import Case, CaseActivity
from tests.exceptions.test_triage_pages import AR, client_for, fresh, text
from tests.factories import failure

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "case-live"}


@pytest.fixture
def member(role_user):
    from exceptions.models import Queue
    from tests.factories import reference_data_load

    reference_data_load()
    user = role_user("finance_ops", username="fay")
    Queue.objects.get(slug=AR).members.add(user)
    return user


def test_resolve_assign_and_comment_answer_with_the_fragment_they_changed(raise_failures, member):
    raise_failures(failure())
    case = Case.objects.get()
    client = client_for(member)

    response = client.post(f"/cases/{case.pk}/assign/", {"version": case.version, "assignee": "me"}, **HTMX)
    page = text(response)
    assert response.status_code == 200 and "<html" not in page  # a fragment, not a page to reload
    assert 'id="case-live"' in page and 'hx-swap-oob="true"' in page and "assigned to fay" in page
    assert f'data-testid="case-version">{fresh(case).version}<' in page
    assert f"Case #{case.pk} assigned to fay." in page  # the message comes with the fragment

    response = client.post(f"/cases/{case.pk}/comment/", {"version": fresh(case).version, "body": "on it"}, **HTMX)
    assert response.status_code == 200 and "Comment added." in text(response)

    response = client.post(f"/cases/{case.pk}/status/", {"version": fresh(case).version, "status": "resolved"}, **HTMX)
    page = text(response)
    assert response.status_code == 200 and fresh(case).status == "resolved"
    assert "is now resolved" in page and 'data-testid="resolve-form"' not in page  # nothing left to resolve


def test_a_stale_or_invalid_action_in_place_answers_409_or_400_with_the_fragment(raise_failures, member):
    raise_failures(failure())
    case = Case.objects.get()
    client = client_for(member)
    response = client.post(f"/cases/{case.pk}/status/", {"version": case.version + 5, "status": "resolved"}, **HTMX)
    assert response.status_code == 409 and 'id="case-live"' in text(response) and "changed since" in text(response)
    response = client.post(f"/cases/{case.pk}/comment/", {"version": case.version, "body": ""}, **HTMX)
    assert response.status_code == 400 and 'data-testid="form-error"' in text(response)
    assert fresh(case).status == "open" and not CaseActivity.objects.filter(kind="comment").exists()


def test_actions_come_first_and_occurrences_are_paginated_and_collapsed(raise_failures, member):
    raise_failures(*(failure(hours=h) for h in range(23)))
    case = Case.objects.get()
    page = text(client_for(member).get(f"/cases/{case.pk}/"))
    # The explanation and the failing step come before the occurrences (actions sit beside them: the browser test).
    order = [page.index(f'data-testid="{t}"') for t in ("classification", "failing-step", "occurrences")]
    assert order == sorted(order)
    assert '<details class="mb-2" id="occurrences" data-testid="occurrences">' in page  # collapsed
    assert page.count('<tr>\n          <td class="text-nowrap">') == 10  # one page of occurrences
    assert "page 1 of 3" in page and 'data-testid="older-occurrences"' in page
    second = text(client_for(member).get(f"/cases/{case.pk}/", {"occurrences": "3"}))
    assert "page 3 of 3" in second and "open" in second.split('id="occurrences"', 1)[1][:80]


def test_a_timeline_on_demand_must_belong_to_the_case(raise_failures, member):
    raise_failures(failure(), failure(kind="payment.apply", code="F5/201", message="Posting period 04 is not open"))
    first, second = Case.objects.order_by("pk")
    other_txn = second.occurrences.get().txn_id
    assert client_for(member).get(f"/cases/{first.pk}/timeline/{other_txn}/").status_code == 404
