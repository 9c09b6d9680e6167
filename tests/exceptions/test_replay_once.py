"""Replay never sends the same thing twice: the derived Idempotency-Key, the refusal of a repeat (and a person's
reason to override it), the business key per target, and two simultaneous requests."""

import hashlib
import threading
from datetime import timedelta

import pytest
import rfc8785
from django.db import connections
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError
from exceptions.models import Case, CaseActivity, ExceptionRecord, Replay, ReplayTarget
from exceptions.outbound import business_key, replay_idempotency_key
from exceptions.services import replay_request, replays_match_successes, replays_sweep
from tests.exceptions.test_replay import ingest, request_and_send, success_event, timeout_failure

# ---- The key --------------------------------------------------------------------------------------------------------


def test_the_same_payload_gives_the_same_key_whatever_its_key_order_or_spacing():
    one = {"kind": "invoice.post", "business_keys": {"invoice": "INV-1"}, "amount": "10.00"}
    same = {"amount": "10.00", "business_keys": {"invoice": "INV-1"}, "kind": "invoice.post"}
    assert replay_idempotency_key(occurrence_id=7, payload=one) == replay_idempotency_key(occurrence_id=7, payload=same)
    independent = hashlib.sha256(b"closeloop.replay\x007\x00" + rfc8785.dumps(one)).hexdigest()
    assert replay_idempotency_key(occurrence_id=7, payload=one) == independent


def test_a_repaired_payload_or_another_occurrence_is_a_new_key():
    payload = {"kind": "invoice.post", "business_keys": {"invoice": "INV-1"}, "amount": "10.00"}
    repaired = {**payload, "amount": "10.50"}
    key = replay_idempotency_key(occurrence_id=7, payload=payload)
    assert replay_idempotency_key(occurrence_id=7, payload=repaired) != key
    assert replay_idempotency_key(occurrence_id=8, payload=payload) != key
    # An integer JCS cannot represent (an ERP number sent as a number) still has a stable key.
    big = {"document": 2**60}
    assert replay_idempotency_key(occurrence_id=7, payload=big) == replay_idempotency_key(occurrence_id=7, payload=big)


def test_the_business_key_reads_the_declared_paths():
    payload = {"business_keys": {"invoice": " INV-1 "}, "entity": "1010", "items": [{"id": 5}]}
    key = business_key(paths=["$.business_keys.invoice", "entity"], payload=payload)
    assert key is not None and key.text == "business_keys.invoice=INV-1, entity=1010"
    # 1010 and "1010" name the same company code; a missing value means nothing to compare.
    same = business_key(paths=["$.business_keys.invoice", "entity"], payload={**payload, "entity": 1010})
    assert same is not None and same.digest == key.digest
    assert business_key(paths=["$.business_keys.invoice", "$.company"], payload=payload) is None
    assert business_key(paths=[], payload=payload) is None
    assert business_key(paths=["items[0].id"], payload=payload).text == "items[0].id=5"


# ---- A repeat of an occurrence --------------------------------------------------------------------------------------


@pytest.fixture
def invoice_target(endpoint) -> ReplayTarget:
    return ReplayTarget.objects.create(
        system="sap-s4", url=f"{endpoint.url}/replay", business_key_paths=["$.business_keys.invoice", "$.entity"]
    )


def _latest_case() -> Case:
    case = Case.objects.order_by("-id").first()
    assert case.category.retryable
    return case


