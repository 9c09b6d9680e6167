"""Replays: re-drive a failed step by sending its record to the system's replay target, and close the case when the
target reports success.

Never the same thing twice: the Idempotency-Key is derived from the occurrence and the payload (outbound.py), so a
target that honours it recognises a resend; an occurrence whose earlier replay got through (confirmed, or accepted
with a 2xx) is replayed again only with a person's reason, and so is a business object (the target's business key,
e.g. invoice number and company code) that another occurrence's replay already submitted. Here, a conditional UPDATE
claims a replay before each attempt, so that a redelivered task never sends it concurrently; a partial unique index
keeps one replay per occurrence, and per business object, in flight. Answers that say "not processed, try later"
(429, 503...) and refused connections are retried with exponential backoff, with the same key. A replay is confirmed
by a success event (status ok) that carries its id or its key in the attribute `closeloop.replay_id` (or
`idempotency_key`).
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import QueryDict
from django.utils import timezone

from console.lib.audit import actor_for, audit_record
from console.lib.errors import DomainError
from exceptions import outbound
from exceptions.choices import REPLAY_IN_FLIGHT, ActivityKind, ReplayStatus
from exceptions.filters import CaseFilterSet
from exceptions.models import Case, ExceptionRecord, Replay, ReplayTarget
from exceptions.selectors import (
    REPLAY_ID_ATTRIBUTES,
    case_list,
    occurrence_latest,
    replay_got_through,
    replay_in_flight,
    replay_of_business_key,
    replay_oldest_unconfirmed_claim,
    replay_previous,
    replay_target_for,
    replays_awaiting_success,
)
from exceptions.services.cases import case_acquire, case_act, case_resolve_automatically, case_state
from transactions.selectors import failed_event_details, success_events_carrying

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:replay"
SEND_TIMEOUT = 10  # seconds; a target slower than this is reported failed and can be replayed again
RESPONSE_KEPT = 2000  # characters of the target's answer kept on the replay
MAX_PAYLOAD_BYTES = 256 * 1024  # a repaired record is one business document, not a batch
MAX_BULK_CASES = 500
MAX_REASON = 2000
# How long a sent replay waits for its success event before the occurrence may be replayed again.
SUCCESS_WINDOW = timedelta(hours=24)
# A replay still pending this long lost its task; one claimed this long ago lost its worker mid-send.
PENDING_GRACE = timedelta(minutes=2)
SENDING_GRACE = timedelta(minutes=5)


# ---- Request --------------------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def occurrence_payload(occurrence: ExceptionRecord) -> dict | None:
    """The failed record as stored (the canonical event's business content), or None when retention dropped it."""
    events = failed_event_details(event_ids=[occurrence.event_id]) if occurrence.event_id is not None else []
    if not events:
        return None
    event = events[0]
    fields = ("occurred_at", "system", "kind", "business_keys", "entity", "amount", "currency", "attributes", "error")
    return {name: _json_value(event.get(name)) for name in fields}


def _checked_payload(payload: Any) -> dict:
    if not isinstance(payload, dict) or not payload:
        raise DomainError("a repaired payload must be a non-empty JSON object")
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"the repaired payload is not plain JSON: {exc}") from exc
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise DomainError(f"the repaired payload is larger than {MAX_PAYLOAD_BYTES // 1024} KiB")
    if "\\u0000" in text:
        # PostgreSQL cannot store NUL in jsonb; refusing it here answers 400 instead of a 500 at save time.
        raise DomainError("the repaired payload contains a NUL character")
    return payload


def _occurrence_of(case: Case, occurrence_id: int | None) -> ExceptionRecord:
    if occurrence_id is None:
        occurrence = occurrence_latest(case_id=case.pk, replayable=True)
        if occurrence is None:
            raise DomainError(f"case #{case.pk} has no occurrence to replay")
        return occurrence
    occurrence = ExceptionRecord.objects.filter(pk=occurrence_id, case=case).first()
    if occurrence is None:
        raise DomainError(f"occurrence {occurrence_id} is not an occurrence of case #{case.pk}")
    if occurrence.event_id is None:
        # A signal (an SLA's silence...) records a condition, not a failed step: there is nothing to send again.
        raise DomainError(f"occurrence {occurrence_id} records a signal, not a failed event: it cannot be replayed")
    return occurrence


