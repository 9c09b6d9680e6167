"""The replay target and webhook pages and API: who may use them, secrets never shown again, versions, dry runs."""

import pytest
from rest_framework.test import APIClient

from console.lib.audit import AuditEntry
from exceptions.models import OutboundWebhook, ReplayTarget, WebhookDelivery
from exceptions.services import replay_target_create, webhook_create

TOKEN = "Bearer sup3r-s3cret-t0ken"
SIGNING = "whsec_9f8e7d6c5b4a"
SECRETS = ("sup3r-s3cret-t0ken", SIGNING)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "fernet:" not in text  # not even the sealed form


@pytest.fixture
def target(db) -> ReplayTarget:
    return replay_target_create(
        actor="user:ivan", system="sap-s4", url="https://erp.example/replay", auth_header=TOKEN, signing_secret=SIGNING
    )


@pytest.fixture
def webhook(db) -> OutboundWebhook:
    return webhook_create(actor="user:ivan", name="chat", url="https://chat.example/hook", signing_secret=SIGNING)


PAGES = (
    "/outbound/replay-targets/",
    "/outbound/replay-targets/new/",
    "/outbound/replay-targets/{target}/",
    "/outbound/replay-targets/{target}/dry-run/",
    "/outbound/replay-targets/{target}/log/",
    "/outbound/webhooks/",
    "/outbound/webhooks/new/",
    "/outbound/webhooks/{webhook}/",
    "/outbound/webhooks/{webhook}/dry-run/",
    "/outbound/webhooks/{webhook}/log/",
)


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "allowed"), [("integration", True), ("manager", True), ("admin", True)])
def test_integration_engineers_and_managers_use_the_pages_and_never_see_a_secret(
    client, role_user, target, webhook, role, allowed
):
    client.force_login(role_user(role))
    for page in PAGES:
        response = client.get(page.format(target=target.pk, webhook=webhook.pk))
        assert response.status_code == 200, page
        assert_no_secret(response.content.decode())
    listing = client.get("/outbound/replay-targets/").content.decode()
    assert "encrypted" in listing and "https://erp.example/replay" in listing
    home = client.get("/").content.decode()
    assert 'href="/outbound/replay-targets/"' in home
    assert ('href="/outbound/webhooks/"' in home) is (role != "manager")  # managers reach it from the targets page


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance_ops", "compliance"])
def test_other_roles_get_403_on_pages_and_api(client, role_user, target, webhook, role):
    user = role_user(role)
    client.force_login(user)
    for page in PAGES:
        assert client.get(page.format(target=target.pk, webhook=webhook.pk)).status_code == 403, page
    assert client.post("/outbound/replay-targets/new/", {"system": "x", "url": "https://x.example/"}).status_code == 403
    assert client.post(f"/outbound/replay-targets/{target.pk}/active/", {"is_active": "0"}).status_code == 403
    assert 'href="/outbound/replay-targets/"' not in client.get("/").content.decode()
    rest = api(user)
    assert rest.get("/api/v1/replay-targets/").status_code == 403
    assert (
        rest.patch(f"/api/v1/replay-targets/{target.pk}/", {"version": 1, "url": "https://x.example/"}).status_code
        == 403
    )
    assert rest.post("/api/v1/webhooks/", {"name": "x", "url": "https://x.example/"}, format="json").status_code == 403
    target.refresh_from_db()
    assert target.url == "https://erp.example/replay" and target.is_active
    anonymous = APIClient()
    assert anonymous.get("/api/v1/webhooks/").status_code in (401, 403)


@pytest.mark.django_db
def test_create_edit_and_disable_a_target_on_its_pages(client, role_user):
    client.force_login(role_user("integration", username="ivan"))
    bad = client.post(
        "/outbound/replay-targets/new/",
        {"system": "sap-s4", "url": "not a url", "method": "POST", "max_attempts": 5, "business_key_paths": "a..b"},
    )
    assert bad.status_code == 200 and not ReplayTarget.objects.exists()
    assert 'data-testid="form-error"' in bad.content.decode()
    created = client.post(
        "/outbound/replay-targets/new/",
        {
            "system": "sap-s4",
            "url": "https://erp.example/replay",
            "method": "POST",
            "auth_header": TOKEN,
            "signing_secret": "env:ERP_SIGNING_SECRET",
            "business_key_paths": "$.business_keys.invoice\n$.entity",
            "max_attempts": 4,
        },
    )
    target = ReplayTarget.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/outbound/replay-targets/{target.pk}/dry-run/"
    assert target.business_key_paths == ["$.business_keys.invoice", "$.entity"] and target.max_attempts == 4
    assert target.signing_secret == "env:ERP_SIGNING_SECRET" and target.auth_secret.startswith("fernet:")
    edit = client.get(f"/outbound/replay-targets/{target.pk}/").content.decode()
    assert_no_secret(edit)
    assert "env:ERP_SIGNING_SECRET" in edit  # a variable's name is configuration, shown so it can be checked

    # Saving without typing the secrets again keeps them; a stale version is refused, not overwritten.
    form = {"url": "https://erp.example/v2/replay", "method": "PUT", "max_attempts": 4, "version": 1}
    assert client.post(f"/outbound/replay-targets/{target.pk}/", form).status_code == 302
    target.refresh_from_db()
    assert target.url.endswith("/v2/replay") and target.auth_secret.startswith("fernet:") and target.version == 2
    stale = client.post(f"/outbound/replay-targets/{target.pk}/", {**form, "url": "https://other.example/"})
    assert stale.status_code == 200 and "changed since you loaded it" in stale.content.decode()
    cleared = {**form, "version": 2, "clear_auth_header": "on"}
    assert client.post(f"/outbound/replay-targets/{target.pk}/", cleared).status_code == 302
    target.refresh_from_db()
    assert target.auth_secret == "" and target.signing_secret == "env:ERP_SIGNING_SECRET"

    assert client.post(f"/outbound/replay-targets/{target.pk}/active/", {"is_active": "0"}).status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    entries = AuditEntry.objects.filter(action__startswith="replay_target.").order_by("id")
    actions = list(entries.values_list("action", flat=True))
    assert actions == [
        "replay_target.created",
        "replay_target.updated",
        "replay_target.updated",
        "replay_target.deactivated",
    ]
    assert all(e.actor == "user:ivan" for e in entries)