@pytest.mark.django_db
def test_a_second_replay_after_one_succeeded_is_refused_unless_a_reason_is_given(
    raise_failures,
    operator,
    endpoint,
    source,
    django_capture_on_commit_callbacks,
):
    raise_failures(timeout_failure(order="SO-1"))
    ReplayTarget.objects.create(system="sap-s4", url=f"{endpoint.url}/replay")
    case = _latest_case()
    first = request_and_send(case, operator, django_capture_on_commit_callbacks)
    since = timezone.now() - timedelta(minutes=1)
    # The target echoes the Idempotency-Key it was sent (not the replay's id): that confirms the replay too.
    ingest(source, success_event(first.idempotency_key, attribute="idempotency_key"))
    assert replays_match_successes(since=since) == [str(first.pk)]
    case.refresh_from_db()
    assert case.status == "resolved"

    with pytest.raises(DomainError, match=rf"replay {first.pk} of occurrence \d+ succeeded on .*Give a reason"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)
    assert Replay.objects.count() == 1 and len(endpoint.requests) == 1

    again = request_and_send(
        case, operator, django_capture_on_commit_callbacks, reason="ERP restored from backup; the order is gone"
    )
    assert again.status == "sent" and again.reason == "ERP restored from backup; the order is gone"
    # The same occurrence and payload: the same key, so the target can still recognise it.
    assert endpoint.requests[-1]["headers"]["Idempotency-Key"] == first.idempotency_key == again.idempotency_key
    activity = CaseActivity.objects.filter(case=case, kind="replay").last()
    assert "Reason: ERP restored from backup; the order is gone" in activity.body
    assert activity.data["reason"] == "ERP restored from backup; the order is gone"
    entry = AuditEntry.objects.filter(action="case.replay_requested").last()
    assert entry.after["reason"] == "ERP restored from backup; the order is gone"
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_replay_the_target_accepted_counts_even_if_no_success_event_came(
    raise_failures,
    operator,
    endpoint,
    django_capture_on_commit_callbacks,
):
    raise_failures(timeout_failure(order="SO-1"))
    ReplayTarget.objects.create(system="sap-s4", url=f"{endpoint.url}/replay")
    case = _latest_case()
    first = request_and_send(case, operator, django_capture_on_commit_callbacks)
    replays_sweep(now=timezone.now() + timedelta(hours=25))  # unconfirmed: failed, but the target said 200
    first.refresh_from_db()
    assert first.status == "failed" and first.response_status == 200
    case.refresh_from_db()
    with pytest.raises(DomainError, match=r"was accepted by the target \(HTTP 200\)"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)
    with pytest.raises(DomainError, match="longer than 2000"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version, reason="x" * 2001)


# ---- The business key -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_occurrences_of_one_invoice_are_not_both_resubmitted(
    raise_failures,
    operator,
    endpoint,
    invoice_target,
    django_capture_on_commit_callbacks,
):
    # The same invoice of the same company code failed twice (two deliveries of one document).
    raise_failures(timeout_failure(invoice="INV-1"), timeout_failure(hours=1, invoice="INV-1"))
    case = _latest_case()
    older, newer = ExceptionRecord.objects.filter(case=case).order_by("occurred_at")
    first = request_and_send(case, operator, django_capture_on_commit_callbacks, occurrence_id=older.pk)
    assert first.business_key == "business_keys.invoice=INV-1, entity=DE01" and first.status == "sent"

    message = (
        rf"business_keys.invoice=INV-1, entity=DE01 was already resubmitted to sap-s4 by replay {first.pk} "
        rf"\(occurrence {older.pk} of case #{case.pk}\), which is in flight"
    )
    case.refresh_from_db()
    with pytest.raises(DomainError, match=message):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version, occurrence_id=newer.pk)
    # In flight, even a reason does not send the same invoice twice at once (the partial unique index).
    with pytest.raises(DomainError, match="already in flight"):
        replay_request(
            case_id=case.pk, actor=operator, expected_version=case.version, occurrence_id=newer.pk, reason="sure"
        )
    assert len(endpoint.requests) == 1

    # Once it went through, a reason may resubmit it (say, the target lost it).
    Replay.objects.filter(pk=first.pk).update(status="succeeded", succeeded_at=timezone.now())
    case.refresh_from_db()
    with pytest.raises(DomainError, match="which got through"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version, occurrence_id=newer.pk)
    second = request_and_send(
        case, operator, django_capture_on_commit_callbacks, occurrence_id=newer.pk, reason="target lost INV-1"
    )
    assert second.status == "sent" and len(endpoint.requests) == 2