def _reason_checked(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise DomainError(f"the reason is longer than {MAX_REASON} characters")
    return reason


def _refuse_repeat(*, occurrence: ExceptionRecord, target: ReplayTarget, key: outbound.BusinessKey | None) -> None:
    """Refuse what would send the same thing twice: an occurrence whose replay got through, or a business object
    that another occurrence's replay submitted (or is submitting). A reason lets a person override the first two."""
    earlier = replay_got_through(occurrence_id=occurrence.pk)
    if earlier is not None:
        how = (
            f"succeeded on {earlier.succeeded_at:%Y-%m-%d %H:%M} UTC"
            if earlier.status == ReplayStatus.SUCCEEDED and earlier.succeeded_at
            else f"was accepted by the target (HTTP {earlier.response_status})"
        )
        raise DomainError(
            f"replay {earlier.pk} of occurrence {occurrence.pk} {how}; sending it again may post it twice. "
            "Give a reason to replay it anyway."
        )
    if key is None:
        return
    other = replay_of_business_key(target_id=target.pk, business_key_hash=key.digest)
    if other is not None:
        state = "is in flight" if other.status in REPLAY_IN_FLIGHT else "got through"
        raise DomainError(
            f"{key.text} was already resubmitted to {target.system} by replay {other.pk} (occurrence "
            f"{other.occurrence_id} of case #{other.case_id}), which {state}. Give a reason to send it again."
        )


@transaction.atomic
def replay_request(
    *,
    case_id: int,
    actor: Any,
    expected_version: int | None,
    occurrence_id: int | None = None,
    payload: dict | None = None,
    reason: str = "",
) -> Replay:
    """Record a replay of one occurrence (the latest by default) and enqueue its send once committed.

    `payload` is the operator's repaired record; without it the stored original is sent. `reason` overrides the
    refusal of a repeat (an earlier replay of the occurrence or of its business object got through); it is audited
    and shown in the case's activity. The case's version moves on (a replay is an action on the case), and the
    request writes its activity and audit entry in this block.
    """
    reason = _reason_checked(reason)
    case = case_acquire(case_id=case_id, actor=actor, expected_version=expected_version)
    if not case.category.retryable:
        raise DomainError(f"{case.category.name} failures are not fixed by a replay: {case.category.suggested_action}")
    occurrence = _occurrence_of(case, occurrence_id)
    target = replay_target_for(system=occurrence.system)
    if target is None:
        raise DomainError(f"no replay target configured for {occurrence.system}")
    if replay_in_flight(occurrence_id=occurrence.pk) is not None:
        raise DomainError("a replay of this occurrence is already in flight")
    original = occurrence_payload(occurrence)
    if payload is None and original is None:
        raise DomainError("the original event is no longer stored; send a repaired payload instead")
    repaired = _checked_payload(payload) if payload is not None else None
    sent_payload = repaired if repaired is not None else original
    key = outbound.business_key(paths=target.business_key_paths or [], payload=sent_payload)
    if not reason:
        _refuse_repeat(occurrence=occurrence, target=target, key=key)
    try:
        # The case lock serialises requests for this case; the partial unique indexes guard every other writer (two
        # occurrences of one invoice in two cases are not serialised by their case locks).
        with transaction.atomic():
            replay = Replay.objects.create(
                case=case,
                occurrence=occurrence,
                target=target,
                previous=replay_previous(occurrence_id=occurrence.pk),
                payload=sent_payload,
                payload_before=original if repaired is not None else None,
                idempotency_key=outbound.replay_idempotency_key(occurrence_id=occurrence.pk, payload=sent_payload),
                business_key=key.text if key else "",
                business_key_hash=key.digest if key else "",
                reason=reason,
                target_url=target.url,
                requested_by=actor_for(actor),
            )
    except IntegrityError as exc:
        if key is not None and replay_in_flight(occurrence_id=occurrence.pk) is None:
            raise DomainError(f"a replay of {key.text} to {target.system} is already in flight") from exc
        raise DomainError("a replay of this occurrence is already in flight") from exc
    before = case_state(case)
    after: dict[str, Any] = {
        "replay": str(replay.pk),
        "occurrence": occurrence.pk,
        "target_url": target.url,
        "idempotency_key": replay.idempotency_key,
        "previous": str(replay.previous_id) if replay.previous_id else None,
    }
    if key is not None:
        after["business_key"] = key.text
    if reason:
        after["reason"] = reason
    if repaired is not None:
        # The audit trail keeps what the operator changed: the stored record before, the sent one after.
        before = {**before, "payload": original}
        after["payload"] = repaired
    body = f"replay of occurrence {occurrence.pk} requested" + (" with a repaired payload" if repaired else "")
    if reason:
        body += f", sent again although an earlier replay got through. Reason: {reason}"
    case_act(
        case=case,
        actor=actor_for(actor),
        kind=ActivityKind.REPLAY,
        body=body,
        data={
            "replay": str(replay.pk),
            "occurrence": occurrence.pk,
            "repaired": repaired is not None,
            "idempotency_key": replay.idempotency_key,
            **({"reason": reason} if reason else {}),
        },
        action="case.replay_requested",
        before=before,
        after=after,
    )
    transaction.on_commit(lambda: _send_later(replay.pk))
    return replay


def _send_later(replay_id: uuid.UUID) -> None:
    # Imported when enqueuing: the tasks module imports the services at load time (see services/notify.py).
    from exceptions.tasks import send_replay

    send_replay.delay(str(replay_id))


@dataclass
class BulkReplayResult:
    done: dict[int, str] = field(default_factory=dict)  # case id -> replay id
    failed: dict[int, str] = field(default_factory=dict)  # case id -> reason


def replays_request_bulk(*, filters: dict, actor: Any) -> BulkReplayResult:
    """Replay the latest occurrence of every live case matching a case-list filter, each case in its own transaction
    (one refused case fails alone). Cases are taken as they are now, so no version is asked for."""
    unknown = sorted(set(filters) - set(CaseFilterSet.base_filters))
    if unknown:
        # A misspelt filter would silently widen the selection: refuse it rather than replay too much.
        raise DomainError(f"unknown filter {', '.join(unknown)}; use {', '.join(sorted(CaseFilterSet.base_filters))}")
    data = QueryDict(mutable=True)
    for name, value in filters.items():
        data.setlist(name, [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)])
    filterset = CaseFilterSet(data=data, queryset=case_list())
    if not filterset.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items())
        raise DomainError(f"invalid filter: {problems}")
    if not any(value not in (None, "", []) for value in filterset.form.cleaned_data.values()):
        # An empty filter would replay every live case; that is never what an operator means.
        raise DomainError("give at least one filter (queue, status, category...)")
    case_ids = list(filterset.qs.values_list("id", flat=True)[: MAX_BULK_CASES + 1])
    if len(case_ids) > MAX_BULK_CASES:
        raise DomainError(f"more than {MAX_BULK_CASES} cases match; narrow the filter")
    result = BulkReplayResult()
    for case_id in sorted(case_ids):
        try:
            replay = replay_request(case_id=case_id, actor=actor, expected_version=None)
            result.done[case_id] = str(replay.pk)
        except Case.DoesNotExist:
            result.failed[case_id] = "no such case"
        except DomainError as exc:
            result.failed[case_id] = str(exc)
    return result