@pytest.mark.django_db
def test_the_dry_run_page_shows_the_request_with_the_secret_masked(client, role_user, target):
    client.force_login(role_user("manager"))
    page = client.get(f"/outbound/replay-targets/{target.pk}/dry-run/").content.decode()
    assert "POST https://erp.example/replay" in page and "Bearer ••••••••" in page and "Idempotency-Key" in page
    assert "a sample record" in page
    typed = client.post(f"/outbound/replay-targets/{target.pk}/dry-run/", {"payload": '{"invoice": "INV-77"}'})
    assert typed.status_code == 200 and "INV-77" in typed.content.decode()
    bad = client.post(f"/outbound/replay-targets/{target.pk}/dry-run/", {"payload": "[1"})
    assert "not valid JSON" in bad.content.decode() and 'data-testid="dry-run"' not in bad.content.decode()
    assert client.get("/outbound/webhooks/999999/dry-run/").status_code == 404


# ---- API ------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_creates_changes_and_disables_with_versions_and_never_returns_a_secret(role_user):
    client = api(role_user("integration", username="ivan"))
    created = client.post(
        "/api/v1/replay-targets/",
        {
            "system": "avalara",
            "url": "https://tax.example/replay",
            "auth_header": TOKEN,
            "signing_secret": SIGNING,
            "business_key_paths": ["$.business_keys.invoice", "$.entity"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["auth_header"] == "encrypted" and body["signing_secret"] == "encrypted" and body["version"] == 1
    assert_no_secret(created.content.decode())
    pk = body["id"]
    for answer in (
        client.get("/api/v1/replay-targets/"),
        client.get(f"/api/v1/replay-targets/{pk}/"),
        client.post(f"/api/v1/replay-targets/{pk}/dry-run/", {}, format="json"),
        client.get(f"/api/v1/replay-targets/{pk}/deliveries/"),
    ):
        assert answer.status_code == 200
        assert_no_secret(answer.content.decode())
    dry = client.post(f"/api/v1/replay-targets/{pk}/dry-run/", {"payload": {"a": 1}}, format="json").json()
    assert dry["method"] == "POST" and dry["headers"]["Authorization"] == "Bearer ••••••••" and dry["body"] == '{"a":1}'

    changed = client.patch(f"/api/v1/replay-targets/{pk}/", {"version": 1, "is_active": False}, format="json")
    assert changed.status_code == 200 and changed.json()["is_active"] is False and changed.json()["version"] == 2
    stale = client.patch(f"/api/v1/replay-targets/{pk}/", {"version": 1, "url": "https://x.example/"}, format="json")
    assert stale.status_code == 409
    assert (
        client.patch(f"/api/v1/replay-targets/{pk}/", {"url": "https://x.example/"}, format="json").status_code == 400
    )
    bad = client.post("/api/v1/replay-targets/", {"system": "x", "url": "ftp://x"}, format="json")
    assert bad.status_code == 400 and "url" in bad.json()["errors"]
    refused = client.get("/api/v1/replay-targets/?q=avalara")
    assert refused.status_code == 400 and refused.json()["detail"].startswith("unknown query parameter: q;")
    assert ReplayTarget.objects.get().url == "https://tax.example/replay"
    assert AuditEntry.objects.filter(action="replay_target.updated", actor="user:ivan").count() == 1


@pytest.mark.django_db
def test_the_webhook_api_and_its_delivery_log(role_user, webhook):
    client = api(role_user("manager"))
    listed = client.get("/api/v1/webhooks/")
    assert listed.status_code == 200 and listed.json()["results"][0]["signing_secret"] == "encrypted"
    assert_no_secret(listed.content.decode())
    WebhookDelivery.objects.create(webhook=webhook, event="assigned", body={"event": "assigned"}, status="failed")
    log = client.get(f"/api/v1/webhooks/{webhook.pk}/deliveries/").json()
    assert [d["status"] for d in log] == ["failed"]
    dry = client.post(f"/api/v1/webhooks/{webhook.pk}/dry-run/", {"event": "escalated"}, format="json")
    assert dry.status_code == 200 and dry.json()["headers"]["Closeloop-Signature"].endswith(",v1=••••••••")
    assert client.post(f"/api/v1/webhooks/{webhook.pk}/dry-run/", {"event": "x"}, format="json").status_code == 400
    patched = client.patch(
        f"/api/v1/webhooks/{webhook.pk}/",
        {"version": 1, "events": ["escalated"], "clear_signing_secret": True},
        format="json",
    )
    assert patched.status_code == 200 and patched.json()["signing_secret"] is None
    assert patched.json()["events"] == ["escalated"]
