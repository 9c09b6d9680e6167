import hashlib
import hmac
import json
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import rfc8785
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError, NotPermitted, StaleVersion
from exceptions.models import (
    Case,
    CaseActivity,
    ExceptionRecord,
    OutboundWebhook,
    Replay,
    ReplayTarget,
    WebhookDelivery,
)
from exceptions.outbound import secret_seal
from exceptions.services import (
    case_assign,
    replay_request,
    replay_send,
    replays_confirm,
    replays_match_successes,
    replays_request_bulk,
    replays_sweep,
    webhook_deliveries_sweep,
    webhooks_deliver,
)
from exceptions.tasks import send_replay
from tests.factories import failure
from transactions.native import decode_native
from transactions.services import records_ingest


def closed_port_url() -> str:
    # A port that was just free: nothing listens there, so a connection is refused at once.
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/hook"


def timeout_failure(**kwargs) -> dict:
    """A platform failure ("Target timed out"): retryable, routed to the integration platform queue."""
    return failure(code="HTTP:TIMEOUT", message="Read timed out calling the target after 30000 ms", **kwargs)


@pytest.fixture
def platform_case(raise_failures, endpoint) -> Case:
    raise_failures(timeout_failure(order="SO-1"), timeout_failure(hours=1, order="SO-2"))
    ReplayTarget.objects.create(system="sap-s4", url=f"{endpoint.url}/replay", auth_secret=secret_seal("Bearer s3cret"))
    case = Case.objects.get()
    assert case.category.slug == "platform" and case.category.retryable
    assert case.queue.slug == "integration-platform"
    return case


def request_and_send(case: Case, actor, capture, **kwargs) -> Replay:
    case.refresh_from_db()
    with capture(execute=True):
        replay = replay_request(case_id=case.pk, actor=actor, expected_version=case.version, **kwargs)
    replay.refresh_from_db()
    return replay


def success_event(value: str, *, attribute: str = "closeloop.replay_id") -> dict:
    return {
        "event_id": f"ok-{value}-{attribute}",
        "occurred_at": timezone.now().isoformat(),
        "system": "sap-s4",
        "kind": "order.create",
        "status": "ok",
        "attributes": {attribute: value},
        "business_keys": {"order": "SO-2"},
    }


def ingest(source, *records: dict) -> None:
    outcome = records_ingest(
        source=source,
        channel="native",
        records=decode_native(json.dumps(list(records)).encode(), content_type="application/json"),
    )
    assert not outcome.rejected, outcome.rejected


@pytest.mark.django_db
def test_replay_sends_the_stored_record_once_with_a_key_derived_from_occurrence_and_payload(
    platform_case, operator, endpoint, django_capture_on_commit_callbacks
):
    replay = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    assert len(endpoint.requests) == 1
    sent = endpoint.requests[0]
    assert sent["path"] == "/replay"
    # An independent derivation: SHA-256 over the occurrence id and the RFC 8785 canonical JSON of what was sent.
    canonical = rfc8785.dumps(json.loads(sent["body"]))
    expected = hashlib.sha256(f"closeloop.replay\x00{replay.occurrence_id}\x00".encode() + canonical).hexdigest()
    assert sent["headers"]["Idempotency-Key"] == replay.idempotency_key == expected
    assert sent["headers"]["Closeloop-Replay-Id"] == str(replay.pk)
    assert sent["headers"]["Authorization"] == "Bearer s3cret"
    assert sent["headers"]["Content-Type"] == "application/json"
    latest = ExceptionRecord.objects.order_by("-occurred_at").first()
    assert replay.occurrence == latest  # the latest occurrence by default
    body = endpoint.json()
    assert body == replay.payload and replay.payload_before is None
    assert body["kind"] == "order.create" and body["business_keys"] == {"order": "SO-2"}
    assert body["error"]["code"] == "HTTP:TIMEOUT" and body["amount"] == "125000.0000"
    assert replay.status == "sent" and replay.response_status == 200
    assert replay.response_body == '{"accepted": true}' and replay.sent_at and replay.claimed_at
    assert replay.requested_by == "user:ines" and replay.target_url == f"{endpoint.url}/replay"

    # A redelivered task finds the replay claimed and sends nothing.
    assert send_replay.apply(args=[str(replay.pk)]).get() is None
    assert replay_send(replay_id=replay.pk) is None
    assert len(endpoint.requests) == 1

    platform_case.refresh_from_db()
    activity = CaseActivity.objects.get(case=platform_case, kind="replay")
    assert activity.actor == "user:ines" and activity.data["replay"] == str(replay.pk)
    actions = list(AuditEntry.objects.filter(action__startswith="replay.").values_list("action", flat=True))
    assert actions == ["replay.sent"]
    requested = AuditEntry.objects.get(action="case.replay_requested")
    assert requested.object_id == str(platform_case.pk) and requested.after["replay"] == str(replay.pk)
    assert requested.after["version"] == platform_case.version
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_replay_is_claimed_before_its_one_send(platform_case, operator, endpoint):
    platform_case.refresh_from_db()
    # Without running the commit hooks the replay stays pending, as if its task were still queued.
    replay = replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version)
    assert replay.status == "pending"
    first = replay_send(replay_id=str(replay.pk))
    second = replay_send(replay_id=str(replay.pk))
    assert first is not None and first.status == "sent" and second is None
    assert len(endpoint.requests) == 1