# ---- Send -----------------------------------------------------------------------------------------------------------


def _claim(replay_id: uuid.UUID | str) -> bool:
    # A conditional UPDATE (pending -> sending), committed before the send: of two deliveries of the task, one wins.
    return bool(
        Replay.objects.filter(pk=replay_id, status=ReplayStatus.PENDING).update(
            status=ReplayStatus.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
        )
    )


def replay_outbound_request(
    *, replay: Replay, target: ReplayTarget, timestamp: int | None = None
) -> outbound.OutboundRequest:
    """The exact request a replay sends: the target's method, the recorded URL, the derived Idempotency-Key, the
    replay's id (which a success event may echo), the credential and the signature read from the sealed secrets."""
    return outbound.request_build(
        method=target.method,
        url=replay.target_url,
        body=outbound.json_body(replay.payload),
        headers={"Idempotency-Key": replay.idempotency_key, "Closeloop-Replay-Id": str(replay.pk)},
        auth_secret=target.auth_secret,
        signing_secret=target.signing_secret,
        timestamp=timestamp,
    )


@dataclass
class _Answer:
    status_code: int | None = None
    body: str = ""
    outcome: str = ""
    duration_ms: int | None = None
    retryable: bool = False  # nothing was processed, or the target asked to try later
    timed_out: bool = False  # no answer in time: the target may or may not have done the work


