"""The API of the ingest side and of process definitions: ingest sources and tokens, dead letters (list with filters,
replay, repair, discard, bulk replay), processes. Each write: done and audited, 403 for a role without the capability,
400 with a reason, and 409 where the object carries a version (dead letters)."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.lib.audit import AuditEntry, audit_verify
from tests.factories import canonical
from transactions.choices import DeadLetterStatus
from transactions.models import DeadLetter, Event, IngestSource, IngestToken, ProcessDefinition
from transactions.services import ingest_source_create, ingest_token_create

EVENTS = "/api/v1/events"
LETTERS = "/api/v1/dead-letters/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def last_audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action}"
    return entry


@pytest.fixture
def integration(role_user) -> APIClient:
    return api(role_user("integration", username="ingrid"))


@pytest.fixture
def manager(role_user) -> APIClient:
    return api(role_user("manager", username="mia"))


@pytest.fixture
def ops(role_user) -> APIClient:
    return api(role_user("finance_ops", username="olga"))


@pytest.fixture
def letters(send) -> list[DeadLetter]:
    """Three native records rejected for their currency, as a sender would post them."""
    body = send(EVENTS, [canonical(event_id=f"dl-{n}", currency="euro", amount=f"{n}.00") for n in range(3)]).json()
    assert body["accepted"] == 0 and len(body["rejected"]) == 3
    return list(DeadLetter.objects.order_by("id"))


# ---- Ingest sources and tokens --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_source_and_token_lifecycle_with_audit(integration):
    response = integration.post("/api/v1/ingest-sources/", {"name": "sap-event-mesh", "description": "BTP"})
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["name"] == "sap-event-mesh" and source["tokens"] == []
    assert last_audit("ingest_source.created").actor == "user:ingrid"

    created = integration.post(f"/api/v1/ingest-sources/{source['id']}/tokens/", {"label": "prod gateway"})
    assert created.status_code == 201, created.content
    assert "no-store" in created["Cache-Control"]
    token = created.json()
    assert token["token"].startswith(token["prefix"]) and token["label"] == "prod gateway"
    assert token["token"] not in str(last_audit("ingest_token.created").after)
    assert (
        Client()
        .post(EVENTS, "[]", content_type="application/json", headers={"Authorization": f"Bearer {token['token']}"})
        .status_code
        == 200
    )

    # Shown once: reads list the token by its prefix only.
    listed = integration.get(f"/api/v1/ingest-sources/{source['id']}/").json()["tokens"]
    assert listed[0]["prefix"] == token["prefix"] and "token" not in listed[0]

    revoked = integration.post(f"/api/v1/ingest-sources/{source['id']}/tokens/{token['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert last_audit("ingest_token.revoked").after == {"source": "sap-event-mesh"}
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert Client().post(EVENTS, "[]", content_type="application/json", headers=headers).status_code == 401
    assert audit_verify().ok


@pytest.mark.django_db
def test_source_bad_input_answers_400_with_a_reason(integration, source):
    for body, reason in (({"name": source.name}, "exists already"), ({"name": "has spaces"}, "name:"), ({}, "name:")):
        response = integration.post("/api/v1/ingest-sources/", body, format="json")
        assert response.status_code == 400 and reason in response.json()["detail"], response.content
    long_label = integration.post(f"/api/v1/ingest-sources/{source.pk}/tokens/", {"label": "x" * 101}, format="json")
    assert long_label.status_code == 400 and "label" in long_label.json()["detail"]
    assert IngestSource.objects.count() == 1 and not IngestToken.objects.exists()


@pytest.mark.django_db
def test_a_token_of_another_source_is_not_found(integration, source, token):
    other = ingest_source_create(name="other", actor="system:test")
    mine = IngestToken.objects.get(source=source)
    response = integration.post(f"/api/v1/ingest-sources/{other.pk}/tokens/{mine.pk}/revoke/")
    assert response.status_code == 404
    assert IngestToken.objects.get(pk=mine.pk).revoked_at is None


@pytest.mark.django_db
def test_sources_and_tokens_are_refused_without_manage_ingest(manager, ops, source):
    token, _ = ingest_token_create(source=source, actor="system:test")
    for client in (manager, ops):
        assert client.get("/api/v1/ingest-sources/").status_code == 403
        assert client.post("/api/v1/ingest-sources/", {"name": "x"}).status_code == 403
        assert client.post(f"/api/v1/ingest-sources/{source.pk}/tokens/", {}).status_code == 403
        assert client.post(f"/api/v1/ingest-sources/{source.pk}/tokens/{token.pk}/revoke/").status_code == 403
    assert IngestToken.objects.get(pk=token.pk).revoked_at is None


# ---- Dead letters ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dead_letters_list_with_filters(integration, letters, source):
    response = integration.get(LETTERS)
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == sorted((letter.pk for letter in letters), reverse=True)
    DeadLetter.objects.filter(pk=letters[0].pk).update(status=DeadLetterStatus.DISCARDED)
    pending = integration.get(LETTERS, {"status": "pending", "source": source.name, "reason": "CURRENCY"}).json()
    assert len(pending["results"]) == 2
    assert integration.get(LETTERS, {"channel": "otlp_logs"}).json()["results"] == []
    assert integration.get(LETTERS, {"source": "nobody"}).status_code == 400
    assert integration.get(LETTERS, {"q": "currency"}).status_code == 400


@pytest.mark.django_db
def test_replay_discard_refuse_a_stale_version_and_audit(integration, letters):
    first, second = letters[0], letters[1]
    stale = integration.post(f"{LETTERS}{first.pk}/discard/", {"version": first.version + 1}, format="json")
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
    done = integration.post(f"{LETTERS}{first.pk}/discard/", {"version": first.version}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "discarded"
    assert last_audit("dead_letter.discarded").object_id == str(first.pk)
    again = integration.post(f"{LETTERS}{first.pk}/discard/", {"version": first.version + 1}, format="json")
    assert again.status_code == 400 and "discarded already" in again.json()["detail"]

    # Replayed as stored, the record is refused again: the letter stays pending and says why.
    replay = integration.post(f"{LETTERS}{second.pk}/replay/", {"version": second.version}, format="json")
    assert replay.status_code == 200, replay.content
    assert replay.json()["status"] == "pending" and "rejected again" in replay.json()["last_replay_outcome"]
    assert last_audit("dead_letter.replayed").object_id == str(second.pk)
    stale_replay = integration.post(f"{LETTERS}{second.pk}/replay/", {"version": second.version}, format="json")
    assert stale_replay.status_code == 409
    missing = integration.post(f"{LETTERS}{second.pk}/replay/", {}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()["detail"]


@pytest.mark.django_db
def test_repair_replays_the_record_given(integration, letters):
    letter = letters[0]
    repaired = {**letter.raw, "currency": "EUR"}
    url = f"{LETTERS}{letter.pk}/repair/"
    assert integration.post(url, {"version": letter.version + 1, "raw": repaired}, format="json").status_code == 409
    for raw, reason in (([1, 2], "JSON object"), ("{not json", "not valid JSON")):
        bad = integration.post(url, {"version": letter.version, "raw": raw}, format="json")
        assert bad.status_code == 400 and reason in bad.json()["detail"], bad.content
    response = integration.post(url, {"version": letter.version, "raw": repaired}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "replayed" and response.json()["raw"]["currency"] == "EUR"
    assert Event.objects.get(event_id="dl-0").currency == "EUR"
    entry = last_audit("dead_letter.replayed")
    assert entry.before["raw"]["currency"] == "euro" and entry.after["raw"]["currency"] == "EUR"


@pytest.mark.django_db
def test_bulk_replay_replays_each_letter_alone(integration, letters):
    first, second, third = letters
    # Repaired at the source: the stored records now pass, as after a fix to the sender's mapping.
    for letter in (first, second):
        DeadLetter.objects.filter(pk=letter.pk).update(raw={**letter.raw, "currency": "EUR"})
    body = {
        "dead_letters": [
            {"id": first.pk, "version": first.version},
            {"id": second.pk, "version": second.version + 5},
            {"id": third.pk, "version": third.version},
            {"id": 999999, "version": 1},
        ]
    }
    response = integration.post(f"{LETTERS}replay-bulk/", body, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert list(result["replayed"]) == [str(first.pk)] and "stored as event" in result["replayed"][str(first.pk)]
    assert "changed since" in result["failed"][str(second.pk)]
    assert "rejected again" in result["failed"][str(third.pk)]
    assert result["failed"]["999999"] == "no such dead letter"
    assert AuditEntry.objects.filter(action="dead_letter.replayed").count() == 2

    twice = {"dead_letters": [{"id": first.pk, "version": 1}, {"id": first.pk, "version": 1}]}
    bad = integration.post(f"{LETTERS}replay-bulk/", twice, format="json")
    assert bad.status_code == 400 and "listed twice" in bad.json()["detail"]
    empty = integration.post(f"{LETTERS}replay-bulk/", {"dead_letters": []}, format="json")
    assert empty.status_code == 400 and "dead_letters" in empty.json()["detail"]


@pytest.mark.django_db
def test_dead_letters_are_refused_without_replay_dead_letters(manager, ops, letters):
    letter = letters[0]
    for client in (manager, ops):
        assert client.get(LETTERS).status_code == 403
        assert client.post(f"{LETTERS}{letter.pk}/replay/", {"version": 1}, format="json").status_code == 403
        assert client.post(f"{LETTERS}{letter.pk}/discard/", {"version": 1}, format="json").status_code == 403
        assert (
            client.post(
                f"{LETTERS}replay-bulk/", {"dead_letters": [{"id": letter.pk, "version": 1}]}, format="json"
            ).status_code
            == 403
        )
    assert not AuditEntry.objects.filter(action__startswith="dead_letter.").exists()


# ---- Process definitions --------------------------------------------------------------------------------------------

PROCESS = {
    "slug": "returns",
    "name": "Returns",
    "correlation_keys": ["order", "credit_memo"],
    "steps": [
        {"position": 1, "name": "Return requested", "kind_pattern": "return.requested", "allowance": "1d"},
        {
            "position": 2,
            "name": "Credit memo posted",
            "system": "sap-s4",
            "kind_pattern": "credit_memo.posted",
            "allowance": "2d 4h",
            "requires_approval": True,
            "approval_step": "returns-desk",
            "allowed_approvers": ["manager", "j.doe"],
        },
    ],
}


@pytest.mark.django_db
def test_process_create_and_change_with_audit(manager):
    response = manager.post("/api/v1/processes/", PROCESS, format="json")
    assert response.status_code == 201, response.content
    process = response.json()
    assert process["correlation_keys"] == ["order", "credit_memo"] and process["is_active"]
    assert [s["allowance"] for s in process["steps"]] == ["1d", "2d 4h"]
    assert process["steps"][0]["required"] is True and process["steps"][1]["allowed_approvers"] == ["manager", "j.doe"]
    assert last_audit("process.created").after["steps"][1]["approval_step"] == "returns-desk"

    url = f"/api/v1/processes/{process['id']}/"
    renamed = manager.patch(url, {"name": "Customer returns"}, format="json")
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "Customer returns" and len(renamed.json()["steps"]) == 2
    entry = last_audit("process.updated")
    assert entry.before["name"] == "Returns" and entry.after["steps"] == entry.before["steps"]

    one_step = manager.patch(url, {"steps": PROCESS["steps"][:1]}, format="json")
    assert one_step.status_code == 200 and len(one_step.json()["steps"]) == 1
    assert len(last_audit("process.updated").after["steps"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"correlation_keys": ["customer"]}, "broad key"),
        ({"steps": []}, "at least one step"),
        ({"steps": [{**PROCESS["steps"][0], "allowance": "soon"}]}, "steps[0].allowance"),
        ({"steps": [PROCESS["steps"][0], PROCESS["steps"][0]]}, "same position"),
        ({"steps": "none"}, "steps: a list"),
        ({"slug": "Not A Slug"}, "slug:"),
    ],
)
def test_process_bad_input_answers_400_with_a_reason(manager, change, reason):
    response = manager.post("/api/v1/processes/", {**PROCESS, **change}, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"], response.content
    assert not ProcessDefinition.objects.filter(slug__iexact=change.get("slug", "returns")).exists()


@pytest.mark.django_db
def test_processes_are_refused_without_edit_rules(integration, ops):
    for client in (integration, ops):
        assert client.get("/api/v1/processes/").status_code == 403
        assert client.post("/api/v1/processes/", PROCESS, format="json").status_code == 403
    assert not AuditEntry.objects.filter(action__startswith="process.").exists()
