import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from console.lib.audit import audit_verify
from exceptions.models import Case, CaseActivity, Queue, Replay, ReplayTarget
from tests.factories import failure

URL = "/api/v1/cases/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def estate(raise_failures) -> dict[str, Case]:
    """Four cases in three queues: two business rules (receivables), a platform failure, a data quality one."""
    raise_failures(
        failure(),
        failure(hours=1, code="F5/201", message="Posting period 04 2026 is not open", kind="payment.apply"),
        failure(hours=2, code="HTTP:TIMEOUT", message="Read timed out after 30000 ms", kind="invoice.sync"),
        failure(hours=3, code="V1/382", message="Customer 4711 does not exist in sales area 1000", kind="order.sync"),
    )
    cases = {c.category.slug + ":" + c.kind: c for c in Case.objects.select_related("category")}
    return {
        "credit": cases["business_rule:order.create"],
        "period": cases["business_rule:payment.apply"],
        "timeout": cases["platform:invoice.sync"],
        "customer": cases["data_quality:order.sync"],
    }


@pytest.fixture
def ops(role_user):
    user = role_user("finance_ops", username="olga")
    Queue.objects.get(slug="accounts-receivable").members.add(user)
    return user


@pytest.fixture
def reader(role_user) -> APIClient:
    return api(role_user("compliance", username="carla"))


def names(response, estate) -> list[str]:
    by_id = {c.pk: name for name, c in estate.items()}
    return [by_id[row["id"]] for row in response.json()["results"]]


# ---- Reads ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["customer", "timeout", "period", "credit"]),
        ("queue=accounts-receivable", ["period", "credit"]),
        ("queue=integration-platform&status=open", ["timeout"]),
        ("category=data_quality", ["customer"]),
        ("status=resolved", []),
        ("status=open&status=resolved&category=business_rule", ["period", "credit"]),
        ("system=sap-s4&q=posting", ["period"]),
        ("assignee=none&active=true&priority=1&priority=2", ["customer", "timeout", "period", "credit"]),
        ("priority=4", []),
        ("seen_within=30d", []),  # the estate's failures happened months ago
    ],
)
def test_list_filters(reader, estate, query, expected):
    response = reader.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    assert names(response, estate) == expected


@pytest.mark.django_db
def test_list_rows_carry_what_an_action_needs(reader, estate):
    row = reader.get(f"{URL}?category=data_quality").json()["results"][0]
    case = estate["customer"]
    assert row["version"] == case.version and row["status"] == "open" and row["queue"] == "master-data"
    assert row["category"] == "data_quality" and row["assignee"] is None and row["url"] == f"/cases/{case.pk}/"


@pytest.mark.django_db
def test_list_refuses_bad_filters_and_unauthorised_callers(reader, estate, role_user, client):
    assert reader.get(f"{URL}?status=bogus").status_code == 400
    assert reader.get(f"{URL}?queue=nowhere").status_code == 400
    assert reader.get(f"{URL}?seen_within=forever").status_code == 400
    integration = api(role_user("integration"))
    assert integration.get(URL).status_code == 403
    assert integration.get(f"{URL}{estate['credit'].pk}/").status_code == 403
    assert client.get(URL).status_code == 401