def http_send(request: outbound.OutboundRequest, *, timeout: float) -> _Answer:
    """One attempt. Retryable: the connection was refused (nothing was sent) or the answer says "not processed, try
    later"; a read timeout or a 500 is not, since the target may have done the work."""
    started = time.monotonic()
    try:
        # No redirects: a redirected POST may turn into a GET, or carry the credential to another host.
        response = requests.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        timed_out = isinstance(exc, requests.ReadTimeout)
        return _Answer(
            # A read timeout came after the request was sent: the target may have done the work.
            outcome=f"no answer within {timeout:g} s" if timed_out else f"not sent: {type(exc).__name__}",
            duration_ms=int((time.monotonic() - started) * 1000),
            retryable=isinstance(exc, requests.ConnectionError) and not timed_out,
            timed_out=timed_out,
        )
    return _Answer(
        status_code=response.status_code,
        body=response.text[:RESPONSE_KEPT],
        outcome=f"HTTP {response.status_code}",
        duration_ms=int((time.monotonic() - started) * 1000),
        retryable=response.status_code in outbound.RETRY_STATUSES,
    )


def replay_send(*, replay_id: uuid.UUID | str) -> Replay | None:
    """One attempt of a claimed replay; None when another delivery of the task claimed it first (or it is unknown).
    A retryable failure with attempts left goes back to pending with `not_before` set: the task retries then."""
    if not _claim(replay_id):
        logger.info("replay.already_claimed", extra={"replay": str(replay_id)})
        return None
    replay = Replay.objects.select_related("occurrence").get(pk=replay_id)
    # The target is read again at send time so that a rotated credential is used; the URL is the one recorded.
    target = replay_target_for(system=replay.occurrence.system)
    if target is None:
        answer = _Answer(outcome=f"no active replay target for {replay.occurrence.system} any more")
        return _record_send(replay, answer, max_attempts=1)
    request = replay_outbound_request(replay=replay, target=target)
    if request.problems:
        answer = _Answer(outcome=f"not sent: {'; '.join(request.problems)}")
        return _record_send(replay, answer, max_attempts=1)
    answer = http_send(request, timeout=SEND_TIMEOUT)
    if answer.status_code is None:
        logger.warning("replay.send_failed", extra={"replay": str(replay.pk), "error": answer.outcome})
    return _record_send(replay, answer, max_attempts=target.max_attempts)


@transaction.atomic
def _record_send(replay: Replay, answer: _Answer, *, max_attempts: int) -> Replay:
    now = timezone.now()
    sent = answer.status_code is not None and 200 <= answer.status_code < 300
    retry = not sent and answer.retryable and replay.attempts < max_attempts
    outcome = answer.outcome
    fields: dict[str, Any] = {
        "response_status": answer.status_code,
        "response_body": answer.body.replace("\x00", ""),
        "duration_ms": answer.duration_ms,
    }
    if answer.status_code is not None:
        fields["sent_at"] = now
    if retry:
        delay = outbound.retry_delay(replay.attempts)
        outcome = f"{outcome}; attempt {replay.attempts} of {max_attempts}, retry in {delay} s"
        status = ReplayStatus.PENDING
        fields["not_before"] = now + timedelta(seconds=delay)
    else:
        status = ReplayStatus.SENT if sent else ReplayStatus.FAILED
        fields["not_before"] = None
    fields["outcome"] = outcome[:300]
    # Conditional again: a fast target's success event may have confirmed the replay while we waited for its answer.
    moved = Replay.objects.filter(pk=replay.pk, status=ReplayStatus.SENDING).update(status=status, **fields)
    if not moved:
        Replay.objects.filter(pk=replay.pk).update(**fields)
    replay.refresh_from_db()
    if not retry:
        audit_record(
            actor=SYSTEM_ACTOR,
            action="replay.sent" if sent else "replay.failed",
            obj=replay,
            after={
                "case": replay.case_id,
                "status": replay.status,
                "response_status": answer.status_code,
                "outcome": outcome,
                "attempts": replay.attempts,
            },
        )
    logger.info(
        "replay.recorded",
        extra={
            "replay": str(replay.pk),
            "status": replay.status,
            "http": answer.status_code,
            "attempt": replay.attempts,
        },
    )
    return replay


# ---- Confirmation and sweeps ----------------------------------------------------------------------------------------


