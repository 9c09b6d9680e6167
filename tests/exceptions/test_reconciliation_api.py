"""The reconciliation API and the rule form behind it: managers write (audited), others read; bad input is a 400 (or a
form error) naming the field, and nothing is saved; the preview shows what a rule would find; results filter and
paginate."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from console.lib.audit import AuditEntry
from exceptions.forms.reconciliation import ReconciliationRuleForm, ValueMappingForm
from exceptions.models import ReconciliationResult, ReconciliationRule, ValueMapping
from exceptions.services import reconcile_transactions, value_mapping_update
from tests.factories import T0, UserFactory, ingest_and_correlate
from transactions.models import Transaction

RULES = "/api/v1/reconciliation-rules/"
RESULTS = "/api/v1/reconciliation-results/"
BODY = {
    "name": "Invoice amount vs payment",
    "kind": "compare",
    "left_kind": "invoice.posted",
    "left_path": "amount",
    "right_kind": "payment.received",
    "right_path": "attributes.amount_paid|amount",
    "comparison": "absolute",
    "tolerance": "0.01",
    "severity": "high",
    "process": "order-to-cash",
}


def user(role: str, username: str):
    # No password: hashing one costs a second on a loaded machine, and force_authenticate needs none.
    return UserFactory(username=username, roles=[role], password=None)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def manager(role_user, reference) -> APIClient:
    return api(user("manager", "mia"))


@pytest.fixture
def ops(role_user, reference) -> APIClient:
    return api(user("finance_ops", "olga"))


def snapshot() -> tuple:
    return (
        list(ReconciliationRule.objects.order_by("id").values()),
        AuditEntry.objects.count(),
    )


@pytest.mark.django_db
def test_a_manager_creates_changes_and_deletes_a_rule_each_audited(manager):
    created = manager.post(RULES, BODY, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert (rule["process"], rule["tolerance"], rule["left_currency_path"]) == ("order-to-cash", "0.010000", "currency")
    entry = AuditEntry.objects.filter(action="reconciliation_rule.created").get()
    assert entry.actor == "user:mia" and entry.after["right_path"] == "attributes.amount_paid|amount"

    changed = manager.patch(f"{RULES}{rule['id']}/", {"tolerance": "1.5", "is_active": False}, format="json")
    assert changed.status_code == 200 and changed.json()["tolerance"] == "1.500000"
    entry = AuditEntry.objects.filter(action="reconciliation_rule.updated").get()
    assert (entry.before["tolerance"], entry.after["tolerance"], entry.after["is_active"]) == ("0.01", "1.5", False)

    assert manager.delete(f"{RULES}{rule['id']}/").status_code == 204
    assert not ReconciliationRule.objects.filter(pk=rule["id"]).exists()
    assert AuditEntry.objects.filter(action="reconciliation_rule.deleted").get().before["name"] == BODY["name"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"left_path": "attributes..amount"}, "left_path", "cannot read path"),
        ({"right_path": 'attributes["open'}, "right_path", "cannot read path"),
        ({"left_path": "amout"}, "left_path", "starts with 'amout'"),
        ({"tolerance": "-0.01"}, "tolerance", "0"),
        ({"comparison": "relative", "tolerance": "2"}, "tolerance", "fraction of the left value"),
        ({"kind": "unique", "scope_path": "supplier["}, "scope_path", "cannot read path"),
        ({"right_kind": ""}, "right_kind", "other side's event kind"),
    ],
)
def test_bad_rule_input_is_a_400_naming_the_field_and_nothing_is_saved(manager, changes, field, words):
    before = snapshot()
    answer = manager.post(RULES, {**BODY, **changes}, format="json")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert field in body["errors"] and words in " ".join(body["errors"][field])
    assert field in body["detail"]
    assert snapshot() == before


@pytest.mark.django_db
def test_a_bad_change_leaves_the_rule_as_it_was(manager):
    rule_id = manager.post(RULES, BODY, format="json").json()["id"]
    before = snapshot()
    answer = manager.patch(f"{RULES}{rule_id}/", {"tolerance": "-1", "left_path": "x.y"}, format="json")
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {"tolerance", "left_path"} or "tolerance" in answer.json()["errors"]
    assert snapshot() == before


@pytest.mark.django_db
def test_the_page_form_refuses_the_same_input():
    form = ReconciliationRuleForm(data={**BODY, "process": "", "tolerance": "-0.5", "left_path": "attributes..x"})
    assert not form.is_valid()
    assert "cannot read path" in form.errors["left_path"][0]
    assert "tolerance" in form.errors
    assert not ReconciliationRule.objects.exists()


@pytest.mark.django_db
def test_roles_read_but_only_managers_write(role_user, ops, manager):
    rule_id = manager.post(RULES, BODY, format="json").json()["id"]
    for role in ("finance_ops", "compliance"):
        reader = api(user(role, f"r-{role}"))
        assert reader.get(RULES).status_code == 200
        assert reader.get(RESULTS).status_code == 200
        assert reader.post(RULES, BODY, format="json").status_code == 403
        assert reader.patch(f"{RULES}{rule_id}/", {"tolerance": "5"}, format="json").status_code == 403
        assert reader.delete(f"{RULES}{rule_id}/").status_code == 403
        assert reader.post(f"{RULES}preview/", BODY, format="json").status_code == 403
    integration = api(user("integration", "ivan"))
    assert integration.get(RESULTS).status_code == 403
    assert ReconciliationRule.objects.get(pk=rule_id).tolerance == Decimal("0.01")
    assert APIClient().get(RULES).status_code in (401, 403)


def o2c(source, prefix, invoice, paid, hours=0.0, base=T0):
    def at(h):
        return (base + timedelta(hours=h)).isoformat()

    ingest_and_correlate(
        source,
        {
            "event_id": f"{prefix}-c",
            "occurred_at": at(hours),
            "system": "salesforce-crm",
            "kind": "contract.approved",
            "status": "ok",
            "business_keys": {"contract": f"C-{prefix}"},
        },
        {
            "event_id": f"{prefix}-i",
            "occurred_at": at(hours + 1),
            "system": "zuora-billing",
            "kind": "invoice.posted",
            "status": "ok",
            "amount": invoice,
            "currency": "EUR",
            "business_keys": {"contract": f"C-{prefix}", "invoice": f"I-{prefix}"},
        },
        {
            "event_id": f"{prefix}-p",
            "occurred_at": at(hours + 2),
            "system": "stripe-payments",
            "kind": "payment.received",
            "status": "ok",
            "amount": paid,
            "currency": "EUR",
            "business_keys": {"invoice": f"I-{prefix}"},
        },
    )


@pytest.mark.django_db
def test_the_preview_shows_what_the_rule_would_find_without_saving(manager, source):
    # The preview looks at the last 7 days: the transactions happened yesterday.
    yesterday = timezone.now() - timedelta(days=1)
    o2c(source, "a", "100.00", "100.00", base=yesterday)
    o2c(source, "b", "100.00", "90.00", base=yesterday)
    before = snapshot()
    preview = manager.post(f"{RULES}preview/", BODY, format="json")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    assert (body["days"], body["scanned"], body["capped"]) == (7, 2, False)
    assert body["counts"] == {"matched": 1, "mismatched": 1, "incomplete": 0, "error": 0}
    first = body["rows"][0]
    assert (first["status"], first["left_value"], first["right_value"]) == ("mismatched", "100", "90")
    assert snapshot() == before and not ReconciliationResult.objects.exists()
    # A bad body is refused as a save would be.
    assert manager.post(f"{RULES}preview/", {**BODY, "tolerance": "-1"}, format="json").status_code == 400


@pytest.mark.django_db
def test_results_filter_and_paginate(manager, ops, source):
    rule_id = manager.post(RULES, BODY, format="json").json()["id"]
    ReconciliationRule.objects.exclude(pk=rule_id).delete()  # the default rules have results of their own
    o2c(source, "a", "100.00", "100.00")
    o2c(source, "b", "100.00", "90.00", hours=5)
    o2c(source, "c", "100.00", "80.00", hours=10)
    assert not ReconciliationResult.objects.exists()  # the tasks after correlation wait for the commit
    reconcile_transactions(list(Transaction.objects.values_list("id", flat=True)))
    everything = ops.get(RESULTS).json()["results"]
    assert len(everything) == 3
    assert [r["right_value"] for r in everything] == ["80", "90", "100"]  # newest first
    mismatched = ops.get(RESULTS, {"status": "mismatched", "rule": rule_id}).json()["results"]
    assert {r["right_value"] for r in mismatched} == {"80", "90"}
    assert all(r["case"] and r["rule_name"] == BODY["name"] for r in mismatched)
    one = everything[0]["transaction"]
    assert [r["transaction"] for r in ops.get(RESULTS, {"transaction": one}).json()["results"]] == [one]
    assert len(ops.get(RESULTS, {"system": "stripe-payments"}).json()["results"]) == 3
    assert ops.get(RESULTS, {"left_system": "stripe-payments"}).json()["results"] == []
    page = ops.get(RESULTS, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = ops.get(page["next"]).json()
    assert [r["right_value"] for r in rest["results"]] == ["100"]
    assert ops.get(RESULTS, {"occurred_since": "2026-05-18T14:00:00Z"}).json()["results"][0]["right_value"] == "80"
    assert ops.get(RESULTS, {"status": "nonsense"}).status_code == 400


@pytest.mark.django_db
def test_value_mappings_are_validated_and_audited(reference):
    mapping = ValueMapping.objects.get(slug="crm-legal-entity-to-company-code")
    form = ValueMappingForm(data={"slug": mapping.slug, "name": "x", "entries": '{"DE01": ""}'}, mapping=mapping)
    assert not form.is_valid() and "non-empty" in form.errors["entries"][0]
    value_mapping_update(mapping=mapping, actor="mia", name=mapping.name, entries={**mapping.entries, "AT01": "1110"})
    entry = AuditEntry.objects.filter(action="value_mapping.updated").get()
    assert "AT01" not in entry.before["entries"] and entry.after["entries"]["AT01"] == "1110"