@pytest.mark.django_db
def test_replay_is_refused_for_categories_a_retry_cannot_fix(raise_failures, role_user, endpoint):
    raise_failures(failure())  # a credit block: a business rule
    ReplayTarget.objects.create(system="sap-s4", url=endpoint.url)
    case = Case.objects.get()
    with pytest.raises(DomainError, match="not fixed by a replay"):
        replay_request(case_id=case.pk, actor=role_user("manager"), expected_version=case.version)
    assert not Replay.objects.exists() and not endpoint.requests


@pytest.mark.django_db
def test_replay_needs_an_active_target(raise_failures, operator):
    raise_failures(timeout_failure())
    case = Case.objects.get()
    with pytest.raises(DomainError, match="no replay target configured for sap-s4"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)
    ReplayTarget.objects.create(system="sap-s4", url="http://127.0.0.1:9/", is_active=False)
    with pytest.raises(DomainError, match="no replay target configured for sap-s4"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)
    assert not Replay.objects.exists()


@pytest.mark.django_db
def test_replay_checks_version_role_and_occurrence(platform_case, operator, role_user):
    platform_case.refresh_from_db()
    with pytest.raises(StaleVersion):
        replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version - 1)
    with pytest.raises(NotPermitted):
        replay_request(case_id=platform_case.pk, actor=role_user("compliance"), expected_version=platform_case.version)
    with pytest.raises(NotPermitted):
        replay_request(case_id=platform_case.pk, actor=role_user("finance_ops"), expected_version=platform_case.version)
    with pytest.raises(DomainError, match="not an occurrence of case"):
        replay_request(
            case_id=platform_case.pk, actor=operator, expected_version=platform_case.version, occurrence_id=999999
        )
    with pytest.raises(DomainError, match="JSON object"):
        replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version, payload=[1])
    assert not Replay.objects.exists()


@pytest.mark.django_db
def test_a_second_replay_of_an_occurrence_in_flight_is_refused(
    platform_case, operator, endpoint, django_capture_on_commit_callbacks
):
    platform_case.refresh_from_db()
    pending = replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version)
    platform_case.refresh_from_db()
    with pytest.raises(DomainError, match="already in flight"):
        replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version)
    # Sent but not yet confirmed is still in flight; the other occurrence of the case can be replayed meanwhile.
    replay_send(replay_id=pending.pk)
    with pytest.raises(DomainError, match="already in flight"):
        replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version)
    older = ExceptionRecord.objects.order_by("occurred_at").first()
    other = request_and_send(platform_case, operator, django_capture_on_commit_callbacks, occurrence_id=older.pk)
    assert other.occurrence == older and other.status == "sent" and other.previous is None
    assert Replay.objects.count() == 2 and len(endpoint.requests) == 2


