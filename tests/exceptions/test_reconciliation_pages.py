"""The reconciliation configuration pages: rules (with the 7-day preview), mappings and FX rates. Managers only; bad
input is a form error with nothing saved; every change audited."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from exceptions.models import FxRate, ReconciliationRule, ValueMapping
from tests.factories import UserFactory, ingest_and_correlate

RULE = {
    "position": "10",
    "name": "Invoice vs payment",
    "kind": "compare",
    "left_kind": "invoice.posted",
    "left_path": "amount",
    "left_currency_path": "currency",
    "right_kind": "payment.received",
    "right_path": "amount",
    "right_currency_path": "currency",
    "comparison": "absolute",
    "tolerance": "0.01",
    "severity": "high",
    "is_active": "on",
}


def login(role_user, role: str) -> Client:
    # No password: hashing one costs a second on a loaded machine, and force_login needs none.
    client = Client()
    client.force_login(UserFactory(username=f"{role}-user", roles=[role], password=None))
    return client


@pytest.fixture
def manager(role_user, reference) -> Client:
    return login(role_user, "manager")


PAGES = [
    ("reconciliation-rule-list", {}),
    ("reconciliation-rule-create", {}),
    ("reconciliation-reference", {}),
    ("value-mapping-create", {}),
]


@pytest.mark.django_db
def test_managers_open_the_pages_and_other_roles_get_403(role_user, reference):
    manager = login(role_user, "manager")
    others = [login(role_user, role) for role in ("finance_ops", "compliance", "integration")]
    for name, kwargs in PAGES:
        assert manager.get(reverse(name, kwargs=kwargs)).status_code == 200
        for client in others:
            assert client.get(reverse(name, kwargs=kwargs)).status_code == 403, name


@pytest.mark.django_db
def test_the_list_shows_the_default_rules(manager):
    page = manager.get(reverse("reconciliation-rule-list")).content.decode()
    for name in ("Contract amount vs invoice net amount", "Duplicate supplier invoice", "One invoice per contract"):
        assert name in page
    rule = ReconciliationRule.objects.get(name="Contract amount vs invoice net amount")
    assert manager.get(reverse("reconciliation-rule-edit", args=[rule.pk])).status_code == 200


@pytest.mark.django_db
def test_ops_may_not_post_a_rule(role_user, reference):
    ops = login(role_user, "finance_ops")
    before = ReconciliationRule.objects.count()
    assert ops.post(reverse("reconciliation-rule-create"), RULE).status_code == 403
    assert ReconciliationRule.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"left_path": "attributes..amount"}, "left_path", "cannot read path"),
        ({"tolerance": "-1"}, "tolerance", "cannot be negative"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(manager, changes, field, words):
    before = (ReconciliationRule.objects.count(), AuditEntry.objects.count())
    answer = manager.post(reverse("reconciliation-rule-create"), {**RULE, **changes})
    assert answer.status_code == 200
    assert words in " ".join(answer.context["form"].errors[field])
    assert (ReconciliationRule.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.django_db
def test_create_then_edit_a_rule_each_audited(manager):
    answer = manager.post(reverse("reconciliation-rule-create"), RULE)
    assert answer.status_code == 302
    rule = ReconciliationRule.objects.get(name=RULE["name"])
    assert AuditEntry.objects.filter(action="reconciliation_rule.created", object_id=str(rule.pk)).exists()
    manager.post(reverse("reconciliation-rule-edit", args=[rule.pk]), {**RULE, "tolerance": "2"})
    entry = AuditEntry.objects.get(action="reconciliation_rule.updated", object_id=str(rule.pk))
    assert (entry.before["tolerance"], entry.after["tolerance"]) == ("0.01", "2")
    manager.post(reverse("reconciliation-rule-activate", args=[rule.pk]), {"is_active": "0"})
    assert AuditEntry.objects.filter(action="reconciliation_rule.deactivated").exists()
    manager.post(reverse("reconciliation-rule-delete", args=[rule.pk]))
    assert not ReconciliationRule.objects.filter(pk=rule.pk).exists()


@pytest.mark.django_db
def test_the_preview_shows_recent_mismatches_without_saving(manager, source):
    base = timezone.now() - timedelta(days=2)
    for prefix, paid in (("a", "100.00"), ("b", "70.00")):
        ingest_and_correlate(
            source,
            {
                "event_id": f"{prefix}1",
                "occurred_at": base.isoformat(),
                "system": "zuora-billing",
                "kind": "invoice.posted",
                "status": "ok",
                "amount": "100.00",
                "currency": "EUR",
                "business_keys": {"invoice": f"I-{prefix}"},
            },
            {
                "event_id": f"{prefix}2",
                "occurred_at": (base + timedelta(hours=1)).isoformat(),
                "system": "stripe-payments",
                "kind": "payment.received",
                "status": "ok",
                "amount": paid,
                "currency": "EUR",
                "business_keys": {"invoice": f"I-{prefix}"},
            },
            now=timezone.now(),
        )
    before = (ReconciliationRule.objects.count(), AuditEntry.objects.count())
    answer = manager.post(reverse("reconciliation-rule-create"), {**RULE, "preview": "1"})
    assert answer.status_code == 200
    preview = answer.context["preview"]
    assert (preview.counts["matched"], preview.counts["mismatched"]) == (1, 1)
    assert preview.rows[0].status == "mismatched" and preview.rows[0].right_value == "70"
    assert 'data-testid="preview-rows"' in answer.content.decode()
    assert (ReconciliationRule.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.django_db
def test_fx_rates_and_mappings_are_edited_on_the_console_and_audited(manager):
    answer = manager.post(
        reverse("reconciliation-reference"),
        {"base_currency": "EUR", "quote_currency": "USD", "rate": "1.0850", "valid_from": "2026-01-01"},
    )
    assert answer.status_code == 302
    rate = FxRate.objects.get()
    assert AuditEntry.objects.filter(action="fx_rate.created").get().after["rate"] == "1.085"
    bad = manager.post(
        reverse("reconciliation-reference"),
        {"base_currency": "EUR", "quote_currency": "EUR", "rate": "1", "valid_from": "2026-01-01"},
    )
    assert bad.status_code == 200 and FxRate.objects.count() == 1
    manager.post(reverse("fx-rate-delete", args=[rate.pk]))
    assert not FxRate.objects.exists() and AuditEntry.objects.filter(action="fx_rate.deleted").exists()

    mapping = ValueMapping.objects.get(slug="crm-legal-entity-to-company-code")
    answer = manager.post(
        reverse("value-mapping-edit", args=[mapping.pk]),
        {"slug": "ignored", "name": mapping.name, "entries": '{"DE01": "1010", "AT01": "1110"}'},
    )
    assert answer.status_code == 302
    mapping.refresh_from_db()
    assert mapping.slug == "crm-legal-entity-to-company-code" and mapping.entries == {"AT01": "1110", "DE01": "1010"}
    assert AuditEntry.objects.filter(action="value_mapping.updated").exists()
    bad = manager.post(reverse("value-mapping-edit", args=[mapping.pk]), {"name": "x", "entries": "[1, 2]"})
    assert bad.status_code == 200 and "JSON object" in bad.context["form"].errors["entries"][0]
    # A mapping rules use cannot be deleted.
    assert manager.post(reverse("value-mapping-delete", args=[mapping.pk])).status_code == 302
    assert ValueMapping.objects.filter(pk=mapping.pk).exists()