@pytest.mark.django_db
def test_a_failed_resubmission_of_a_business_object_does_not_block_the_next(
    raise_failures,
    operator,
    endpoint,
    invoice_target,
    django_capture_on_commit_callbacks,
):
    raise_failures(timeout_failure(invoice="INV-2"), timeout_failure(hours=1, invoice="INV-2"))
    case = _latest_case()
    older, newer = ExceptionRecord.objects.filter(case=case).order_by("occurred_at")
    ReplayTarget.objects.filter(pk=invoice_target.pk).update(max_attempts=1)
    endpoint.status = 500
    failed = request_and_send(case, operator, django_capture_on_commit_callbacks, occurrence_id=older.pk)
    assert failed.status == "failed"
    endpoint.status = 200
    sent = request_and_send(case, operator, django_capture_on_commit_callbacks, occurrence_id=newer.pk)
    assert sent.status == "sent" and sent.business_key == failed.business_key


# ---- At the same instant --------------------------------------------------------------------------------------------


def _race(*calls) -> list[object]:
    """Run the calls in threads released together; each returns its result or the DomainError it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except DomainError as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres(reason="SQLite serialises every writer (IMMEDIATE transactions): there is no race to lose")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_replays_of_one_occurrence_send_once(raise_failures, operator, role_user, endpoint):
    raise_failures(timeout_failure(order="SO-7"))
    ReplayTarget.objects.create(system="sap-s4", url=f"{endpoint.url}/replay")
    case = _latest_case()
    manager = role_user("manager")
    results = _race(
        lambda: replay_request(case_id=case.pk, actor=operator, expected_version=None),
        lambda: replay_request(case_id=case.pk, actor=manager, expected_version=None),
    )
    assert sum(isinstance(r, Replay) for r in results) == 1
    assert [str(r) for r in results if isinstance(r, DomainError)] == [
        "a replay of this occurrence is already in flight"
    ]
    assert Replay.objects.count() == 1 and len(endpoint.requests) == 1


@pytest.mark.postgres(reason="SQLite serialises every writer (IMMEDIATE transactions): there is no race to lose")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_replays_of_one_invoice_in_two_cases_send_once(
    raise_failures,
    operator,
    endpoint,
    invoice_target,
):
    # Two cases (two kinds of failing step) about one invoice: their case locks do not serialise the two requests.
    raise_failures(timeout_failure(invoice="INV-3"), timeout_failure(kind="invoice.post", invoice="INV-3"))
    cases = list(Case.objects.order_by("id"))
    assert len(cases) == 2
    results = _race(*[lambda c=c: replay_request(case_id=c.pk, actor=operator, expected_version=None) for c in cases])
    assert sum(isinstance(r, Replay) for r in results) == 1
    refused = [str(r) for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1 and "INV-3" in refused[0]
    assert Replay.objects.count() == 1 and len(endpoint.requests) == 1


@pytest.mark.django_db
def test_the_case_page_asks_for_a_reason_to_replay_again(
    client, raise_failures, operator, endpoint, django_capture_on_commit_callbacks
):
    raise_failures(timeout_failure(order="SO-12"))
    ReplayTarget.objects.create(system="sap-s4", url=f"{endpoint.url}/replay")
    case = _latest_case()
    first = request_and_send(case, operator, django_capture_on_commit_callbacks)
    Replay.objects.filter(pk=first.pk).update(status="succeeded", succeeded_at=timezone.now())
    case.refresh_from_db()
    client.force_login(operator)
    form = {"version": case.version, "occurrence": first.occurrence_id, "payload": ""}
    refused = client.post(f"/cases/{case.pk}/replay/", form)
    assert refused.status_code == 400 and "Give a reason to replay it anyway" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"/cases/{case.pk}/replay/", {**form, "reason": "the ERP lost it in a restore"})
    assert again.status_code == 302 and len(endpoint.requests) == 2
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "Reason: the ERP lost it in a restore" in page