@pytest.mark.django_db
def test_a_repaired_payload_is_sent_and_audited_with_the_original(
    platform_case, operator, endpoint, django_capture_on_commit_callbacks
):
    repaired = {"kind": "order.create", "business_keys": {"order": "SO-2"}, "attributes": {"plant": "1010"}}
    replay = request_and_send(platform_case, operator, django_capture_on_commit_callbacks, payload=repaired)
    assert endpoint.json() == repaired == replay.payload
    assert replay.payload_before["business_keys"] == {"order": "SO-2"} and "plant" not in replay.payload_before
    entry = AuditEntry.objects.get(action="case.replay_requested")
    assert entry.before["payload"] == replay.payload_before and entry.after["payload"] == repaired
    assert CaseActivity.objects.get(case=platform_case, kind="replay").data["repaired"] is True
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_failed_send_is_recorded_and_the_next_replay_links_to_it(
    platform_case, operator, endpoint, django_capture_on_commit_callbacks
):
    ReplayTarget.objects.filter(system="sap-s4").update(max_attempts=1)
    endpoint.status = 500
    endpoint.answer = b"internal error " * 300
    failed = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    assert failed.status == "failed" and failed.response_status == 500 and failed.outcome == "HTTP 500"
    assert len(failed.response_body) == 2000 and failed.attempts == 1 and failed.duration_ms is not None
    assert AuditEntry.objects.filter(action="replay.failed", object_id=str(failed.pk)).exists()

    endpoint.status = 200
    retried = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    assert retried.status == "sent" and retried.previous == failed
    # The same occurrence with the same payload: the same key, so a target that saw the first one dedupes.
    keys = [r["headers"]["Idempotency-Key"] for r in endpoint.requests]
    assert keys == [failed.idempotency_key, retried.idempotency_key] and keys[0] == keys[1]


@pytest.mark.django_db
def test_a_target_that_cannot_be_reached_fails_the_replay(platform_case, operator, django_capture_on_commit_callbacks):
    ReplayTarget.objects.filter(system="sap-s4").update(url=closed_port_url())
    replay = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    # A refused connection sent nothing: it is retried with backoff (here through the sweep, as tasks run in-process
    # and nothing waits in memory), with the same key, up to the target's max_attempts.
    assert replay.status == "pending" and replay.attempts == 1 and replay.sent_at is None
    assert replay.outcome == "not sent: ConnectionError; attempt 1 of 5, retry in 30 s"
    delays = []
    while replay.status == "pending":
        delays.append(round((replay.not_before - replay.claimed_at).total_seconds()))
        replays_sweep(now=replay.not_before + timedelta(minutes=3))
        replay.refresh_from_db()
    assert delays == [30, 60, 120, 240]
    assert replay.status == "failed" and replay.attempts == 5 and replay.outcome == "not sent: ConnectionError"