@pytest.mark.django_db
def test_cursor_pagination_visits_every_case_once_newest_first(reader, raise_failures):
    raise_failures(*(failure(hours=h, kind=f"order.step{h}") for h in range(7)))
    seen, url = [], f"{URL}?page_size=3"
    pages = 0
    while url:
        body = reader.get(url).json()
        assert "count" not in body  # cursor pages never COUNT the table
        seen += [(row["last_seen"], row["id"]) for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3 and len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    # A page size above the maximum (500) is capped, not refused.
    assert len(reader.get(f"{URL}?page_size=600").json()["results"]) == 7


@pytest.mark.django_db
def test_detail_explains_and_suggests(reader, estate, raise_failures, django_assert_max_num_queries):
    raise_failures(failure(hours=5, message="Credit check failed for SO 4712: exposure EUR 9.00 exceeds limit"))
    case = estate["credit"]
    with django_assert_max_num_queries(12):
        response = reader.get(f"{URL}{case.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["rule"] == "Credit block" and "V1/154" in body["explanation"]
    assert body["routing_rule"] == "Other business rules to receivables"
    assert body["retryable"] is False and "credit" in body["suggested_action"]
    assert body["severity"] == "medium" and body["occurrence_count"] == 2
    assert [o["error_message"][:26] for o in body["occurrences"]] == ["Credit check failed for SO"] * 2
    assert body["occurrences"][0]["occurred_at"] > body["occurrences"][1]["occurred_at"]
    assert body["occurrences"][0]["rule"] == "Credit block" and body["occurrences"][0]["txn"]
    assert [a["kind"] for a in body["activities"]] == ["occurrence", "created"]
    assert body["replays"] == [] and body["merged_into"] is None
    assert reader.get(f"{URL}999999/").status_code == 404


@pytest.mark.django_db
def test_a_merged_case_still_answers_but_takes_no_actions(reader, estate, ops):
    from exceptions.services import cases_merge

    credit, period = estate["credit"], estate["period"]
    cases_merge(target_id=credit.pk, source_ids=[period.pk], actor=ops)
    assert reader.get(f"{URL}{period.pk}/").json()["merged_into"] == credit.pk
    assert period.pk not in [row["id"] for row in reader.get(URL).json()["results"]]
    merged = api(ops).post(f"{URL}{period.pk}/comment/", {"version": 9, "body": "x"}, format="json")
    assert merged.status_code == 404


# ---- Actions --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_assign(estate, ops, role_user):
    case = estate["credit"]
    client = api(ops)
    answer = client.post(f"{URL}{case.pk}/assign/", {"version": case.version, "assignee": "olga"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["assignee"] == "olga" and answer.json()["status"] == "in_progress"
    assert answer.json()["version"] == case.version + 1

    stale = client.post(f"{URL}{case.pk}/assign/", {"version": case.version, "assignee": None}, format="json")
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
    current = answer.json()["version"]
    for user in (role_user("compliance"), role_user("finance_ops", username="otto")):
        forbidden = api(user).post(f"{URL}{case.pk}/assign/", {"version": current, "assignee": None}, format="json")
        assert forbidden.status_code == 403, forbidden.content
    # An outsider may not act outside their queue even with a stale version: 403 comes first.
    outsider = api(role_user("finance_ops", username="otto"))
    assert outsider.post(f"{URL}{case.pk}/assign/", {"version": 1, "assignee": None}, format="json").status_code == 403

    bad = client.post(f"{URL}{case.pk}/assign/", {"version": current, "assignee": "nobody"}, format="json")
    assert bad.status_code == 400 and "no active user named 'nobody'" in bad.json()["detail"]
    assert "assignee" in bad.json()["errors"]
    role_user("finance_ops", username="otto")
    not_member = client.post(f"{URL}{case.pk}/assign/", {"version": current, "assignee": "otto"}, format="json")
    assert not_member.status_code == 400 and "not a member" in not_member.json()["detail"]
    assert client.post(f"{URL}{case.pk}/assign/", {"assignee": None}, format="json").status_code == 400
    assert client.post(f"{URL}999999/assign/", {"version": 1, "assignee": None}, format="json").status_code == 404
    unassigned = client.post(f"{URL}{case.pk}/assign/", {"version": current, "assignee": None}, format="json")
    assert unassigned.status_code == 200 and unassigned.json()["assignee"] is None


@pytest.mark.django_db
def test_comment(estate, ops, role_user):
    case = estate["period"]
    client = api(ops)
    answer = client.post(f"{URL}{case.pk}/comment/", {"version": case.version, "body": "asked GL"}, format="json")
    assert answer.status_code == 200 and answer.json()["version"] == case.version + 1
    assert CaseActivity.objects.get(case=case, kind="comment").body == "asked GL"
    again = {"version": case.version, "body": "again"}
    assert client.post(f"{URL}{case.pk}/comment/", again, format="json").status_code == 409
    current = answer.json()["version"]
    empty = client.post(f"{URL}{case.pk}/comment/", {"version": current, "body": "  "}, format="json")
    assert empty.status_code == 400 and empty.json()["detail"].startswith("body:")
    compliance = api(role_user("compliance"))
    assert (
        compliance.post(f"{URL}{case.pk}/comment/", {"version": current, "body": "x"}, format="json").status_code == 403
    )
    outside = estate["timeout"]
    assert (
        client.post(f"{URL}{outside.pk}/comment/", {"version": outside.version, "body": "x"}, format="json").status_code
        == 403
    )


@pytest.mark.django_db
def test_transition(estate, ops, role_user):
    case = estate["credit"]
    client = api(ops)
    url = f"{URL}{case.pk}/transition/"
    answer = client.post(url, {"version": case.version, "status": "resolved", "note": "limit raised"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "resolved"
    current = answer.json()["version"]
    assert client.post(url, {"version": case.version, "status": "open"}, format="json").status_code == 409
    wrong = client.post(url, {"version": current, "status": "waiting"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["detail"] == "a resolved case cannot become waiting"
    bogus = client.post(url, {"version": current, "status": "bogus"}, format="json")
    assert bogus.status_code == 400 and "status" in bogus.json()["errors"]
    reopened = client.post(url, {"version": current, "status": "open"}, format="json")
    assert reopened.status_code == 200
    current = reopened.json()["version"]
    no_condition = client.post(url, {"version": current, "status": "ignored"}, format="json")
    assert no_condition.status_code == 400 and "condition" in no_condition.json()["detail"]
    until = (timezone.now() + timedelta(days=2)).isoformat()
    snoozed = client.post(url, {"version": current, "status": "ignored", "snooze_until": until}, format="json")
    assert snoozed.status_code == 200 and Case.objects.get(pk=case.pk).snooze_until is not None
    manager = api(role_user("manager"))
    assert manager.post(url, {"version": current + 1, "status": "open"}, format="json").status_code == 200
    compliance = api(role_user("compliance"))
    assert compliance.post(url, {"version": current + 2, "status": "resolved"}, format="json").status_code == 403
    assert audit_verify().ok


@pytest.mark.django_db
def test_replay(estate, role_user, django_capture_on_commit_callbacks):
    manager = api(role_user("manager"))
    credit, timeout = estate["credit"], estate["timeout"]
    refused = manager.post(f"{URL}{credit.pk}/replay/", {"version": credit.version}, format="json")
    assert refused.status_code == 400 and "not fixed by a replay" in refused.json()["detail"]
    no_target = manager.post(f"{URL}{timeout.pk}/replay/", {"version": timeout.version}, format="json")
    assert no_target.status_code == 400 and no_target.json()["detail"] == "no replay target configured for sap-s4"
    # Nothing listens on the discard port: the send fails, which is recorded on the replay.
    ReplayTarget.objects.create(system="sap-s4", url="http://127.0.0.1:9/replay", max_attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = manager.post(
            f"{URL}{timeout.pk}/replay/",
            {"version": timeout.version, "payload": {"kind": "invoice.sync", "fixed": True}},
            format="json",
        )
    assert accepted.status_code == 202, accepted.content
    body = accepted.json()
    assert body["status"] == "pending" and body["payload"] == {"kind": "invoice.sync", "fixed": True}
    assert body["payload_before"]["kind"] == "invoice.sync" and body["case"] == timeout.pk
    assert Replay.objects.get().status == "failed"
    stale = manager.post(f"{URL}{timeout.pk}/replay/", {"version": timeout.version}, format="json")
    assert stale.status_code == 409
    bad = manager.post(f"{URL}{timeout.pk}/replay/", {"version": timeout.version + 1, "payload": [1]}, format="json")
    assert bad.status_code == 400 and "payload" in bad.json()["errors"]
    compliance = api(role_user("compliance"))
    assert compliance.post(f"{URL}{timeout.pk}/replay/", {"version": 2}, format="json").status_code == 403
    detail = manager.get(f"{URL}{timeout.pk}/").json()
    assert [r["status"] for r in detail["replays"]] == ["failed"] and detail["replays"][0]["outcome"]


@pytest.mark.django_db
def test_bulk_reports_mixed_outcomes(estate, ops, role_user):
    credit, period, timeout = estate["credit"], estate["period"], estate["timeout"]
    client = api(ops)
    response = client.post(
        f"{URL}bulk/",
        {
            "action": "transition",
            "status": "resolved",
            "note": "period reopened",
            "cases": [
                {"id": credit.pk, "version": credit.version},
                {"id": period.pk, "version": period.version - 1},
                {"id": timeout.pk, "version": timeout.version},
                {"id": 999999, "version": 1},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["done"] == [credit.pk]
    assert set(body["failed"]) == {str(period.pk), str(timeout.pk), "999999"}
    assert "changed since" in body["failed"][str(period.pk)]
    assert "queues you belong to" in body["failed"][str(timeout.pk)]
    assert body["failed"]["999999"] == "no such case"
    assert Case.objects.get(pk=credit.pk).status == "resolved"

    period.refresh_from_db()
    assign = {"action": "assign", "assignee": "olga", "cases": [{"id": period.pk, "version": period.version}]}
    assert client.post(f"{URL}bulk/", assign, format="json").json() == {"done": [period.pk], "failed": {}}


@pytest.mark.django_db
def test_bulk_refuses_bad_input_and_readers(estate, ops, role_user):
    client = api(ops)
    case = estate["credit"]
    one = [{"id": case.pk, "version": case.version}]
    for payload, reason in [
        ({"action": "comment", "cases": one}, "body"),
        ({"action": "assign", "cases": one}, "assignee"),
        ({"action": "explode", "cases": one}, "action"),
        ({"action": "comment", "body": "x", "cases": []}, "cases"),
        ({"action": "comment", "body": "x", "cases": one + one}, "listed twice"),
        ({"action": "comment", "body": "x", "cases": [{"id": case.pk}]}, "version"),
    ]:
        response = client.post(f"{URL}bulk/", payload, format="json")
        assert response.status_code == 400, payload
        assert reason in response.json()["detail"], response.json()
    compliance = api(role_user("compliance"))
    response = compliance.post(f"{URL}bulk/", {"action": "comment", "body": "x", "cases": one}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_replay_bulk(estate, role_user):
    manager = api(role_user("manager"))
    ReplayTarget.objects.create(system="sap-s4", url="http://127.0.0.1:9/replay")
    response = manager.post(f"{URL}replay-bulk/", {"filters": {"queue": "integration-platform"}}, format="json")
    assert response.status_code == 200, response.content
    replay = Replay.objects.get()
    assert response.json() == {"done": [{"case": estate["timeout"].pk, "replay": str(replay.pk)}], "failed": {}}
    mixed = manager.post(f"{URL}replay-bulk/", {"filters": {"status": ["open", "in_progress"]}}, format="json").json()
    assert [d["case"] for d in mixed["done"]] == [estate["customer"].pk]  # data quality: retryable, same system
    assert len(mixed["failed"]) == 3 and "not fixed by a replay" in mixed["failed"][str(estate["credit"].pk)]
    assert mixed["failed"][str(estate["timeout"].pk)] == "a replay of this occurrence is already in flight"
    assert manager.post(f"{URL}replay-bulk/", {"filters": {}}, format="json").status_code == 400
    assert manager.post(f"{URL}replay-bulk/", {}, format="json").status_code == 400
    compliance = api(role_user("compliance"))
    assert compliance.post(f"{URL}replay-bulk/", {"filters": {"queue": "tax"}}, format="json").status_code == 403


@pytest.mark.django_db
def test_schema_documents_the_case_endpoints(reader):
    schema = reader.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for action in ("assign", "comment", "transition", "replay"):
        responses = schema["paths"][f"/api/v1/cases/{{id}}/{action}/"]["post"]["responses"]
        assert {"400", "403", "404", "409"} <= set(responses)
    assert "/api/v1/cases/replay-bulk/" in schema["paths"]


# ---- Concurrency ----------------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_users_assigning_one_case_through_the_api_one_wins(raise_failures, ops, role_user):
    raise_failures(failure())
    case = Case.objects.get()
    other = role_user("finance_ops", username="oscar")
    case.queue.members.add(other)
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def assign(user) -> None:
        client = api(user)
        try:
            barrier.wait()
            response = client.post(
                f"{URL}{case.pk}/assign/", {"version": case.version, "assignee": user.username}, format="json"
            )
            answers[user.username] = response.status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=(u,)) for u in (ops, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers.values()) == [200, 409]
    winner = next(name for name, code in answers.items() if code == 200)
    case.refresh_from_db()
    assert case.assignee.username == winner and case.version == 3
    assert list(CaseActivity.objects.filter(case=case, kind="assigned").values_list("body", flat=True)) == [
        f"assigned to {winner}"
    ]
    assert audit_verify().ok