def replays_match_successes(*, since: datetime) -> list[str]:
    """Mark replays confirmed by a success event received since `since` succeeded, and resolve their cases."""
    awaiting = replays_awaiting_success(since=since)
    if not awaiting:
        return []
    confirmed = []
    for event in success_events_carrying(values=list(awaiting), since=since, names=REPLAY_ID_ATTRIBUTES):
        attributes = event["attributes"] or {}
        for value in {str(attributes.get(name, "")) for name in REPLAY_ID_ATTRIBUTES}:
            replay_id = str(awaiting[value].pk) if value in awaiting else None
            if replay_id and replay_id not in confirmed and _replay_succeed(replay_id=replay_id, event_id=event["id"]):
                confirmed.append(replay_id)
    return confirmed


@transaction.atomic
def _replay_succeed(*, replay_id: str, event_id: int) -> bool:
    replay = Replay.objects.select_for_update().filter(pk=replay_id).first()
    if replay is None or replay.status == ReplayStatus.SUCCEEDED:
        return False
    previous_status = replay.status
    replay.status = ReplayStatus.SUCCEEDED
    replay.succeeded_at = timezone.now()
    replay.outcome = f"confirmed by event {event_id}"
    replay.save(update_fields=["status", "succeeded_at", "outcome"])
    audit_record(
        actor=SYSTEM_ACTOR,
        action="replay.succeeded",
        obj=replay,
        before={"status": previous_status},
        after={"status": replay.status, "case": replay.case_id, "event": event_id},
    )
    case_resolve_automatically(
        case_id=replay.case_id,
        actor=SYSTEM_ACTOR,
        kind=ActivityKind.REPLAY,
        body=f"replay confirmed by event {event_id}",
        data={"replay": replay_id, "event": event_id},
    )
    return True


def replays_confirm(*, now: datetime | None = None) -> list[str]:
    """Periodic: look for success events only when replays await one, and only back to the oldest of them, so that
    the scan of recent events stays short (at most SUCCESS_WINDOW)."""
    now = now or timezone.now()
    oldest = replay_oldest_unconfirmed_claim(since=now - SUCCESS_WINDOW)
    if oldest is None:
        return []
    return replays_match_successes(since=max(oldest, now - SUCCESS_WINDOW))


def replays_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: re-enqueue pending replays whose task was lost; fail replays whose worker died mid-send (it is unknown
    whether the target got them, so no automatic resend) and sent replays that no success event confirmed in time,
    so that their occurrence can be replayed again."""
    now = now or timezone.now()
    pending = list(
        Replay.objects.filter(status=ReplayStatus.PENDING)
        # A replay waiting for its retry is lost only once its retry time has passed by the same grace.
        .filter(Q(not_before__isnull=True, created_at__lt=now - PENDING_GRACE) | Q(not_before__lt=now - PENDING_GRACE))
        .values_list("pk", flat=True)[:500]
    )
    for replay_id in pending:
        _send_later(replay_id)
    expired = {
        "stuck": _fail_where(
            status=ReplayStatus.SENDING,
            claimed_at__lt=now - SENDING_GRACE,
            outcome="the worker stopped while sending; check the target before replaying again",
        ),
        "unconfirmed": _fail_where(
            status=ReplayStatus.SENT,
            sent_at__lt=now - SUCCESS_WINDOW,
            outcome=f"no success event within {SUCCESS_WINDOW.total_seconds() / 3600:.0f} h",
        ),
    }
    return {"requeued": len(pending), **expired}


@transaction.atomic
def _fail_where(*, outcome: str, **conditions: Any) -> int:
    ids = [str(pk) for pk in Replay.objects.filter(**conditions).values_list("pk", flat=True)[:500]]
    if not ids:
        return 0
    Replay.objects.filter(pk__in=ids, status=conditions["status"]).update(status=ReplayStatus.FAILED, outcome=outcome)
    # One audit link for the batch of automatic changes (ARCHITECTURE.md allows batching automatic actions).
    audit_record(
        actor=SYSTEM_ACTOR,
        action="replays.expired",
        object_type="exceptions.replay",
        after={"replays": ids, "outcome": outcome},
    )
    return len(ids)


__all__ = [
    "BulkReplayResult",
    "http_send",
    "occurrence_payload",
    "replay_outbound_request",
    "replay_request",
    "replay_send",
    "replays_confirm",
    "replays_match_successes",
    "replays_request_bulk",
    "replays_sweep",
]