@pytest.mark.django_db
@pytest.mark.parametrize("attribute", ["closeloop.replay_id", "idempotency_key"])
def test_a_success_event_carrying_the_replay_id_resolves_the_case(
    platform_case, operator, source, django_capture_on_commit_callbacks, attribute
):
    replay = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    since = timezone.now() - timedelta(minutes=1)
    ingest(source, success_event("not-a-replay", attribute=attribute))
    assert replays_match_successes(since=since) == []
    ingest(source, success_event(str(replay.pk), attribute=attribute))
    assert replays_match_successes(since=since) == [str(replay.pk)]
    replay.refresh_from_db()
    platform_case.refresh_from_db()
    assert replay.status == "succeeded" and replay.succeeded_at and "confirmed by event" in replay.outcome
    assert platform_case.status == "resolved" and platform_case.resolved_at
    activity = CaseActivity.objects.filter(case=platform_case, kind="replay").last()
    assert activity.actor == "system:replay" and "case resolved" in activity.body
    resolved = AuditEntry.objects.get(action="case.resolved")
    assert resolved.actor == "system:replay" and resolved.before["status"] == "open"
    assert AuditEntry.objects.get(action="replay.succeeded").actor == "system:replay"
    # Matching again changes nothing.
    assert replays_match_successes(since=since) == []
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_periodic_confirmation_only_looks_when_replays_await_success(
    platform_case, operator, source, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        assert replays_confirm() == []
    replay = request_and_send(platform_case, operator, django_capture_on_commit_callbacks)
    ingest(source, success_event(str(replay.pk)))
    assert replays_confirm() == [str(replay.pk)]
    assert Case.objects.get().status == "resolved"


@pytest.mark.django_db
def test_the_sweep_resends_lost_tasks_and_expires_stale_replays(platform_case, operator, endpoint):
    platform_case.refresh_from_db()
    lost = replay_request(case_id=platform_case.pk, actor=operator, expected_version=platform_case.version)
    assert replays_sweep()["requeued"] == 0  # too recent: its task may still be on its way
    outcome = replays_sweep(now=timezone.now() + timedelta(minutes=5))
    assert outcome["requeued"] == 1
    lost.refresh_from_db()
    assert lost.status == "sent" and len(endpoint.requests) == 1  # tasks run in-process in tests

    # Sent, but never confirmed within the window: the occurrence becomes replayable again.
    outcome = replays_sweep(now=timezone.now() + timedelta(hours=25))
    assert outcome["unconfirmed"] == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and "no success event" in lost.outcome

    # A worker that died mid-send leaves the replay claimed: it fails rather than being sent blindly again.
    older = ExceptionRecord.objects.order_by("occurred_at").first()
    platform_case.refresh_from_db()
    stuck = replay_request(
        case_id=platform_case.pk, actor=operator, expected_version=platform_case.version, occurrence_id=older.pk
    )
    Replay.objects.filter(pk=stuck.pk).update(status="sending", claimed_at=timezone.now() - timedelta(minutes=10))
    assert replays_sweep()["stuck"] == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and len(endpoint.requests) == 1
    assert AuditEntry.objects.filter(action="replays.expired").count() == 2


@pytest.mark.django_db
def test_bulk_replay_reports_each_case(raise_failures, role_user, endpoint):
    raise_failures(
        timeout_failure(),
        timeout_failure(system="mulesoft-ipaas", kind="invoice.sync"),
        failure(),  # a credit block: not retryable
    )
    ReplayTarget.objects.create(system="sap-s4", url=endpoint.url)
    manager = role_user("manager")
    sap, mule = Case.objects.filter(category__slug="platform").order_by("system")[::-1]
    credit = Case.objects.get(category__slug="business_rule")
    result = replays_request_bulk(filters={"status": ["open"]}, actor=manager)
    assert list(result.done) == [sap.pk] and Replay.objects.get().case == sap
    assert "no replay target configured for mulesoft-ipaas" in result.failed[mule.pk]
    assert "not fixed by a replay" in result.failed[credit.pk]
    with pytest.raises(DomainError, match="at least one filter"):
        replays_request_bulk(filters={}, actor=manager)
    with pytest.raises(DomainError, match="unknown filter queu"):
        replays_request_bulk(filters={"queu": "billing"}, actor=manager)
    with pytest.raises(DomainError, match="invalid filter"):
        replays_request_bulk(filters={"status": "bogus"}, actor=manager)


# ---- Outbound webhooks ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhooks_are_signed_and_sent_to_their_subscribers(
    raise_failures, operator, role_user, endpoint, django_capture_on_commit_callbacks, caplog
):
    raise_failures(timeout_failure())
    case = Case.objects.get()
    OutboundWebhook.objects.create(
        name="signed", url=f"{endpoint.url}/signed", events=["assigned"], signing_secret=secret_seal("k3y")
    )
    OutboundWebhook.objects.create(name="everything", url=f"{endpoint.url}/all")
    OutboundWebhook.objects.create(name="escalations only", url=f"{endpoint.url}/escalated", events=["escalated"])
    OutboundWebhook.objects.create(name="switched off", url=f"{endpoint.url}/off", is_active=False)
    OutboundWebhook.objects.create(name="down", url=closed_port_url(), events=["assigned"], max_attempts=2)
    manager = role_user("manager", username="mona")
    with django_capture_on_commit_callbacks(execute=True):
        case_assign(case_id=case.pk, assignee=operator, actor=manager, expected_version=case.version)
    assert sorted(r["path"] for r in endpoint.requests) == ["/all", "/signed"]
    signed = next(r for r in endpoint.requests if r["path"] == "/signed")
    # Verified as a receiver would, by an HMAC computed here over "<t>.<raw body>" (Stripe's scheme).
    fields = dict(part.split("=", 1) for part in signed["headers"]["Closeloop-Signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 60
    expected = hmac.new(b"k3y", fields["t"].encode() + b"." + signed["body"], hashlib.sha256).hexdigest()
    assert fields["v1"] == expected
    assert signed["headers"]["Closeloop-Event"] == "assigned"
    unsigned = next(r for r in endpoint.requests if r["path"] == "/all")
    assert "Closeloop-Signature" not in unsigned["headers"]
    assert unsigned["headers"]["Closeloop-Delivery"] != signed["headers"]["Closeloop-Delivery"]
    body = json.loads(signed["body"])
    assert body == {
        "event": "assigned",
        "case": {
            "id": case.pk,
            "title": case.title,
            "status": "in_progress",
            "priority": case.priority,
            "queue": "integration-platform",
            "assignee": "ines",
            "url": f"/cases/{case.pk}/",
        },
    }
    assert any(r.message == "webhook.delivery_failed" for r in caplog.records)
    log = {d.webhook.name: d for d in WebhookDelivery.objects.select_related("webhook")}
    assert set(log) == {"signed", "everything", "down"}
    assert log["signed"].status == "delivered" and log["signed"].response_status == 200 and log["signed"].attempts == 1
    down = log["down"]
    assert down.status == "pending" and down.attempts == 1 and down.error.endswith("retry in 30 s")
    webhook_deliveries_sweep(now=down.next_attempt_at + timedelta(minutes=3))
    down.refresh_from_db()
    assert down.status == "failed" and down.attempts == 2
    assert down.error == "not sent: ConnectionError" and down.response_status is None
    assert len(endpoint.requests) == 2  # the delivered ones were not sent again


@pytest.mark.django_db
def test_webhook_failures_are_logged_never_raised(raise_failures, endpoint, caplog, django_capture_on_commit_callbacks):
    raise_failures(timeout_failure())
    case = Case.objects.get()
    endpoint.status = 500
    OutboundWebhook.objects.create(name="erroring", url=endpoint.url, max_attempts=3)
    OutboundWebhook.objects.create(name="not even a url", url="nowhere")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(webhooks_deliver(case_id=case.pk, kind="escalated")) == 2
    erroring = WebhookDelivery.objects.get(webhook__name="erroring")
    while erroring.status == "pending":
        webhook_deliveries_sweep(now=erroring.next_attempt_at + timedelta(minutes=3))
        erroring.refresh_from_db()
    assert len(endpoint.requests) == 3  # a 500 is retried up to max_attempts
    assert erroring.status == "failed" and erroring.attempts == 3 and erroring.response_status == 500
    # A URL that can never work is not retried.
    broken = WebhookDelivery.objects.get(webhook__name="not even a url")
    assert broken.status == "failed" and broken.attempts == 1 and broken.error.startswith("not sent: ")
    assert sum(r.message == "webhook.delivery_failed" for r in caplog.records) == 4
    assert webhooks_deliver(case_id=999999, kind="escalated") == []


@pytest.mark.django_db
def test_replay_from_the_case_page_with_a_repaired_payload(
    client, platform_case, operator, endpoint, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    page = client.get(f"/cases/{platform_case.pk}/").content.decode()
    assert 'data-testid="replay-form"' in page
    occurrence = ExceptionRecord.objects.filter(case=platform_case).first()
    bad = client.post(
        f"/cases/{platform_case.pk}/replay/",
        {"version": platform_case.version, "occurrence": occurrence.pk, "payload": "[1, 2"},
    )
    assert bad.status_code == 400 and not Replay.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/cases/{platform_case.pk}/replay/",
            {"version": platform_case.version, "occurrence": occurrence.pk, "payload": '{"kind": "order.create"}'},
        )
    assert response.status_code == 302
    replay = Replay.objects.get()
    assert replay.payload == {"kind": "order.create"} and replay.payload_before is not None
    assert replay.status == "sent" and endpoint.requests[-1]["headers"]["Idempotency-Key"] == replay.idempotency_key
