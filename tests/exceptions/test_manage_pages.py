"""Managers' configuration pages: taxonomy and its gap, classification and routing rules with previews, queues."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify
from console.lib.navigation import navigation_for
from exceptions import urls
from exceptions.apps import register_navigation
from exceptions.choices import ActivityKind, CaseStatus
from exceptions.models import Case, CaseActivity, Category, ClassificationRule, Queue, RoutingRule
from exceptions.views import manage
from tests.factories import T0, failure

OTHER_ROLES = ["finance_ops", "compliance", "integration"]


def recent(hours_ago: float = 1.0, **kwargs: Any) -> dict:
    """A failure that occurred `hours_ago` hours before now (tests.factories.failure() counts from a fixed T0)."""
    return failure(hours=(timezone.now() - T0).total_seconds() / 3600 - hours_ago, **kwargs)


def login(role_user, role: str) -> Client:
    client = Client()
    client.force_login(role_user(role, username=f"{role}-user"))
    return client


@pytest.fixture
def manager(role_user) -> Client:
    return login(role_user, "manager")


def last_audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action}"
    return entry


def category_id(slug: str) -> int:
    return Category.objects.get(slug=slug).pk


def queue_id(slug: str) -> int:
    return Queue.objects.get(slug=slug).pk


def rule_data(**overrides: Any) -> dict:
    data = {
        "position": 5,
        "name": "Widget overflow",
        "category": category_id("data_quality"),
        "system": "",
        "kind": "",
        "error_code": "ZZZ-1",
        "error_type": "",
        "message_pattern": "",
        "http_status": "",
        "attributes": "",
        "is_active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def routing_data(**overrides: Any) -> dict:
    data = {
        "position": 5,
        "name": "Big French cases to tax",
        "queue": queue_id("tax"),
        "categories": [],
        "system": "",
        "kind": "",
        "entity": "",
        "min_amount": "",
        "is_active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def queue_data(**overrides: Any) -> dict:
    data = {
        "slug": "refunds",
        "name": "Refunds",
        "triage_target": "4h",
        "resolve_target": "2d",
        "notify_email": "",
        "lead": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def config_state() -> dict:
    """Everything a configuration page may change, to prove that a refused request changed nothing."""
    return {
        "audit": AuditEntry.objects.count(),
        "categories": list(Category.objects.order_by("pk").values()),
        "classification": list(ClassificationRule.objects.order_by("pk").values()),
        "routing": list(RoutingRule.objects.order_by("pk").values()),
        "queues": list(Queue.objects.order_by("pk").values()),
        "members": sorted(Queue.members.through.objects.values_list("queue_id", "user_id")),
        "cases": list(Case.objects.order_by("pk").values("pk", "queue_id", "routing_rule_id", "version")),
        "activities": CaseActivity.objects.count(),
    }


# ---- Access -----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(raise_failures, role_user) -> dict:
    """One of everything the pages show, and an open case the routing rules would move (for the re-route POST)."""
    raise_failures(recent(code="ZZZ-1", message="Widget overflow"), recent(kind="order.update"))
    case = Case.objects.get(kind="order.update")
    Case.objects.filter(pk=case.pk).update(queue=Queue.objects.get(slug="billing"))
    ops = role_user("finance_ops", username="olga")
    queue = Queue.objects.get(slug="accounts-receivable")
    queue.members.add(ops)
    return {
        "category": category_id("mapping"),
        "rule": ClassificationRule.objects.get(name="Credit block").pk,
        "routing": RoutingRule.objects.get(name="Other business rules to receivables").pk,
        "queue": queue.pk,
        "member": ops.pk,
    }


PAGES = [
    ("taxonomy", {}),
    ("taxonomy-gap", {}),
    ("category-create", {}),
    ("category-edit", {"category_id": "category"}),
    ("classification-rule-list", {}),
    ("classification-rule-create", {}),
    ("classification-rule-edit", {"rule_id": "rule"}),
    ("classification-rule-delete", {"rule_id": "rule"}),
    ("classification-rule-reclassify", {"rule_id": "rule"}),
    ("routing-rule-list", {}),
    ("routing-rule-create", {}),
    ("routing-rule-edit", {"rule_id": "routing"}),
    ("routing-rule-delete", {"rule_id": "routing"}),
    ("queue-manage-list", {}),
    ("queue-manage-create", {}),
    ("queue-manage-edit", {"queue_id": "queue"}),
]
# (url name, kwargs, data): data as a function, since it names rows that only exist once `world` is built.
POSTS = [
    ("category-create", {}, lambda w: {"slug": "intruder", "name": "Intruder", "severity": "low"}),
    ("category-edit", {"category_id": "category"}, lambda w: {"name": "Renamed", "severity": "low"}),
    ("classification-rule-create", {}, lambda w: rule_data()),
    ("classification-rule-create", {}, lambda w: rule_data(preview="1")),
    ("classification-rule-edit", {"rule_id": "rule"}, lambda w: rule_data(name="Renamed")),
    ("classification-rule-edit", {"rule_id": "rule"}, lambda w: rule_data(preview="1")),
    ("classification-rule-activate", {"rule_id": "rule"}, lambda w: {"is_active": "0"}),
    ("classification-rule-delete", {"rule_id": "rule"}, lambda w: {}),
    ("classification-rule-reorder", {}, lambda w: {f"position-{w['rule']}": "1"}),
    ("classification-rule-reclassify", {"rule_id": "rule"}, lambda w: {"selected": "1", "case": "1:1"}),
    ("routing-rule-create", {}, lambda w: routing_data()),
    ("routing-rule-edit", {"rule_id": "routing"}, lambda w: routing_data(name="Renamed")),
    ("routing-rule-edit", {"rule_id": "routing"}, lambda w: routing_data(preview="1")),
    ("routing-rule-delete", {"rule_id": "routing"}, lambda w: {}),
    ("routing-reroute", {}, lambda w: {}),
    ("queue-manage-create", {}, lambda w: queue_data()),
    ("queue-manage-edit", {"queue_id": "queue"}, lambda w: queue_data(name="Renamed")),
    ("queue-member-add", {"queue_id": "queue"}, lambda w: {"user": w["member"]}),
    ("queue-member-remove", {"queue_id": "queue", "user_id": "member"}, lambda w: {}),
]


def url_for(world: dict, name: str, kwargs: dict) -> str:
    return reverse(name, kwargs={k: world[v] for k, v in kwargs.items()})


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["manager", "admin"])
@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_managers_and_admins_open_every_page(role_user, world, role, name, kwargs):
    response = login(role_user, role).get(url_for(world, name, kwargs))
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_other_roles_get_403(role_user, world, role, name, kwargs):
    expected = 200 if (name, role) == ("taxonomy-gap", "compliance") else 403
    assert login(role_user, role).get(url_for(world, name, kwargs)).status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize(("name", "kwargs", "data"), POSTS, ids=[p[0] for p in POSTS])
def test_other_roles_cannot_post_and_nothing_changes(role_user, world, role, name, kwargs, data):
    client = login(role_user, role)
    before = config_state()
    assert client.post(url_for(world, name, kwargs), data(world)).status_code == 403
    assert config_state() == before


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login(world):
    response = Client().get(reverse("taxonomy"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_compliance_reads_the_gap_without_rule_links(role_user, world):
    page = login(role_user, "compliance").get(reverse("taxonomy-gap")).content.decode()
    assert "ZZZ-1" in page and 'data-testid="gap-new-rule"' not in page


MANAGER_ITEMS = (
    "Taxonomy",
    "Taxonomy gap",
    "Classification rules",
    "Routing rules",
    "Queue settings",
    "Reconciliation rules",
    "Replay targets and webhooks",
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "labels"),
    [
        ("manager", {*MANAGER_ITEMS}),
        ("admin", {*MANAGER_ITEMS}),
        ("compliance", {"Taxonomy gap"}),
        ("finance_ops", set()),
        ("integration", set()),
    ],
)
def test_management_navigation(role_user, role, labels):
    register_navigation()
    user = role_user(role)
    sections = dict(navigation_for(user))
    shown = {i.label for i in sections.get("Management", []) if i.url_name in {u.name for u in urls.urlpatterns}}
    assert shown == labels


def test_the_project_urls_reach_the_queue_management_page():
    assert resolve("/queues/manage/").func is manage.queue_manage_list


# ---- Taxonomy and its gap -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_gap_counts_unclassified_occurrences_by_system_kind_and_code(manager, raise_failures):
    raise_failures(
        recent(1, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow"),
        recent(30, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow again"),
        recent(24 * 10, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow, older"),
        recent(24 * 40, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Too old to count"),
        recent(2, system="crm", kind="account.push", code="QQQ", message="Mystery"),
        recent(2),  # credit block: classified, not a gap
    )
    response = manager.get(reverse("taxonomy-gap"))
    rows = {(r.system, r.kind, r.error_code): r for r, _ in response.context["gap"]}
    assert set(rows) == {("legacy-erp", "widget.sync", "ZZZ-1"), ("crm", "account.push", "QQQ")}
    widget = rows[("legacy-erp", "widget.sync", "ZZZ-1")]
    assert (widget.last_7_days, widget.last_30_days) == (2, 3)
    assert (rows[("crm", "account.push", "QQQ")].last_7_days, rows[("crm", "account.push", "QQQ")].last_30_days) == (
        1,
        1,
    )
    assert response.context["totals"] == {"last_7_days": 3, "last_30_days": 4}
    # The most frequent gap comes first, and its link pre-fills a new rule.
    first, link = response.context["gap"][0]
    assert first.error_code == "ZZZ-1"
    form = manager.get(link).context["form"]
    assert (form.initial["system"], form.initial["kind"], form.initial["error_code"]) == (
        "legacy-erp",
        "widget.sync",
        "ZZZ-1",
    )


@pytest.mark.django_db
def test_gap_links_escape_glob_characters(manager, raise_failures):
    raise_failures(recent(system="odd", kind="batch[1]*", code="E?1", message="x"))
    _, link = manager.get(reverse("taxonomy-gap")).context["gap"][0]
    form = manager.get(link).context["form"]
    assert form.initial["kind"] == "batch[[]1][*]" and form.initial["error_code"] == "E[?]1"


@pytest.mark.django_db
def test_taxonomy_page_lists_categories_and_the_top_of_the_gap(manager, raise_failures):
    raise_failures(recent(code="ZZZ-1", message="Widget overflow"))
    response = manager.get(reverse("taxonomy"))
    page = response.content.decode()
    assert "data_quality" in page and "Unclassified" in page and "ZZZ-1" in page
    assert len(response.context["gap"]) == 1


@pytest.mark.django_db
def test_create_and_edit_a_category_with_audit(manager, reference):
    response = manager.post(
        reverse("category-create"),
        {"slug": "tax_engine", "name": "Tax engine", "severity": "high", "suggested_action": "Check the tax engine."},
    )
    assert response.status_code == 302
    category = Category.objects.get(slug="tax_engine")
    assert category.severity == "high" and not category.retryable
    entry = last_audit("category.created")
    assert entry.actor == "user:manager-user" and entry.after["name"] == "Tax engine"

    response = manager.post(
        reverse("category-edit", args=[category.pk]),
        {"slug": "renamed", "name": "Tax engine", "severity": "critical", "retryable": "on"},
    )
    assert response.status_code == 302
    category.refresh_from_db()
    assert category.slug == "tax_engine" and category.severity == "critical" and category.retryable
    entry = last_audit("category.updated")
    assert entry.before["severity"] == "high" and entry.after["severity"] == "critical"
    assert entry.object_id == str(category.pk)


@pytest.mark.django_db
def test_category_slug_must_be_new(manager, reference):
    before = config_state()
    response = manager.post(reverse("category-create"), {"slug": "mapping", "name": "Again", "severity": "low"})
    assert response.status_code == 200 and response.context["form"].errors["slug"]
    assert config_state() == before


# ---- Classification rules -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_edit_activate_delete_a_classification_rule_with_audit(manager, reference):
    response = manager.post(
        reverse("classification-rule-create"),
        rule_data(
            system="legacy-*",
            kind="widget.*|gadget.*",
            message_pattern=r"overflow\s+\d+",
            http_status="500-504, 429",
            attributes=json.dumps({"region": "EU*"}),
        ),
    )
    assert response.status_code == 302, response.context["form"].errors
    rule = ClassificationRule.objects.get(name="Widget overflow")
    assert rule.http_status == "500-504,429" and rule.attributes == {"region": "EU*"}
    created = last_audit("classification_rule.created")
    assert created.after["category"] == "data_quality" and created.after["message_pattern"] == r"overflow\s+\d+"

    response = manager.post(
        reverse("classification-rule-edit", args=[rule.pk]), rule_data(category=category_id("mapping"), position=7)
    )
    assert response.status_code == 302
    updated = last_audit("classification_rule.updated")
    assert updated.before["category"] == "data_quality" and updated.after["category"] == "mapping"
    assert updated.after["position"] == 7 and updated.after["attributes"] == {}

    audit_count = AuditEntry.objects.count()
    manager.post(
        reverse("classification-rule-edit", args=[rule.pk]), rule_data(category=category_id("mapping"), position=7)
    )
    assert AuditEntry.objects.count() == audit_count  # saving an unchanged rule writes nothing

    manager.post(reverse("classification-rule-activate", args=[rule.pk]), {"is_active": "0"})
    rule.refresh_from_db()
    assert not rule.is_active and last_audit("classification_rule.deactivated").after["is_active"] is False

    assert "no longer classify" in manager.get(reverse("classification-rule-delete", args=[rule.pk])).content.decode()
    assert manager.post(reverse("classification-rule-delete", args=[rule.pk])).status_code == 302
    assert not ClassificationRule.objects.filter(pk=rule.pk).exists()
    deleted = last_audit("classification_rule.deleted")
    assert deleted.object_id == str(rule.pk) and deleted.before["name"] == "Widget overflow"
    assert audit_verify().ok


@pytest.mark.django_db
def test_reorder_classification_rules(manager, reference):
    first, second = ClassificationRule.objects.order_by("position")[:2]
    response = manager.post(
        reverse("classification-rule-reorder"), {f"position-{first.pk}": "25", f"position-{second.pk}": "20"}
    )
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.position, second.position) == (25, 20)
    entry = last_audit("classification_rules.reordered")
    assert entry.before == {str(first.pk): 10} and entry.after == {str(first.pk): 25}

    before = config_state()
    manager.post(reverse("classification-rule-reorder"), {f"position-{first.pk}": "-3"})
    assert config_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("message_pattern", "credit (block", "not a regular expression"),
        ("http_status", "6xx", "is not a status"),
        ("http_status", "abc", "is not a status"),
        ("http_status", "504-500", "a range runs from a lower to a higher status"),
        ("http_status", "429,,500", "is not a status"),
        ("attributes", "[1, 2]", "a JSON object"),
        ("attributes", '{"region": 1}', "must be a non-empty text"),
        ("attributes", '{"region": ""}', "must be a non-empty text"),
        ("attributes", "{not json", "Enter a valid JSON"),
    ],
)
def test_invalid_conditions_are_form_errors(manager, reference, field, value, error):
    before = config_state()
    rule = ClassificationRule.objects.get(name="Credit block")
    for url in (reverse("classification-rule-create"), reverse("classification-rule-edit", args=[rule.pk])):
        for extra in ({}, {"preview": "1"}):
            response = manager.post(url, rule_data(**{field: value}, **extra))
            assert response.status_code == 200
            assert any(error in e for e in response.context["form"].errors[field]), response.context["form"].errors
            assert response.context["preview"] is None
    assert config_state() == before


@pytest.mark.django_db
def test_rule_list_counts_matches_of_the_last_7_days(manager, raise_failures):
    raise_failures(recent(1), recent(2, kind="order.update"), recent(24 * 8, kind="order.delete"))
    rules = {r.name: r for r in manager.get(reverse("classification-rule-list")).context["rules"]}
    assert rules["Credit block"].matches_7d == 2 and rules["Missing approval"].matches_7d == 0


@pytest.fixture
def preview_data(raise_failures) -> None:
    """Three recent widget failures (unclassified), two recent credit blocks, an old widget failure, and a teapot."""
    teapot = recent(3, system="brewer", kind="tea.make", code="X1", message="I am a teapot")
    teapot["attributes"] = {"http.response.status_code": 418}
    raise_failures(
        recent(1, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow 1"),
        recent(2, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow 2"),
        recent(3, system="legacy-erp", kind="widget.push", code="ZZZ-1", message="Widget overflow 3"),
        recent(4),
        recent(5, kind="order.update"),
        recent(24 * 9, system="legacy-erp", kind="widget.sync", code="ZZZ-1", message="Widget overflow old"),
        teapot,
    )


def preview(client: Client, url: str, **data: Any):
    before = config_state()
    response = client.post(url, rule_data(preview="1", **data))
    assert response.status_code == 200
    assert config_state() == before  # a preview saves nothing and audits nothing
    return response.context["preview"]


@pytest.mark.django_db
def test_preview_of_a_new_rule_counts_what_it_would_classify(manager, preview_data):
    result = preview(manager, reverse("classification-rule-create"), error_code="ZZZ-1")
    assert result.matches == 3 and result.changes_category == 3 and result.scanned == 6
    assert {(r.current, r.new) for r in result.rows} == {("unclassified", "data_quality")}
    assert {r.message for r in result.rows} == {"Widget overflow 1", "Widget overflow 2", "Widget overflow 3"}


@pytest.mark.django_db
def test_preview_keeps_earlier_rules_winning(manager, preview_data):
    url = reverse("classification-rule-create")
    # "Credit block" sits at position 90: placed after it, the rule only gets the widget failures...
    late = preview(manager, url, error_code="ZZZ-1|V1/154", position=1000)
    assert late.matches == 3
    # ...placed first, it takes the credit blocks too, which change category (business_rule -> data_quality).
    early = preview(manager, url, error_code="ZZZ-1|V1/154", position=1)
    assert early.matches == 5 and early.changes_category == 5
    assert ("business_rule", "data_quality") in {(r.current, r.new) for r in early.rows}
    # Same category as now: matched, but no change.
    same = preview(manager, url, error_code="V1/154", position=1, category=category_id("business_rule"))
    assert same.matches == 2 and same.changes_category == 0


@pytest.mark.django_db
def test_preview_reads_the_event_attributes(manager, preview_data):
    result = preview(manager, reverse("classification-rule-create"), error_code="", http_status="418")
    assert result.matches == 1 and result.rows[0].system == "brewer"
    pattern = preview(manager, reverse("classification-rule-create"), error_code="", message_pattern=r"overflow [12]$")
    assert pattern.matches == 2


@pytest.mark.django_db
def test_preview_of_an_edited_rule_uses_its_position_and_reports_what_it_leaves(manager, preview_data):
    rule = ClassificationRule.objects.get(name="Credit block")
    url = reverse("classification-rule-edit", args=[rule.pk])
    result = preview(
        manager, url, name=rule.name, category=category_id("business_rule"), position=rule.position, error_code="NOPE"
    )
    assert result.matches == 0 and result.left_to_others == 2
    widened = preview(
        manager,
        url,
        name=rule.name,
        category=category_id("business_rule"),
        position=rule.position,
        error_code="V1/154|ZZZ-1",
    )
    assert widened.matches == 5 and widened.changes_category == 3 and widened.left_to_others == 0
    page = manager.post(url, rule_data(preview="1", error_code="ZZZ-1")).content.decode()
    assert 'data-testid="preview-matches">3<' in page and "does not reclassify history" in page


@pytest.mark.django_db
def test_saving_a_rule_reclassifies_nothing(manager, preview_data):
    before = list(Case.objects.order_by("pk").values_list("pk", "category_id", "rule_id"))
    assert manager.post(reverse("classification-rule-create"), rule_data(position=1)).status_code == 302
    assert list(Case.objects.order_by("pk").values_list("pk", "category_id", "rule_id")) == before


# ---- Routing rules --------------------------------------------------------------------------------------------------


@pytest.fixture
def routed_cases(raise_failures) -> dict[str, Case]:
    """Credit blocks land in accounts receivable; one of them is resolved; a widget failure lands in triage."""
    french = recent(1, kind="order.change")
    french["entity"] = "FR01"
    raise_failures(
        recent(1),
        recent(2, kind="order.update"),
        recent(3, kind="order.cancel"),
        french,
        recent(4, code="ZZZ-1", message="Widget overflow"),
    )
    cases = {c.kind if c.category.slug != "unclassified" else "widget": c for c in Case.objects.all()}
    assert {c.queue.slug for k, c in cases.items() if k != "widget"} == {"accounts-receivable"}
    assert cases["widget"].queue.slug == "triage"
    Case.objects.filter(pk=cases["order.cancel"].pk).update(status=CaseStatus.RESOLVED)
    return cases


@pytest.mark.django_db
def test_routing_preview_lists_open_cases_that_would_move(manager, routed_cases):
    rule = RoutingRule.objects.get(name="Other business rules to receivables")
    before = config_state()
    response = manager.post(
        reverse("routing-rule-edit", args=[rule.pk]),
        routing_data(
            name=rule.name, position=rule.position, queue=queue_id("billing"), categories=["business_rule"], preview="1"
        ),
    )
    assert config_state() == before
    result = response.context["preview"]
    moved = {m.case_id: m for m in result["moves"]}
    assert result["count"] == 3
    assert set(moved) == {routed_cases[k].pk for k in ("order.create", "order.update", "order.change")}
    move = moved[routed_cases["order.create"].pk]
    assert (move.from_queue, move.to_queue, move.rule_id) == ("Accounts receivable", "Billing", rule.pk)
    assert "Accounts receivable → <strong>Billing</strong>" in response.content.decode()


@pytest.mark.django_db
def test_routing_preview_of_a_new_rule_uses_the_latest_entity_and_position(manager, routed_cases):
    url = reverse("routing-rule-create")
    result = manager.post(url, routing_data(entity="FR*", position=1, preview="1")).context["preview"]
    assert [m.case_id for m in result["moves"]] == [routed_cases["order.change"].pk]
    assert (result["moves"][0].to_queue, result["moves"][0].rule_name) == ("Tax", "Big French cases to tax")
    # Behind "Other business rules to receivables" (position 70) it never gets a business-rule case.
    late = manager.post(url, routing_data(entity="FR*", position=500, preview="1")).context["preview"]
    assert late["count"] == 0
    # Inactive as typed: the rules stay as they are.
    inactive = manager.post(url, routing_data(entity="FR*", position=1, is_active=None, preview="1")).context["preview"]
    assert inactive["count"] == 0


@pytest.mark.django_db
def test_reroute_moves_exactly_the_previewed_cases(manager, routed_cases):
    rule = RoutingRule.objects.get(name="Other business rules to receivables")
    data = routing_data(name=rule.name, position=rule.position, queue=queue_id("billing"), categories=["business_rule"])
    previewed = {
        m.case_id
        for m in manager.post(reverse("routing-rule-edit", args=[rule.pk]), {**data, "preview": "1"}).context[
            "preview"
        ]["moves"]
    }
    versions = dict(Case.objects.values_list("pk", "version"))
    # Saving routes new cases only: the open cases stay where they are until someone re-routes them.
    assert manager.post(reverse("routing-rule-edit", args=[rule.pk]), data).status_code == 302
    assert last_audit("routing_rule.updated").after["queue"] == "billing"
    assert Case.objects.get(pk=routed_cases["order.create"].pk).queue.slug == "accounts-receivable"
    listed = manager.get(reverse("routing-rule-list")).context
    assert listed["move_count"] == 3 and {m.case_id for m in listed["moves"]} == previewed

    assert manager.post(reverse("routing-reroute")).status_code == 302
    moved = {c.pk for c in Case.objects.filter(queue__slug="billing")}
    assert moved == previewed
    for case in Case.objects.filter(pk__in=moved):
        assert case.routing_rule_id == rule.pk and case.version == versions[case.pk] + 1
        activity = CaseActivity.objects.get(case=case, kind=ActivityKind.ROUTED)
        assert (
            activity.body == "moved from Accounts receivable to Billing by rule “Other business rules to receivables”"
        )
        assert activity.actor == "user:manager-user" and activity.data["to"] == "billing"
    untouched = Case.objects.exclude(pk__in=moved)
    assert all(c.version == versions[c.pk] for c in untouched)
    assert Case.objects.get(pk=routed_cases["order.cancel"].pk).queue.slug == "accounts-receivable"  # resolved
    entry = last_audit("cases.rerouted")
    assert entry.after["count"] == 3
    assert {(m["case"], m["from"], m["to"]) for m in entry.after["moves"]} == {
        (pk, "accounts-receivable", "billing") for pk in previewed
    }
    # Done: nothing left to move, and a second re-route writes nothing.
    audit_count = AuditEntry.objects.count()
    assert manager.get(reverse("routing-rule-list")).context["move_count"] == 0
    manager.post(reverse("routing-reroute"))
    assert AuditEntry.objects.count() == audit_count
    assert audit_verify().ok


@pytest.mark.django_db
def test_reroute_sends_unmatched_cases_to_the_default_queue(manager, routed_cases):
    rule = RoutingRule.objects.get(name="Other business rules to receivables")
    manager.post(reverse("routing-rule-delete", args=[rule.pk]))
    assert last_audit("routing_rule.deleted").before["queue"] == "accounts-receivable"
    manager.post(reverse("routing-reroute"))
    case = Case.objects.get(pk=routed_cases["order.create"].pk)
    assert case.queue.slug == "triage" and case.routing_rule_id is None
    assert CaseActivity.objects.get(case=case, kind=ActivityKind.ROUTED).body == (
        "moved from Accounts receivable to Triage by no routing rule matches: the default queue"
    )


@pytest.mark.django_db
def test_create_and_delete_a_routing_rule_with_audit(manager, reference):
    response = manager.post(
        reverse("routing-rule-create"),
        routing_data(categories=["business_rule", "control"], entity="FR*", min_amount="1000.50", system="sap-*"),
    )
    assert response.status_code == 302, response.context["form"].errors
    rule = RoutingRule.objects.get(name="Big French cases to tax")
    assert rule.categories == ["business_rule", "control"] and str(rule.min_amount) == "1000.50"
    created = last_audit("routing_rule.created")
    assert created.after["queue"] == "tax" and created.after["min_amount"] == "1000.50"
    assert "stay in their queue" in manager.get(reverse("routing-rule-delete", args=[rule.pk])).content.decode()
    manager.post(reverse("routing-rule-delete", args=[rule.pk]))
    assert not RoutingRule.objects.filter(pk=rule.pk).exists()
    assert last_audit("routing_rule.deleted").object_id == str(rule.pk)


@pytest.mark.django_db
def test_routing_rule_refuses_unknown_categories(manager, reference):
    before = config_state()
    response = manager.post(reverse("routing-rule-create"), routing_data(categories=["nope"]))
    assert response.status_code == 200 and response.context["form"].errors["categories"]
    assert config_state() == before


# ---- Queues ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_and_edit_a_queue_with_duration_targets(manager, reference, role_user):
    lead = role_user("finance_ops", username="lena")
    response = manager.post(reverse("queue-manage-create"), queue_data(lead=lead.pk, notify_email="ar@example.com"))
    assert response.status_code == 302
    queue = Queue.objects.get(slug="refunds")
    assert queue.triage_target == timedelta(hours=4) and queue.resolve_target == timedelta(days=2)
    assert queue.lead == lead and not queue.is_default
    created = last_audit("queue.created")
    assert created.after == {
        "slug": "refunds",
        "name": "Refunds",
        "is_default": False,
        "triage_target": "4h",
        "resolve_target": "2d",
        "notify_email": "ar@example.com",
        "lead": "lena",
    }
    page = manager.get(reverse("queue-manage-edit", args=[queue.pk])).content.decode()
    assert 'value="4h"' in page and 'value="2d"' in page

    manager.post(reverse("queue-manage-edit", args=[queue.pk]), queue_data(triage_target="1d 4h", resolve_target="1w"))
    queue.refresh_from_db()
    assert queue.triage_target == timedelta(hours=28) and queue.lead is None
    updated = last_audit("queue.updated")
    assert updated.before["triage_target"] == "4h" and updated.after["triage_target"] == "1d 4h"
    assert updated.after["resolve_target"] == "7d" and updated.after["lead"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"triage_target": "4x"}, "triage_target", "is not a duration"),
        ({"triage_target": "0h"}, "triage_target", "longer than zero"),
        ({"resolve_target": ""}, "resolve_target", "required"),
        ({"triage_target": "3d", "resolve_target": "2d"}, "triage_target", "cannot be longer than the resolve target"),
        ({"slug": "manage"}, "slug", "reserved"),
        ({"slug": "billing"}, "slug", "exists already"),
        ({"notify_email": "not-an-address"}, "notify_email", "valid email"),
    ],
)
def test_invalid_queue_input_is_a_form_error(manager, reference, data, field, error):
    before = config_state()
    response = manager.post(reverse("queue-manage-create"), queue_data(**data))
    assert response.status_code == 200
    assert any(error in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert config_state() == before


@pytest.mark.django_db
def test_exactly_one_default_queue(manager, reference):
    triage = Queue.objects.get(is_default=True)
    response = manager.post(reverse("queue-manage-create"), queue_data(is_default="on"))
    assert response.status_code == 302
    assert list(Queue.objects.filter(is_default=True).values_list("slug", flat=True)) == ["refunds"]
    gave_up = AuditEntry.objects.filter(action="queue.updated", object_id=str(triage.pk)).get()
    assert gave_up.before["is_default"] is True and gave_up.after["is_default"] is False

    # The default cannot simply be switched off: another queue has to take it.
    refunds = Queue.objects.get(slug="refunds")
    before = config_state()
    response = manager.post(reverse("queue-manage-edit", args=[refunds.pk]), queue_data())
    assert response.status_code == 200 and response.context["form"].errors["is_default"]
    assert config_state() == before

    manager.post(reverse("queue-manage-edit", args=[triage.pk]), queue_data(name="Triage", is_default="on"))
    assert list(Queue.objects.filter(is_default=True).values_list("slug", flat=True)) == ["triage"]


@pytest.mark.django_db
def test_queue_membership_is_audited(manager, reference, role_user):
    queue = Queue.objects.get(slug="billing")
    olga = role_user("finance_ops", username="olga")
    response = manager.post(reverse("queue-member-add", args=[queue.pk]), {"user": olga.pk})
    assert response.status_code == 302
    assert list(queue.members.all()) == [olga]
    added = last_audit("queue.member_added")
    assert added.object_id == str(queue.pk) and added.after == {"members": ["olga"], "added": "olga"}
    assert "olga" in manager.get(reverse("queue-manage-edit", args=[queue.pk])).content.decode()

    # Someone who may not act on cases is not offered, and cannot be added by a crafted POST either.
    clara = role_user("compliance", username="clara")
    before = config_state()
    response = manager.post(reverse("queue-member-add", args=[queue.pk]), {"user": clara.pk})
    assert response.status_code == 200 and response.context["member_form"].errors["user"]
    assert config_state() == before

    response = manager.post(reverse("queue-member-remove", args=[queue.pk, olga.pk]))
    assert response.status_code == 302 and not queue.members.exists()
    removed = last_audit("queue.member_removed")
    assert removed.before == {"members": ["olga"]} and removed.after == {"members": [], "removed": "olga"}
    audit_count = AuditEntry.objects.count()
    manager.post(reverse("queue-member-remove", args=[queue.pk, olga.pk]))
    assert AuditEntry.objects.count() == audit_count
