"""Replay targets and webhooks as configured: sealed secrets, signatures, retries with backoff, dry runs."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from celery.exceptions import Retry

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError, StaleVersion
from exceptions.models import Case, OutboundWebhook, Replay, ReplayTarget, WebhookDelivery
from exceptions.outbound import (
    SecretUnavailable,
    retry_delay,
    secret_open,
    secret_seal,
    signature_header,
    signature_verify,
)
from exceptions.services import (
    replay_request,
    replay_target_create,
    replay_target_dry_run,
    replay_target_set_active,
    replay_target_update,
    replays_sweep,
    webhook_create,
    webhook_deliveries_sweep,
    webhook_dry_run,
    webhooks_deliver,
)
from exceptions.tasks import send_replay
from tests.exceptions.test_replay import request_and_send, timeout_failure

TOKEN = "Bearer sup3r-s3cret-t0ken"
SIGNING = "whsec_9f8e7d6c5b4a"

# ---- Secrets --------------------------------------------------------------------------------------------------------


def test_a_sealed_secret_opens_only_with_its_key(settings):
    settings.SECRET_KEY = "key-one"
    settings.SECRET_KEY_FALLBACKS = []
    sealed = secret_seal(TOKEN)
    assert sealed.startswith("fernet:") and "s3cret" not in sealed
    assert secret_seal(TOKEN) != sealed  # Fernet is randomised: equal secrets do not look equal at rest
    assert secret_open(sealed) == TOKEN
    settings.SECRET_KEY = "key-two"
    with pytest.raises(SecretUnavailable, match="another SECRET_KEY"):
        secret_open(sealed)
    # After a key rotation, the old key kept in SECRET_KEY_FALLBACKS still opens what it sealed.
    settings.SECRET_KEY_FALLBACKS = ["key-one"]
    assert secret_open(sealed) == TOKEN


def test_an_environment_reference_is_kept_as_a_name_and_read_at_send_time(monkeypatch):
    assert secret_seal("env:ERP_REPLAY_TOKEN") == "env:ERP_REPLAY_TOKEN"
    with pytest.raises(SecretUnavailable, match="ERP_REPLAY_TOKEN is not set"):
        secret_open("env:ERP_REPLAY_TOKEN")
    monkeypatch.setenv("ERP_REPLAY_TOKEN", TOKEN)
    assert secret_open("env:ERP_REPLAY_TOKEN") == TOKEN
    with pytest.raises(ValueError, match="not a valid environment variable"):
        secret_seal("env:1-bad name")


# ---- Signatures -----------------------------------------------------------------------------------------------------


def test_the_signature_is_an_hmac_over_timestamp_and_body_as_an_independent_receiver_computes_it():
    body = b'{"event":"assigned","case":{"id":1}}'
    header = signature_header(secret=SIGNING, body=body, timestamp=1767225600)
    independent = hmac.new(SIGNING.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={independent}"
    assert signature_verify(secret=SIGNING, header=header, body=body, now=1767225600 + 299)
    assert not signature_verify(secret=SIGNING, header=header, body=body, now=1767225600 + 301)  # too old
    assert not signature_verify(secret=SIGNING, header=header, body=body + b" ", now=1767225600)
    assert not signature_verify(secret="other", header=header, body=body, now=1767225600)
    assert not signature_verify(secret=SIGNING, header="v1=abc", body=body, now=1767225600)


def test_the_backoff_doubles_and_is_capped():
    assert [retry_delay(n) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert retry_delay(20) == 3600


# ---- Targets: configuration, dry run, retries -----------------------------------------------------------------------


@pytest.fixture
def target(db, endpoint) -> ReplayTarget:
    return replay_target_create(
        actor="user:ivan",
        system="sap-s4",
        url=f"{endpoint.url}/replay",
        method="PUT",
        auth_header=TOKEN,
        signing_secret=SIGNING,
        business_key_paths=["$.business_keys.order", "$.entity"],
    )


@pytest.mark.django_db
def test_a_target_is_stored_with_sealed_secrets_and_audited_without_them(target):
    stored = ReplayTarget.objects.get()
    assert stored.auth_secret.startswith("fernet:") and stored.signing_secret.startswith("fernet:")
    assert secret_open(stored.auth_secret) == TOKEN
    entry = AuditEntry.objects.get(action="replay_target.created")
    text = json.dumps([entry.before, entry.after])
    assert "s3cret" not in text and SIGNING not in text and stored.auth_secret not in text
    assert entry.after["auth"].startswith("encrypted (")
    # A rotated secret shows as a change in the trail (its keyed fingerprint moves), the value never.
    updated = replay_target_update(target=target, actor="user:ivan", expected_version=1, auth_header="Bearer new")
    change = AuditEntry.objects.get(action="replay_target.updated")
    assert change.before["auth"] != change.after["auth"] and "new" not in json.dumps(change.after)
    assert updated.version == 2 and secret_open(updated.signing_secret) == SIGNING  # an empty secret is kept
    with pytest.raises(StaleVersion):
        replay_target_update(target=target, actor="user:ivan", expected_version=1, url="http://127.0.0.1:9/")
    with pytest.raises(DomainError, match="business_key_paths"):
        replay_target_update(target=target, actor="user:ivan", expected_version=2, business_key_paths=["a..b"])
    with pytest.raises(DomainError, match="has a replay target already"):
        replay_target_create(actor="user:ivan", system="sap-s4", url="http://127.0.0.1:9/")
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_dry_run_shows_exactly_the_request_a_replay_sends(
    raise_failures, operator, endpoint, target, django_capture_on_commit_callbacks
):
    raise_failures(timeout_failure(order="SO-5"))
    shown = replay_target_dry_run(target=ReplayTarget.objects.get())
    assert shown["method"] == "PUT" and shown["url"] == f"{endpoint.url}/replay" and not shown["problems"]
    assert shown["headers"]["Authorization"] == "Bearer ••••••••"
    assert shown["headers"]["Closeloop-Signature"].endswith(",v1=••••••••")
    assert shown["business_key"] == "business_keys.order=SO-5, entity=DE01"
    assert "s3cret" not in json.dumps(shown) and SIGNING not in json.dumps(shown)
    assert not endpoint.requests and not Replay.objects.exists()  # nothing sent, nothing stored

    replay = request_and_send(Case.objects.get(), operator, django_capture_on_commit_callbacks)
    sent = endpoint.requests[0]
    assert sent["method"] == "PUT" and sent["body"].decode() == shown["body"]
    assert sent["headers"]["Idempotency-Key"] == shown["headers"]["Idempotency-Key"] == replay.idempotency_key
    assert sent["headers"]["Authorization"] == TOKEN
    fields = dict(part.split("=", 1) for part in sent["headers"]["Closeloop-Signature"].split(","))
    expected = hmac.new(SIGNING.encode(), fields["t"].encode() + b"." + sent["body"], hashlib.sha256).hexdigest()
    assert fields["v1"] == expected


@pytest.mark.django_db
def test_a_dry_run_names_what_would_make_the_send_fail(db, monkeypatch):
    target = replay_target_create(
        actor="user:ivan", system="zuora", url="https://billing.example/replay", auth_header="env:ZUORA_TOKEN"
    )
    shown = replay_target_dry_run(target=target)
    assert shown["problems"] == ["credential: environment variable ZUORA_TOKEN is not set"]
    assert shown["source"].startswith("a sample record") and json.loads(shown["body"])["system"] == "zuora"
    monkeypatch.setenv("ZUORA_TOKEN", "Bearer z")
    assert replay_target_dry_run(target=target, payload={"kind": "x"})["problems"] == []


@pytest.mark.django_db
def test_a_busy_target_is_retried_with_backoff_and_the_same_key(
    raise_failures, operator, endpoint, target, django_capture_on_commit_callbacks
):
    raise_failures(timeout_failure(order="SO-6"))
    endpoint.statuses = [503, 429]
    replay = request_and_send(Case.objects.get(), operator, django_capture_on_commit_callbacks)
    assert replay.status == "pending" and replay.attempts == 1 and replay.response_status == 503
    assert replay.outcome == "HTTP 503; attempt 1 of 5, retry in 30 s"
    assert replays_sweep(now=replay.not_before)["requeued"] == 0  # not lost yet: its retry is on its way
    replays_sweep(now=replay.not_before + timedelta(minutes=3))
    replay.refresh_from_db()
    assert replay.attempts == 2 and replay.outcome == "HTTP 429; attempt 2 of 5, retry in 60 s"
    replays_sweep(now=replay.not_before + timedelta(minutes=3))
    replay.refresh_from_db()
    assert replay.status == "sent" and replay.attempts == 3 and replay.response_status == 200
    assert replay.duration_ms is not None and replay.not_before is None
    assert len({r["headers"]["Idempotency-Key"] for r in endpoint.requests}) == 1 and len(endpoint.requests) == 3
    # Only the end of the retries is audited, once.
    assert AuditEntry.objects.filter(action="replay.sent", object_id=str(replay.pk)).count() == 1


@pytest.mark.django_db
def test_a_replay_without_an_answer_in_time_is_not_sent_again_on_its_own(
    raise_failures, operator, endpoint, target, django_capture_on_commit_callbacks, monkeypatch
):
    # The target may have posted it before the timeout: a person decides (with the same key, should they replay).
    monkeypatch.setattr("exceptions.services.replays.SEND_TIMEOUT", 0.2)
    endpoint.delay = 0.5
    raise_failures(timeout_failure(order="SO-13"))
    replay = request_and_send(Case.objects.get(), operator, django_capture_on_commit_callbacks)
    assert replay.status == "failed" and replay.attempts == 1 and replay.outcome == "no answer within 0.2 s"
    assert len(endpoint.requests) == 1


@pytest.mark.django_db
def test_with_a_broker_the_task_asks_celery_to_retry_at_the_backoff(
    raise_failures, operator, endpoint, target, monkeypatch
):
    raise_failures(timeout_failure(order="SO-8"))
    case = Case.objects.get()
    replay = replay_request(case_id=case.pk, actor=operator, expected_version=case.version)  # not sent: no commit
    endpoint.statuses = [502]
    asked: list[float] = []

    def retry(*, countdown: float) -> Retry:
        asked.append(countdown)
        return Retry("again", when=countdown)

    monkeypatch.setattr(send_replay, "retry", retry)
    # Called as a worker calls it (not eagerly): the retry is the broker's, at the backoff.
    with pytest.raises(Retry):
        send_replay.run(str(replay.pk))
    assert len(asked) == 1 and 28 <= asked[0] <= 30


@pytest.mark.django_db
def test_a_disabled_target_takes_no_new_replays(raise_failures, operator, target):
    raise_failures(timeout_failure(order="SO-9"))
    replay_target_set_active(target=target, actor="user:ivan", is_active=False)
    assert AuditEntry.objects.filter(action="replay_target.deactivated").exists()
    case = Case.objects.get()
    with pytest.raises(DomainError, match="no replay target configured for sap-s4"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)


# ---- Webhooks -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_webhook_is_retried_until_its_receiver_answers_and_logs_every_attempt(
    raise_failures, endpoint, django_capture_on_commit_callbacks
):
    raise_failures(timeout_failure(order="SO-10"))
    case = Case.objects.get()
    webhook_create(actor="user:ivan", name="chat", url=f"{endpoint.url}/hook", signing_secret=SIGNING)
    endpoint.statuses = [502, 500]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks_deliver(case_id=case.pk, kind="escalated")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.response_status == 502
    while delivery.status == "pending":
        webhook_deliveries_sweep(now=delivery.next_attempt_at + timedelta(minutes=3))
        delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 3 and delivery.error == ""
    assert len({r["headers"]["Closeloop-Delivery"] for r in endpoint.requests}) == 1
    assert len({r["body"] for r in endpoint.requests}) == 1  # the same body every attempt, signed afresh
    for sent in endpoint.requests:
        fields = dict(part.split("=", 1) for part in sent["headers"]["Closeloop-Signature"].split(","))
        expected = hmac.new(SIGNING.encode(), f"{fields['t']}.".encode() + sent["body"], hashlib.sha256).hexdigest()
        assert fields["v1"] == expected and abs(int(fields["t"]) - time.time()) < 60


@pytest.mark.django_db
def test_a_webhook_dry_run_masks_the_signature_and_a_4xx_is_not_retried(
    raise_failures, endpoint, django_capture_on_commit_callbacks
):
    webhook = webhook_create(actor="user:ivan", name="chat", url=f"{endpoint.url}/hook", events=["escalated"])
    webhook = OutboundWebhook.objects.get(pk=webhook.pk)
    shown = webhook_dry_run(webhook=webhook, event="assigned")
    assert shown["problems"] == ["this webhook is not subscribed to assigned: it would not be sent"]
    assert json.loads(shown["body"])["event"] == "assigned" and "Closeloop-Signature" not in shown["headers"]
    with pytest.raises(DomainError, match="event: one of"):
        webhook_dry_run(webhook=webhook, event="deleted")
    raise_failures(timeout_failure(order="SO-11"))
    endpoint.status = 410
    with django_capture_on_commit_callbacks(execute=True):
        webhooks_deliver(case_id=Case.objects.get().pk, kind="escalated")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.error == "HTTP 410"
