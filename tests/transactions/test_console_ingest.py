"""Console pages of the ingest side: sources, tokens, aliases, extraction and redaction rules, dead letters, health."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from tests.factories import canonical
from transactions.choices import Channel, DeadLetterStatus, RedactionAction, RuleAction
from transactions.models import (
    DeadLetter,
    Event,
    ExtractionRule,
    IngestBatch,
    IngestSource,
    IngestToken,
    RedactionRule,
    SourceAlias,
)
from transactions.selectors import feed_activity_list, feed_health_list
from transactions.services import (
    extraction_rule_create,
    ingest_source_create,
    ingest_token_create,
    redaction_rule_create,
    source_alias_create,
)
from transactions.views.ingest import DEAD_LETTER_PAGE_SIZE

EVENTS = "/api/v1/events"
TOKEN_RE = re.compile(r"clt_[A-Za-z0-9_-]{20,}")
OTHER_ROLES = ["finance_ops", "manager", "compliance"]


@pytest.fixture
def console(role_user) -> Client:
    client = Client()
    client.force_login(role_user("integration", username="ingrid"))
    return client


def last_audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action}"
    return entry


def page_text(response) -> str:
    return response.content.decode()


def post_events(token: str, records: list) -> object:
    return Client().post(
        EVENTS, json.dumps(records), content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )


# ---- Access -----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(db):
    """One of everything the pages show, for the access checks."""
    source = ingest_source_create(name="crm-gateway", actor="system:test")
    token, _ = ingest_token_create(source=source, actor="system:test", label="prod")
    alias = source_alias_create(source=source, pattern="/sap/s4/*", system="sap-s4", actor="system:test")
    rule = extraction_rule_create(
        actor="system:test",
        source=None,
        kind_pattern="sap.*",
        action=RuleAction.BUSINESS_KEY,
        path="data.id",
        key_type="order",
    )
    redaction = redaction_rule_create(actor="system:test", source=None, pattern="*email*", action=RedactionAction.MASK)
    letter = DeadLetter.objects.create(
        source=source, channel=Channel.NATIVE, received_at=timezone.now(), reason="currency is bad", raw={"x": 1}
    )
    return {
        "source": source.pk,
        "token": token.pk,
        "alias": alias.pk,
        "rule": rule.pk,
        "redaction": redaction.pk,
        "letter": letter.pk,
    }


PAGES = [
    ("feed-health", {}),
    ("ingest-source-list", {}),
    ("ingest-source-detail", {"source_id": "source"}),
    ("ingest-token-revoke", {"source_id": "source", "token_id": "token"}),
    ("source-alias-delete", {"source_id": "source", "alias_id": "alias"}),
    ("extraction-rule-list", {}),
    ("extraction-rule-create", {}),
    ("extraction-rule-edit", {"rule_id": "rule"}),
    ("extraction-rule-delete", {"rule_id": "rule"}),
    ("redaction-rule-list", {}),
    ("redaction-rule-create", {}),
    ("redaction-rule-edit", {"rule_id": "redaction"}),
    ("redaction-rule-delete", {"rule_id": "redaction"}),
    ("dead-letter-list", {}),
    ("dead-letter-detail", {"dead_letter_id": "letter"}),
]
POSTS = [
    ("ingest-source-list", {}, {"name": "intruder"}),
    ("ingest-token-create", {"source_id": "source"}, {"label": "x"}),
    ("ingest-token-revoke", {"source_id": "source", "token_id": "token"}, {}),
    ("source-alias-create", {"source_id": "source"}, {"pattern": "/x", "system": "x"}),
    ("source-alias-delete", {"source_id": "source", "alias_id": "alias"}, {}),
    ("extraction-rule-create", {}, {"position": 1, "kind_pattern": "*", "action": "mark_failed"}),
    ("extraction-rule-activate", {"rule_id": "rule"}, {"is_active": "0"}),
    ("extraction-rule-delete", {"rule_id": "rule"}, {}),
    ("extraction-rule-test", {}, {"action": "mark_failed", "sample": "{}"}),
    ("redaction-rule-create", {}, {"pattern": "*", "action": "drop", "is_active": "on"}),
    ("redaction-rule-delete", {"rule_id": "redaction"}, {}),
    ("dead-letter-replay", {"dead_letter_id": "letter"}, {"version": 1}),
    ("dead-letter-repair", {"dead_letter_id": "letter"}, {"version": 1, "raw": "{}"}),
    ("dead-letter-discard", {"dead_letter_id": "letter"}, {"version": 1}),
]


def url_for(world: dict, name: str, kwargs: dict) -> str:
    return reverse(name, kwargs={key: world[ref] for key, ref in kwargs.items()})


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["integration", "admin"])
@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_answers_the_integration_role_and_admin(client, role_user, world, role, name, kwargs):
    client.force_login(role_user(role))
    response = client.get(url_for(world, name, kwargs))
    assert response.status_code == 200
    assert not re.search(r'(src|href)="(https?:)?//', page_text(response)), "a page must load nothing from elsewhere"


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_other_roles_get_403(client, role_user, world, role, name, kwargs):
    client.force_login(role_user(role))
    assert client.get(url_for(world, name, kwargs)).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
def test_other_roles_cannot_change_anything(client, role_user, world, role):
    client.force_login(role_user(role))
    audit_before = AuditEntry.objects.count()
    for name, kwargs, data in POSTS:
        assert client.post(url_for(world, name, kwargs), data).status_code == 403, name
    assert AuditEntry.objects.count() == audit_before
    assert IngestToken.objects.get().revoked_at is None
    assert SourceAlias.objects.count() == ExtractionRule.objects.count() == RedactionRule.objects.count() == 1
    assert DeadLetter.objects.get().status == DeadLetterStatus.PENDING


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client, world):
    for name, kwargs in PAGES:
        response = client.get(url_for(world, name, kwargs))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), name


NAV_LABELS = ["Feed health", "Ingest sources", "Extraction rules", "Redaction rules", "Dead letters"]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "sees"), [("integration", True), ("admin", True)] + [(r, False) for r in OTHER_ROLES])
def test_navigation_shows_the_pages_to_whom_may_use_them(client, role_user, role, sees):
    client.force_login(role_user(role))
    html = page_text(client.get(reverse("home")))
    nav = html[html.index('data-testid="nav"') :] if 'data-testid="nav"' in html else ""
    for label in NAV_LABELS:
        assert (f">{label}</a>" in nav) is sees, (role, label)
    if sees:
        assert nav.index("Feed health") < nav.index("Ingest sources") < nav.index("Dead letters")


# ---- Sources and tokens -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_source_is_created_through_the_page_and_audited(console):
    response = console.post(reverse("ingest-source-list"), {"name": "sap-event-mesh", "description": "S/4 events"})
    source = IngestSource.objects.get(name="sap-event-mesh")
    assert response.status_code == 302 and response["Location"] == reverse("ingest-source-detail", args=[source.pk])
    entry = last_audit("ingest_source.created")
    assert entry.actor == "user:ingrid" and entry.object_id == str(source.pk)

    again = console.post(reverse("ingest-source-list"), {"name": "sap-event-mesh"})
    assert again.status_code == 200 and "exists already" in page_text(again)
    bad = console.post(reverse("ingest-source-list"), {"name": "not a slug!"})
    assert bad.status_code == 200 and "is-invalid" in page_text(bad)
    assert IngestSource.objects.count() == 1

    listing = page_text(console.get(reverse("ingest-source-list")))
    assert "sap-event-mesh" in listing and "never" in listing


@pytest.mark.django_db
def test_token_is_shown_once_works_and_can_be_revoked(console):
    source = ingest_source_create(name="billing", actor="system:test")
    response = console.post(reverse("ingest-token-create", args=[source.pk]), {"label": "prod gateway"})
    assert response.status_code == 200
    html = page_text(response)
    tokens = set(TOKEN_RE.findall(html))
    assert len(tokens) == 1
    clear = tokens.pop()
    assert f"Authorization: Bearer {clear}" in html
    assert "no-store" in response["Cache-Control"]
    token = IngestToken.objects.get(source=source)
    assert token.label == "prod gateway" and token.created_by == "user:ingrid" and clear.startswith(token.prefix)
    assert clear not in json.dumps(last_audit("ingest_token.created").after)

    detail = page_text(console.get(reverse("ingest-source-detail", args=[source.pk])))
    assert clear not in detail and token.prefix in detail and "prod gateway" in detail

    accepted = post_events(clear, [canonical(event_id="t-1")])
    assert accepted.status_code == 200 and accepted.json()["accepted"] == 1
    token.refresh_from_db()
    assert token.last_used_at is not None

    revoke_url = reverse("ingest-token-revoke", args=[source.pk, token.pk])
    confirm = console.get(revoke_url)
    assert confirm.status_code == 200 and "401" in page_text(confirm)
    done = console.post(revoke_url, follow=True)
    assert "revoked" in page_text(done)
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = last_audit("ingest_token.revoked")
    assert entry.actor == "user:ingrid" and entry.object_id == str(token.pk)
    assert post_events(clear, [canonical(event_id="t-2")]).status_code == 401

    listing = page_text(console.get(reverse("ingest-source-list")))
    row = listing[listing.index("billing") :]
    assert re.search(r'text-end">0</td>\s*<td class="text-end text-muted">1</td>', row)  # active 0 of 1


@pytest.mark.django_db
def test_token_of_another_source_is_404(console):
    first = ingest_source_create(name="first", actor="system:test")
    second = ingest_source_create(name="second", actor="system:test")
    token, _ = ingest_token_create(source=first, actor="system:test")
    assert console.post(reverse("ingest-token-revoke", args=[second.pk, token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_alias_add_and_delete_are_audited(console, send, source):
    url = reverse("source-alias-create", args=[source.pk])
    response = console.post(url, {"pattern": "/sap/s4/prod/*", "system": "sap-s4"})
    assert response.status_code == 302
    alias = SourceAlias.objects.get(source=source)
    assert (alias.pattern, alias.system) == ("/sap/s4/prod/*", "sap-s4")
    assert last_audit("source_alias.created").after == {
        "source": source.name,
        "pattern": "/sap/s4/prod/*",
        "system": "sap-s4",
    }

    duplicate = console.post(url, {"pattern": "/sap/s4/prod/*", "system": "other"})
    assert duplicate.status_code == 200 and "has an alias for" in page_text(duplicate)
    bad = console.post(url, {"pattern": "/sap/*/prod", "system": "x"})
    assert bad.status_code == 200 and "only one *, at the end" in page_text(bad)
    assert SourceAlias.objects.count() == 1

    # The alias names the system of CloudEvents from that source.
    cloudevent = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/sap/s4/prod/100",
        "type": "sap.s4.salesorder.created",
        "time": "2026-05-18T10:15:02Z",
        "data": {"SalesOrder": "42"},
    }
    result = send("/api/v1/cloudevents", cloudevent, content_type="application/cloudevents+json")
    assert result.status_code in (200, 202), result.content
    assert Event.objects.get().system == "sap-s4"

    delete_url = reverse("source-alias-delete", args=[source.pk, alias.pk])
    assert console.get(delete_url).status_code == 200
    assert console.post(delete_url).status_code == 302
    assert not SourceAlias.objects.exists()
    entry = last_audit("source_alias.deleted")
    assert entry.object_id == str(alias.pk) and entry.before["pattern"] == "/sap/s4/prod/*" and entry.after is None


# ---- Extraction and redaction rules -------------------------------------------------------------------------------


def rule_data(**overrides) -> dict:
    data = {
        "position": 10,
        "source": "",
        "kind_pattern": "sap.*",
        "action": RuleAction.BUSINESS_KEY,
        "path": "data.SalesOrder",
        "key_type": "order",
        "description": "S/4 sales orders",
        "is_active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"path": "data..SalesOrder"}, "cannot read path"),
        ({"path": 'attributes["open'}, "cannot read path"),
        ({"path": ""}, "needs a JSON path"),
        ({"key_type": ""}, "needs a key type"),
        ({"key_type": "Sales Order"}, "lower-case letters"),
    ],
)
def test_extraction_rule_form_refuses_what_would_not_work(console, overrides, field_error):
    response = console.post(reverse("extraction-rule-create"), rule_data(**overrides))
    assert response.status_code == 200
    assert field_error in page_text(response) and "is-invalid" in page_text(response)
    assert not ExtractionRule.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="extraction_rule.").exists()


@pytest.mark.django_db
def test_mark_failed_rule_needs_no_path(console):
    response = console.post(reverse("extraction-rule-create"), rule_data(action="mark_failed", path="", key_type=""))
    assert response.status_code == 302
    assert ExtractionRule.objects.get().action == RuleAction.MARK_FAILED


@pytest.mark.django_db
def test_extraction_rule_lifecycle_is_audited_and_applied_at_ingest(console, send, source):
    assert console.post(reverse("extraction-rule-create"), rule_data()).status_code == 302
    rule = ExtractionRule.objects.get()
    created = last_audit("extraction_rule.created")
    assert created.actor == "user:ingrid" and created.after["path"] == "data.SalesOrder" and created.before is None

    listing = page_text(console.get(reverse("extraction-rule-list")))
    assert "data.SalesOrder" in listing and "S/4 sales orders" in listing

    edit = reverse("extraction-rule-edit", args=[rule.pk])
    assert "data.SalesOrder" in page_text(console.get(edit))
    changed = rule_data(path="data.SalesOrder.id", source=source.pk, position=5)
    assert console.post(edit, changed).status_code == 302
    updated = last_audit("extraction_rule.updated")
    assert updated.before["path"] == "data.SalesOrder" and updated.after["path"] == "data.SalesOrder.id"
    assert updated.before["source"] is None and updated.after["source"] == source.name
    entries = AuditEntry.objects.count()
    assert console.post(edit, changed).status_code == 302  # no change, no entry
    assert AuditEntry.objects.count() == entries

    record = canonical(event_id="k-1", kind="sap.order.created", business_keys={}, data={"SalesOrder": {"id": "00042"}})
    assert send(EVENTS, [record]).json()["accepted"] == 1
    assert Event.objects.get(event_id="k-1").business_keys == {"order": "42"}

    activate = reverse("extraction-rule-activate", args=[rule.pk])
    console.post(activate, {"is_active": "0"})
    rule.refresh_from_db()
    assert not rule.is_active and last_audit("extraction_rule.deactivated").after["is_active"] is False
    send(EVENTS, [{**record, "event_id": "k-2"}])
    assert Event.objects.get(event_id="k-2").business_keys == {}
    console.post(activate, {"is_active": "1"})
    rule.refresh_from_db()
    assert rule.is_active and last_audit("extraction_rule.activated").before["is_active"] is False

    delete = reverse("extraction-rule-delete", args=[rule.pk])
    assert "Delete rule" in page_text(console.get(delete))
    assert console.post(delete).status_code == 302
    assert not ExtractionRule.objects.exists()
    deleted = last_audit("extraction_rule.deleted")
    assert deleted.object_id == str(rule.pk) and deleted.before["path"] == "data.SalesOrder.id"


@pytest.mark.django_db
def test_rules_are_listed_in_position_order(console):
    for position, key in ((30, "third"), (10, "first"), (20, "second")):
        extraction_rule_create(
            actor="system:test",
            source=None,
            kind_pattern="*",
            action="business_key",
            path=f"data.{key}",
            key_type=key,
            position=position,
        )
    html = page_text(console.get(reverse("extraction-rule-list")))
    assert html.index("data.first") < html.index("data.second") < html.index("data.third")


@pytest.mark.django_db
def test_rule_test_box_shows_the_keys_a_rule_would_extract(console):
    url = reverse("extraction-rule-test")
    sample = {"type": "sap.s4.salesorder.created", "data": {"SalesOrder": "0000012345"}}
    data = {"kind_pattern": "sap.s4.*", "action": "business_key", "path": "data.SalesOrder", "key_type": "order"}
    response = console.post(url, {**data, "sample": json.dumps(sample)}, headers={"HX-Request": "true"})
    html = page_text(response)
    assert response.status_code == 200 and "<html" not in html
    assert 'data-testid="extracted-key">12345<' in html and "matches" in html

    missing = page_text(console.post(url, {**data, "path": "data.Nope", "sample": json.dumps(sample)}))
    assert "Nothing at this path" in missing and "<html" in missing  # without htmx, a whole page
    broken = page_text(console.post(url, {**data, "sample": "{not json"}, headers={"HX-Request": "true"}))
    assert "not valid JSON" in broken
    bad_path = page_text(console.post(url, {**data, "path": "data..x", "sample": "{}"}, headers={"HX-Request": "true"}))
    assert "cannot read path" in bad_path
    failed = page_text(
        console.post(url, {"kind_pattern": "*.failed", "action": "mark_failed", "sample": '{"type": "x.failed"}'})
    )
    assert "marked failed" in failed


@pytest.mark.django_db
def test_redaction_rule_lifecycle_is_audited_and_applied_at_ingest(console, send, source):
    create = reverse("redaction-rule-create")
    empty = console.post(create, {"pattern": "  ", "action": "mask", "is_active": "on"})
    assert empty.status_code == 200 and "is-invalid" in page_text(empty)
    bad_action = console.post(create, {"pattern": "*email*", "action": "shred", "is_active": "on"})
    assert bad_action.status_code == 200 and "is-invalid" in page_text(bad_action)
    assert not RedactionRule.objects.exists()

    assert console.post(create, {"pattern": "*email*", "action": "mask", "is_active": "on"}).status_code == 302
    rule = RedactionRule.objects.get()
    assert last_audit("redaction_rule.created").after == {
        "source": None,
        "pattern": "*email*",
        "action": "mask",
        "is_active": True,
    }
    assert "*email*" in page_text(console.get(reverse("redaction-rule-list")))
    send(EVENTS, [canonical(event_id="r-1", attributes={"contact_email": "a@b.example"})])
    assert Event.objects.get(event_id="r-1").attributes == {"contact_email": "***"}

    edit = reverse("redaction-rule-edit", args=[rule.pk])
    assert console.post(edit, {"pattern": "*email*", "action": "hash", "source": source.pk}).status_code == 302
    updated = last_audit("redaction_rule.updated")
    assert updated.before["action"] == "mask" and updated.after["action"] == "hash"
    assert updated.before["is_active"] is True and updated.after["is_active"] is False  # unchecked box

    delete = reverse("redaction-rule-delete", args=[rule.pk])
    assert console.post(delete).status_code == 302
    assert not RedactionRule.objects.exists()
    assert last_audit("redaction_rule.deleted").before["action"] == "hash"


# ---- Dead letters -------------------------------------------------------------------------------------------------


@pytest.fixture
def bad_letter(send) -> DeadLetter:
    """A native record rejected for its currency, as a sender would post it."""
    body = send(EVENTS, [canonical(event_id="dl-1", currency="euro")]).json()
    assert body["accepted"] == 0 and "currency" in body["rejected"][0]["error"]
    return DeadLetter.objects.get()


@pytest.mark.django_db
def test_repair_and_replay_stores_the_event(console, bad_letter):
    url = reverse("dead-letter-detail", args=[bad_letter.pk])
    html = page_text(console.get(url))
    assert "currency must be an ISO 4217 code" in html
    assert "&quot;currency&quot;: &quot;euro&quot;" in html  # pretty-printed record, in the page and the textarea

    repaired = {**bad_letter.raw, "currency": "EUR"}
    response = console.post(
        reverse("dead-letter-repair", args=[bad_letter.pk]),
        {"version": bad_letter.version, "raw": json.dumps(repaired, indent=2)},
        follow=True,
    )
    event = Event.objects.get(event_id="dl-1")
    assert event.currency == "EUR"
    html = page_text(response)
    assert response.redirect_chain[-1][0] == url
    assert f"Replayed: stored as event {event.pk}" in html
    bad_letter.refresh_from_db()
    assert bad_letter.status == DeadLetterStatus.REPLAYED and bad_letter.replay_count == 1
    assert bad_letter.raw["currency"] == "EUR"
    assert 'data-testid="replay-history">1;' in html and "dead_letter.replayed" in html
    entry = last_audit("dead_letter.replayed")
    assert entry.actor == "user:ingrid" and entry.before["raw"]["currency"] == "euro"
    assert 'data-testid="repair-replay"' not in html  # nothing left to do


@pytest.mark.django_db
def test_replay_as_is_that_fails_again_says_so(console, bad_letter):
    response = console.post(
        reverse("dead-letter-replay", args=[bad_letter.pk]), {"version": bad_letter.version}, follow=True
    )
    html = page_text(response)
    assert "rejected again: currency must be an ISO 4217 code" in html
    bad_letter.refresh_from_db()
    assert bad_letter.status == DeadLetterStatus.PENDING and bad_letter.replay_count == 1 and bad_letter.version == 2
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_stale_version_is_a_visible_error_and_changes_nothing(console, bad_letter):
    console.post(reverse("dead-letter-replay", args=[bad_letter.pk]), {"version": 1})  # version 1 -> 2
    bad_letter.refresh_from_db()
    letters, audit = DeadLetter.objects.count(), AuditEntry.objects.count()

    stale = console.post(reverse("dead-letter-replay", args=[bad_letter.pk]), {"version": 1}, follow=True)
    assert stale.status_code == 200 and "changed since you opened it" in page_text(stale)
    repaired = json.dumps({**bad_letter.raw, "currency": "EUR"})
    stale_repair = console.post(reverse("dead-letter-repair", args=[bad_letter.pk]), {"version": 1, "raw": repaired})
    html = page_text(stale_repair)
    assert stale_repair.status_code == 409 and "changed since you opened it" in html
    assert "&quot;EUR&quot;" in html  # the user's edit is kept
    assert 'name="version" value="2"' in html  # now based on what the page shows
    stale_discard = console.post(reverse("dead-letter-discard", args=[bad_letter.pk]), {"version": 1}, follow=True)
    assert "changed since you opened it" in page_text(stale_discard)

    fresh = DeadLetter.objects.get(pk=bad_letter.pk)
    assert (fresh.status, fresh.version, fresh.replay_count) == (DeadLetterStatus.PENDING, 2, 1)
    assert DeadLetter.objects.count() == letters and AuditEntry.objects.count() == audit
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "error"), [("{not json", "not valid JSON"), ("[1, 2]", "a record is a JSON object")])
def test_repair_with_bad_json_is_a_form_error(console, bad_letter, raw, error):
    response = console.post(reverse("dead-letter-repair", args=[bad_letter.pk]), {"version": 1, "raw": raw})
    assert response.status_code == 200 and error in page_text(response)
    bad_letter.refresh_from_db()
    assert bad_letter.version == 1 and bad_letter.replay_count == 0


@pytest.mark.django_db
def test_discard(console, bad_letter):
    response = console.post(reverse("dead-letter-discard", args=[bad_letter.pk]), {"version": 1}, follow=True)
    assert f"Dead letter {bad_letter.pk} discarded" in page_text(response)
    bad_letter.refresh_from_db()
    assert bad_letter.status == DeadLetterStatus.DISCARDED
    assert last_audit("dead_letter.discarded").actor == "user:ingrid"
    again = console.post(reverse("dead-letter-replay", args=[bad_letter.pk]), {"version": 2}, follow=True)
    assert again.status_code == 200 and "is discarded already" in page_text(again)
    missing_version = console.post(reverse("dead-letter-discard", args=[bad_letter.pk]), {}, follow=True)
    assert "missing the dead letter&#x27;s version" in page_text(missing_version)


@pytest.mark.django_db
def test_undecodable_body_is_shown_and_cannot_be_replayed(console, send):
    assert send(EVENTS, b"[{not json").status_code == 400
    letter = DeadLetter.objects.get()
    html = page_text(console.get(reverse("dead-letter-detail", args=[letter.pk])))
    assert "[{not json" in html and 'data-testid="replay"' not in html and 'data-testid="discard"' in html
    response = console.post(reverse("dead-letter-replay", args=[letter.pk]), {"version": 1}, follow=True)
    assert "undecodable body" in page_text(response)


def make_letters(source: IngestSource, n: int, *, start, **fields) -> list[DeadLetter]:
    return DeadLetter.objects.bulk_create(
        DeadLetter(
            source=source,
            channel=fields.get("channel", Channel.NATIVE),
            received_at=start + timedelta(seconds=i),
            reason=fields.get("reason", f"reason {i}"),
            raw={"i": i},
            status=fields.get("status", DeadLetterStatus.PENDING),
        )
        for i in range(n)
    )


@pytest.mark.django_db
def test_dead_letter_list_filters_newest_first_and_pages_by_keyset(console, source):
    other = ingest_source_create(name="other", actor="system:test")
    start = timezone.now() - timedelta(hours=2)
    make_letters(source, DEAD_LETTER_PAGE_SIZE + 5, start=start)
    make_letters(other, 2, start=start, channel=Channel.CLOUDEVENTS, reason="CloudEvents source too long")
    make_letters(source, 3, start=start, status=DeadLetterStatus.REPLAYED, reason="old replayed")
    url = reverse("dead-letter-list")

    def ids(response) -> list[int]:
        return [int(i) for i in re.findall(r'<td><a href="/dead-letters/(\d+)/">', page_text(response))]

    first = console.get(url)
    first_ids = ids(first)
    assert len(first_ids) == DEAD_LETTER_PAGE_SIZE
    pending = DeadLetter.objects.filter(status="pending").order_by("-received_at", "-id")
    assert first_ids == [d.pk for d in pending[:DEAD_LETTER_PAGE_SIZE]]  # pending by default, newest first
    older = re.search(r'href="\?([^"]*before=\d+)"', page_text(first)).group(1).replace("&amp;", "&")
    second_ids = ids(console.get(f"{url}?{older}"))
    assert second_ids == [d.pk for d in pending[DEAD_LETTER_PAGE_SIZE:]] and not set(first_ids) & set(second_ids)

    assert len(ids(console.get(url, {"status": "replayed"}))) == 3
    assert len(ids(console.get(url, {"status": ""}))) == DEAD_LETTER_PAGE_SIZE
    assert len(ids(console.get(url, {"source": other.pk}))) == 2
    assert len(ids(console.get(url, {"channel": Channel.CLOUDEVENTS}))) == 2
    assert len(ids(console.get(url, {"reason": "TOO LONG"}))) == 2
    assert len(ids(console.get(url, {"status": "", "reason": "old replayed"}))) == 3
    assert console.get(url, {"status": "bogus"}).status_code == 200


# ---- Feed health --------------------------------------------------------------------------------------------------


def batch(source, at, *, accepted=0, rejected=0, duplicates=0, correlated=True) -> IngestBatch:
    return IngestBatch.objects.create(
        source=source,
        channel=Channel.NATIVE,
        received_at=at,
        accepted=accepted,
        rejected=rejected,
        duplicates=duplicates,
        correlated_at=at if correlated else None,
    )


@pytest.fixture
def known_feed(db):
    now = timezone.now().replace(microsecond=0)
    busy = ingest_source_create(name="busy", actor="system:test")
    quiet = ingest_source_create(name="quiet", actor="system:test")
    ingest_source_create(name="silent", actor="system:test")
    batch(busy, now - timedelta(minutes=5), accepted=30, rejected=2, duplicates=1)
    batch(busy, now - timedelta(minutes=30), accepted=60, rejected=3, correlated=False)
    batch(busy, now - timedelta(hours=3), accepted=100, rejected=10, duplicates=4, correlated=False)
    batch(busy, now - timedelta(hours=30), accepted=999, rejected=999, duplicates=999)  # outside every window
    batch(quiet, now - timedelta(hours=2), rejected=7)  # accepted nothing: never correlated, not a lag
    make_letters(busy, 2, start=now - timedelta(minutes=5))
    make_letters(busy, 1, start=now - timedelta(minutes=5), status=DeadLetterStatus.DISCARDED)
    make_letters(quiet, 1, start=now - timedelta(hours=2))
    return now


@pytest.mark.django_db
def test_feed_health_numbers_match_the_batches(known_feed, django_assert_max_num_queries):
    now = known_feed
    with django_assert_max_num_queries(4):
        rows = {row.source.name: row for row in feed_health_list(now=now)}
    busy, quiet, silent = rows["busy"], rows["quiet"], rows["silent"]
    assert busy.last_seen == now - timedelta(minutes=5)
    assert busy.per_minute_15m == pytest.approx(30 / 15) and busy.per_minute_1h == pytest.approx(90 / 60)
    assert (busy.rejected_1h, busy.rejected_24h, busy.duplicates_1h, busy.duplicates_24h) == (5, 15, 1, 5)
    assert busy.pending_dead_letters == 2
    assert busy.oldest_uncorrelated_at == now - timedelta(hours=3)
    assert busy.correlation_lag == timedelta(hours=3)
    assert (quiet.per_minute_1h, quiet.rejected_1h, quiet.rejected_24h, quiet.pending_dead_letters) == (0, 0, 7, 1)
    assert quiet.correlation_lag is None
    assert silent.last_seen is None and silent.per_minute_15m == 0 and silent.pending_dead_letters == 0

    activity = feed_activity_list(now=now)
    assert set(activity) == {rows["busy"].source.pk, rows["quiet"].source.pk}
    buckets = activity[rows["busy"].source.pk]
    assert len(buckets) == 144 and buckets == sorted(buckets, key=lambda b: b.start)
    assert sum(b.accepted for b in buckets) == 190 and sum(b.rejected for b in buckets) == 15
    assert buckets[-1].start <= now < buckets[-1].start + timedelta(minutes=10)
    assert next(b for b in buckets if b.start <= now - timedelta(minutes=5) < b.start + timedelta(minutes=10)).accepted
    assert sum(b.rejected for b in activity[rows["quiet"].source.pk]) == 7


@pytest.mark.django_db
def test_feed_health_query_count_does_not_grow_with_sources(known_feed, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        feed_health_list(now=known_feed)
        feed_activity_list(now=known_feed)
    for i in range(10):
        source = ingest_source_create(name=f"more-{i}", actor="system:test")
        batch(source, known_feed - timedelta(minutes=i), accepted=i, correlated=False)
    with django_assert_num_queries(len(few.captured_queries)):
        feed_health_list(now=known_feed)
        feed_activity_list(now=known_feed)


@pytest.mark.django_db
def test_feed_health_page_shows_the_numbers_and_charts(console, known_feed):
    response = console.get(reverse("feed-health"))
    html = page_text(response)

    def cells(name: str) -> dict[str, str]:
        row = re.search(rf'<tr data-source="{name}">(.*?)</tr>', html, re.S).group(1)
        return {k: re.sub(r"<[^>]+>", "", v).strip() for k, v in re.findall(r'data-col="(\w+)">(.*?)</td>', row, re.S)}

    busy = cells("busy")
    assert (busy["rate_15m"], busy["rate_1h"]) == ("2.00", "1.50")
    assert (busy["rejected_1h"], busy["rejected_24h"], busy["duplicates_1h"], busy["duplicates_24h"]) == (
        "5",
        "15",
        "1",
        "5",
    )
    assert busy["pending"] == "2" and busy["lag"].startswith("3")  # "3 hours"
    assert cells("quiet")["lag"] == "—" and cells("silent")["rate_1h"] == "0.00"
    assert html.count("data-figure=") == 2 and "Nothing received in the last 24 hours" in html
    assert re.search(r'src="/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]+\.js"', html)
