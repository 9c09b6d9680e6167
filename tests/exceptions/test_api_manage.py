"""The API of what the console's managers and operators change besides case actions: merge and split of cases,
classification and routing rules (with their previews), queues and their members. Each write: done and audited,
403 for a role without the capability, 400 with a reason, and 409 where the object carries a version (cases)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from console.lib.audit import AuditEntry, audit_verify
from exceptions.models import Case, ClassificationRule, ExceptionRecord, Queue, RoutingRule
from tests.factories import failure


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def last_audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action}"
    return entry


@pytest.fixture
def ops(role_user, reference) -> APIClient:
    user = role_user("finance_ops", username="olga")
    Queue.objects.get(slug="accounts-receivable").members.add(user)
    return api(user)


@pytest.fixture
def manager(role_user) -> APIClient:
    return api(role_user("manager", username="mia"))


@pytest.fixture
def integration(role_user) -> APIClient:
    return api(role_user("integration", username="ivan"))


@pytest.fixture
def two_cases(raise_failures) -> tuple[Case, Case]:
    raise_failures(
        failure(),
        failure(code="F5/201", message="Posting period 04 2026 is not open for company code 1010", kind="pay.apply"),
        failure(code="F5/201", message="Posting period 05 2026 is not open for company code 2020", kind="pay.apply"),
    )
    credit, period = Case.objects.order_by("id")
    return credit, period


# ---- Merge and split ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_merge_folds_cases_with_audit_and_refuses_a_stale_version(ops, two_cases):
    credit, period = two_cases
    url = f"/api/v1/cases/{credit.pk}/merge/"
    stale = ops.post(url, {"version": credit.version + 1, "cases": [period.pk]}, format="json")
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
    assert Case.objects.get(pk=period.pk).merged_into_id is None

    response = ops.post(url, {"version": credit.version, "cases": [period.pk]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["occurrence_count"] == 3 and response.json()["version"] == credit.version + 1
    assert Case.objects.get(pk=period.pk).merged_into_id == credit.pk
    entry = last_audit("case.merged")
    assert entry.actor == "user:olga" and entry.after == {"merged": [period.pk]}
    assert audit_verify().ok


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"cases": [1]}, "version"),
        ({"version": 1, "cases": []}, "cases"),
        ({"version": 1, "cases": ["x"]}, "cases"),
        ({"version": 1, "cases": "self"}, "merged into itself"),
    ],
)
def test_merge_bad_input_answers_400_with_a_reason(ops, two_cases, body, reason):
    credit, _ = two_cases
    if body.get("cases") == "self":
        body["cases"] = [credit.pk]
    response = ops.post(f"/api/v1/cases/{credit.pk}/merge/", body, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert not AuditEntry.objects.filter(action="case.merged").exists()


@pytest.mark.django_db
def test_merge_and_split_are_refused_to_compliance(role_user, two_cases):
    credit, period = two_cases
    reader = api(role_user("compliance", username="carla"))
    occurrence = ExceptionRecord.objects.filter(case=period).first()
    merge = reader.post(f"/api/v1/cases/{credit.pk}/merge/", {"version": 1, "cases": [period.pk]}, format="json")
    split = reader.post(f"/api/v1/cases/{period.pk}/split/", {"version": 1, "occurrence": occurrence.pk}, format="json")
    assert merge.status_code == split.status_code == 403
    assert not AuditEntry.objects.filter(action__in=["case.merged", "case.split"]).exists()


@pytest.mark.django_db
def test_split_moves_an_occurrence_with_audit_and_refuses_a_stale_version(ops, two_cases):
    _, period = two_cases
    occurrence = ExceptionRecord.objects.filter(case=period, error_message__contains="2020").get()
    url = f"/api/v1/cases/{period.pk}/split/"
    body = {"occurrence": occurrence.pk, "message_contains": "company code 2020"}
    stale = ops.post(url, {**body, "version": period.version + 3}, format="json")
    assert stale.status_code == 409
    response = ops.post(url, {**body, "version": period.version}, format="json")
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["id"] != period.pk and new["occurrence_count"] == 1
    assert ExceptionRecord.objects.get(pk=occurrence.pk).case_id == new["id"]
    entry = last_audit("case.split")
    assert entry.after["from_case"] == period.pk and entry.after["message_contains"] == "company code 2020"


@pytest.mark.django_db
def test_split_refuses_an_occurrence_of_another_case_and_text_not_in_the_message(ops, two_cases):
    credit, period = two_cases
    foreign = ExceptionRecord.objects.get(case=credit)
    url = f"/api/v1/cases/{period.pk}/split/"
    response = ops.post(url, {"version": period.version, "occurrence": foreign.pk}, format="json")
    assert response.status_code == 400 and "not an occurrence of case" in response.json()["detail"]
    own = ExceptionRecord.objects.filter(case=period).first()
    response = ops.post(
        url, {"version": period.version, "occurrence": own.pk, "message_contains": "nowhere"}, format="json"
    )
    assert response.status_code == 400 and "must appear" in response.json()["detail"]
    assert Case.objects.count() == 2


# ---- Classification rules -------------------------------------------------------------------------------------------

RULE = {
    "name": "Widget overflow",
    "category": "data_quality",
    "system": "legacy-*",
    "message_pattern": r"overflow\s+\d+",
    "http_status": "500-504, 429",
    "attributes": {"region": "EU*"},
}


@pytest.mark.django_db
def test_classification_rule_create_change_delete_with_audit(manager, reference):
    response = manager.post("/api/v1/classification-rules/", RULE, format="json")
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["http_status"] == "500-504,429" and rule["is_active"] and rule["position"] == 100
    assert last_audit("classification_rule.created").after["category"] == "data_quality"

    url = f"/api/v1/classification-rules/{rule['id']}/"
    response = manager.patch(url, {"category": "mapping", "position": 7}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["category"] == "mapping" and response.json()["message_pattern"] == r"overflow\s+\d+"
    updated = last_audit("classification_rule.updated")
    assert updated.before["category"] == "data_quality" and updated.after["position"] == 7

    assert manager.get(url).json()["attributes"] == {"region": "EU*"}
    assert manager.delete(url).status_code == 204
    assert not ClassificationRule.objects.filter(pk=rule["id"]).exists()
    assert last_audit("classification_rule.deleted").before["name"] == "Widget overflow"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"message_pattern": "overflow("}, "message_pattern: not a regular expression"),
        ({"category": "no-such-category"}, "category:"),
        ({"http_status": "teapot"}, "http_status:"),
        ({"attributes": ["region"]}, "attributes:"),
        ({"name": ""}, "name:"),
    ],
)
def test_classification_rule_bad_input_answers_400_with_a_reason(manager, reference, change, reason):
    count = ClassificationRule.objects.count()
    response = manager.post("/api/v1/classification-rules/", {**RULE, **change}, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"], response.content
    assert ClassificationRule.objects.count() == count
    assert not AuditEntry.objects.filter(action="classification_rule.created").exists()


@pytest.mark.django_db
def test_rules_and_queues_are_refused_without_edit_rules(ops, integration, reference):
    rule = ClassificationRule.objects.first()
    routing = RoutingRule.objects.first()
    queue = Queue.objects.first()
    for client in (ops, integration):
        assert client.get("/api/v1/classification-rules/").status_code == 403
        assert client.post("/api/v1/classification-rules/", RULE, format="json").status_code == 403
        patched = client.patch(f"/api/v1/classification-rules/{rule.pk}/", {"position": 1}, format="json")
        assert patched.status_code == 403
        assert client.delete(f"/api/v1/routing-rules/{routing.pk}/").status_code == 403
        assert client.post("/api/v1/routing-rules/preview/", {}, format="json").status_code == 403
        assert client.patch(f"/api/v1/queues/{queue.pk}/", {"name": "x"}, format="json").status_code == 403
        assert client.post(f"/api/v1/queues/{queue.pk}/members/", {"user": "olga"}, format="json").status_code == 403
    assert not AuditEntry.objects.filter(action__regex=r"^(classification_rule|routing_rule|queue)\.").exists()


def recent(hours: float, **kwargs) -> dict:
    record = failure(**kwargs)
    record["occurred_at"] = (timezone.now() - timedelta(hours=hours)).isoformat()
    return record


@pytest.mark.django_db
def test_classification_preview_counts_what_the_rule_would_classify_without_saving(manager, raise_failures):
    raise_failures(
        recent(1, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow 1"),
        recent(2, system="legacy-erp", kind="widget.push", code="ZZZ-1", message="Widget overflow 2"),
        recent(3),
        recent(24 * 9, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow old"),
    )
    audit_count, rules_before = AuditEntry.objects.count(), ClassificationRule.objects.count()
    body = {"name": "Widgets", "category": "data_quality", "error_code": "ZZZ-1|V1/154"}
    late = manager.post("/api/v1/classification-rules/preview/", {**body, "position": 1000}, format="json")
    assert late.status_code == 200, late.content
    assert late.json()["matches"] == 2 and late.json()["scanned"] == 3 and late.json()["unclassified_matches"] == 2
    assert {(r["current"], r["new"]) for r in late.json()["rows"]} == {("unclassified", "data_quality")}
    # Placed first, it takes the credit block too, which changes category: earlier rules win, as on the page.
    early = manager.post("/api/v1/classification-rules/preview/", {**body, "position": 1}, format="json")
    assert early.json()["matches"] == 3 and early.json()["others_change"] == 1
    assert (ClassificationRule.objects.count(), AuditEntry.objects.count()) == (rules_before, audit_count)
    bad = manager.post("/api/v1/classification-rules/preview/", {**body, "message_pattern": "("}, format="json")
    assert bad.status_code == 400 and "message_pattern" in bad.json()["detail"]


@pytest.mark.django_db
def test_preview_of_a_saved_rule_lays_the_change_over_it(manager, raise_failures):
    raise_failures(recent(1), recent(2, kind="order.update"))
    credit = ClassificationRule.objects.get(name="Credit block")
    unchanged = manager.post(f"/api/v1/classification-rules/{credit.pk}/preview/", {}, format="json")
    assert unchanged.status_code == 200 and unchanged.json()["matches"] == 2
    narrowed = manager.post(
        f"/api/v1/classification-rules/{credit.pk}/preview/", {"kind": "order.update"}, format="json"
    )
    assert narrowed.json()["matches"] == 1 and narrowed.json()["left_to_others"] == 1


# ---- Routing rules --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_routing_rule_crud_preview_and_reroute_with_audit(manager, raise_failures):
    raise_failures(failure())
    case = Case.objects.get()
    body = {"name": "Everything to tax", "queue": "tax", "categories": [case.category.slug], "position": 0}
    preview = manager.post("/api/v1/routing-rules/preview/", body, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json()["count"] == 1 and preview.json()["moves"][0]["case_id"] == case.pk
    assert preview.json()["moves"][0]["to_queue"] == Queue.objects.get(slug="tax").name

    response = manager.post("/api/v1/routing-rules/", body, format="json")
    assert response.status_code == 201, response.content
    rule_id = response.json()["id"]
    assert last_audit("routing_rule.created").after["queue"] == "tax"
    assert Case.objects.get().queue.slug != "tax"  # open cases stay put until re-routed

    moved = manager.post("/api/v1/routing-rules/reroute/")
    assert moved.status_code == 200 and moved.json()["count"] == 1
    assert Case.objects.get().queue.slug == "tax"

    response = manager.patch(f"/api/v1/routing-rules/{rule_id}/", {"min_amount": "-5"}, format="json")
    assert response.status_code == 400 and "min_amount" in response.json()["detail"]
    response = manager.patch(f"/api/v1/routing-rules/{rule_id}/", {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert last_audit("routing_rule.updated").after["is_active"] is False
    bad = manager.post("/api/v1/routing-rules/", {**body, "queue": "nowhere"}, format="json")
    assert bad.status_code == 400 and "queue" in bad.json()["detail"]


# ---- Queues ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_create_change_and_members_with_audit(manager, role_user, reference):
    member = role_user("finance_ops", username="fred")
    body = {"slug": "treasury", "name": "Treasury", "triage_target": "4h", "resolve_target": "2d"}
    response = manager.post("/api/v1/queues/", body, format="json")
    assert response.status_code == 201, response.content
    queue = response.json()
    assert queue["triage_target"] == "4h" and queue["resolve_target"] == "2d" and not queue["is_default"]
    assert last_audit("queue.created").after["slug"] == "treasury"

    url = f"/api/v1/queues/{queue['id']}/"
    response = manager.patch(url, {"resolve_target": "1d 4h", "lead": "fred"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["resolve_target"] == "1d 4h" and response.json()["lead"] == "fred"
    assert last_audit("queue.updated").after["lead"] == "fred"

    response = manager.post(f"{url}members/", {"user": "fred"}, format="json")
    assert response.status_code == 200 and response.json()["members"] == ["fred"]
    assert last_audit("queue.member_added").after["added"] == "fred"
    again = manager.post(f"{url}members/", {"user": "fred"}, format="json")
    assert again.status_code == 400 and "user" in again.json()["detail"]
    response = manager.delete(f"{url}members/fred/")
    assert response.status_code == 200 and response.json()["members"] == []
    assert last_audit("queue.member_removed").after["removed"] == "fred"
    assert manager.delete(f"{url}members/fred/").status_code == 400
    assert member.queues.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"triage_target": "3d", "resolve_target": "1d"}, "triage_target"),
        ({"triage_target": "soon"}, "triage_target"),
        ({"slug": "manage"}, "reserved"),
        ({"slug": "tax"}, "exists already"),
        ({"notify_email": "not-an-address"}, "notify_email"),
    ],
)
def test_queue_bad_input_answers_400_with_a_reason(manager, reference, body, reason):
    count = Queue.objects.count()
    full = {"slug": "treasury", "name": "Treasury", "triage_target": "4h", "resolve_target": "2d", **body}
    response = manager.post("/api/v1/queues/", full, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"], response.content
    assert Queue.objects.count() == count


@pytest.mark.django_db
def test_the_default_queue_cannot_stop_being_the_default(manager, reference):
    default = Queue.objects.get(is_default=True)
    response = manager.patch(f"/api/v1/queues/{default.pk}/", {"is_default": False}, format="json")
    assert response.status_code == 400 and "exactly one queue is the default" in response.json()["detail"]
