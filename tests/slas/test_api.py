"""GET /api/v1/sla-definitions/ and /api/v1/sla-clocks/, and managers' writes with version checks."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from console.lib.audit import AuditEntry
from slas.choices import ClockStatus
from slas.models import SlaClock, SlaDefinition
from slas.services.clocks import clocks_evaluate_transactions
from tests.factories import BusinessCalendarFactory, SlaDefinitionFactory
from tests.slas.conftest import T0, event

DEFINITIONS = "/api/v1/sla-definitions/"
CLOCKS = "/api/v1/sla-clocks/"
H = timedelta(hours=1)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def manager(role_user) -> APIClient:
    return api(role_user("manager", username="mona"))


@pytest.fixture
def calendar(db):
    return BusinessCalendarFactory(slug="de-office")


def payload(**overrides) -> dict:
    body = {
        "slug": "invoice-fast",
        "name": "Invoice within 4 business hours",
        "start_kind": "contract.approved",
        "stop_kind": "invoice.posted",
        "target_seconds": 4 * 3600,
        "calendar": "de-office",
        "pause_conditions": [{"case_category": "data_quality"}],
    }
    body.update(overrides)
    return body


def test_manager_creates_and_patches_with_version_checks(manager, calendar, reference):
    created = manager.post(DEFINITIONS, payload(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["version"] == 1 and body["target_seconds"] == 14400 and body["breach_category"] == "control"
    url = f"{DEFINITIONS}{body['id']}/"
    changed = manager.patch(url, {"version": 1, "target_seconds": 7200, "at_risk_percent": 60}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["version"], changed.json()["target_seconds"]) == (2, 7200)
    stale = manager.patch(url, {"version": 1, "name": "Late edit"}, format="json")
    assert stale.status_code == 409 and "version" in stale.json()["detail"]
    assert SlaDefinition.objects.get().name == "Invoice within 4 business hours"
    missing = manager.patch(url, {"name": "No version"}, format="json")
    assert missing.status_code == 400
    entry = AuditEntry.objects.filter(action="sla_definition.updated").get()
    assert entry.before["target_seconds"] == 14400 and entry.after["target_seconds"] == 7200
    assert entry.actor == "user:mona"
    queued = manager.patch(url, {"version": 2, "breach_queue": "billing"}, format="json")
    assert queued.status_code == 200 and queued.json()["breach_queue"] == "billing"
    assert SlaDefinition.objects.get().breach_queue.slug == "billing"
    assert AuditEntry.objects.filter(action="sla_definition.updated").last().after["breach_queue"] == "billing"
    unknown = manager.patch(url, {"version": 3, "breach_queue": "no-such-queue"}, format="json")
    assert unknown.status_code == 400 and "breach_queue" in unknown.json()["errors"]
    assert SlaDefinition.objects.get().breach_queue.slug == "billing"


@pytest.mark.parametrize("role", ["finance_ops", "compliance"])
def test_roles_that_may_not_edit_get_403_and_nothing_changes(role, role_user, calendar, reference):
    client = api(role_user(role))
    definition = SlaDefinitionFactory(calendar=calendar)
    assert client.get(DEFINITIONS).status_code == 200
    assert client.post(DEFINITIONS, payload(), format="json").status_code == 403
    answer = client.patch(f"{DEFINITIONS}{definition.pk}/", {"version": 1, "name": "x"}, format="json")
    assert answer.status_code == 403
    assert SlaDefinition.objects.count() == 1 and SlaDefinition.objects.get().name == definition.name


def test_integration_role_may_not_read(role_user, db):
    assert api(role_user("integration")).get(DEFINITIONS).status_code == 403
    assert api(role_user("integration")).get(CLOCKS).status_code == 403


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"stop_kind": "contract.approved"}, "stop_kind", "would also match the start"),
        ({"start_kind": "invoice.*"}, "stop_kind", "would also match the start"),
        ({"pause_conditions": [{"case": "x"}]}, "pause_conditions", "pause condition 1"),
        ({"breach_category": "nope"}, "breach_category", "no case category"),
        ({"target_seconds": 10}, "target_seconds", "greater than or equal to 60"),
        ({"calendar": "nowhere"}, "calendar", "does not exist"),
    ],
)
def test_bad_definitions_are_refused_per_field_and_nothing_is_saved(
    manager, calendar, reference, overrides, field, text
):
    answer = manager.post(DEFINITIONS, payload(**overrides), format="json")
    assert answer.status_code == 400
    assert text in " ".join(answer.json()["errors"][field])
    assert not SlaDefinition.objects.exists()
    assert not AuditEntry.objects.filter(action="sla_definition.created").exists()


@pytest.fixture
def clocks(reference, ingest, calendar, frozen_now):
    """Three clocks of one definition: met, running and at risk (DE01 and US01 entities)."""
    definition = SlaDefinitionFactory(slug="invoice-fast", calendar=calendar)
    other = SlaDefinitionFactory(slug="other", calendar=calendar, start_kind="order.created", stop_kind="invoice.paid")
    met = ingest(
        event("contract.approved", contract="A"), event("invoice.posted", hours=1, contract="A", invoice="I-A")
    )
    running = ingest(event("contract.approved", hours=2, contract="B"))
    us = event("contract.approved", contract="C")
    us["entity"] = "US01"
    risky = ingest(us)
    clocks_evaluate_transactions(txn_ids=met + running + risky, now=T0 + 3.25 * H)
    frozen_now(T0 + 3.5 * H)  # the API answers times as of now, not as of the last evaluation
    return {"definition": definition, "other": other, "met": met[0], "running": running[0], "risky": risky[0]}


def txns(response) -> list[int]:
    return [row["txn"] for row in response.json()["results"]]


def test_clock_filters(manager, clocks):
    everything = manager.get(CLOCKS)
    assert everything.status_code == 200
    assert txns(everything) == [clocks["running"], clocks["risky"], clocks["met"]] or sorted(
        txns(everything)
    ) == sorted([clocks["running"], clocks["risky"], clocks["met"]])
    assert txns(manager.get(CLOCKS, {"status": "met"})) == [clocks["met"]]
    assert txns(manager.get(CLOCKS, {"status": "at_risk"})) == [clocks["risky"]]  # 81% used at the evaluation
    assert sorted(txns(manager.get(CLOCKS, {"live": "true"}))) == sorted([clocks["running"], clocks["risky"]])
    assert txns(manager.get(CLOCKS, {"entity": "US01"})) == [clocks["risky"]]
    assert txns(manager.get(CLOCKS, {"definition": "other"})) == []
    assert len(txns(manager.get(CLOCKS, {"process": "order-to-cash"}))) == 3
    since = (T0 + H).isoformat()
    assert txns(manager.get(CLOCKS, {"started_since": since})) == [clocks["running"]]
    assert manager.get(CLOCKS, {"status": "sleeping"}).status_code == 400
    row = manager.get(CLOCKS, {"status": "at_risk"}).json()["results"][0]
    assert row["definition"] == "invoice-fast" and row["process"] == "order-to-cash"
    assert row["status"] == ClockStatus.AT_RISK and row["remaining_seconds"] == 1800


def test_clock_list_is_cursor_paginated(manager, clocks):
    first = manager.get(CLOCKS, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = manager.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]} == set(
        SlaClock.objects.values_list("id", flat=True)
    )


def test_schema_documents_the_sla_endpoints(manager, db):
    schema = manager.get("/api/v1/schema/", {"format": "json"}).json()
    assert "/api/v1/sla-definitions/" in schema["paths"] and "/api/v1/sla-clocks/" in schema["paths"]
    assert "409" in schema["paths"]["/api/v1/sla-definitions/{id}/"]["patch"]["responses"]
