"""Actions on a case: assign, comment, change status, bulk actions, merge and split.

Every action takes the case under a row lock (`case_acquire`), checks the version the actor based it on (a stale one
raises StaleVersion, 409) and the actor's queues (NotPermitted, 403), and records its activity and audit entry in the
same atomic block (`case_act`). Other services that act on a case (replays, signals) go through the same two.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from console.lib.audit import actor_for, audit_record
from console.lib.errors import DomainError, StaleVersion
from exceptions.choices import ACTIVE_STATUSES, CASE_TRANSITIONS, ActivityKind, CaseStatus
from exceptions.classification import headline
from exceptions.models import Case, CaseActivity, ExceptionRecord, FingerprintOverride
from exceptions.permissions import can_be_assigned, require_case_actor
from exceptions.services.notify import notify_later


def case_lock(case_id: int, expected_version: int | None) -> Case:
    """The case, row-locked until the transaction ends; refused when merged or changed since `expected_version`."""
    # Only the case row: locking its queue and category too would serialise every action in a queue.
    case = Case.objects.select_for_update(of=("self",)).select_related("queue", "category").get(pk=case_id)
    if case.merged_into_id:
        raise DomainError(f"case #{case.pk} was merged into case #{case.merged_into_id}; act on that one")
    if expected_version is not None and case.version != expected_version:
        raise StaleVersion(
            f"case #{case.pk} changed since you loaded it (version {expected_version}, now {case.version}); reload"
        )
    return case


def case_save(case: Case, fields: list[str]) -> None:
    """Write `fields` and bump the version, so that pages and API clients holding the old one get a 409."""
    case.version += 1
    case.save(update_fields=[*fields, "version", "updated_at"])


def case_state(case: Case) -> dict:
    """The before/after snapshot an audit entry records for a case."""
    return {
        "status": case.status,
        "assignee": case.assignee.get_username() if case.assignee else None,
        "queue": case.queue.slug,
        "priority": case.priority,
        "version": case.version,
    }


def case_acquire(*, case_id: int, actor: Any, expected_version: int | None) -> Case:
    """The live case `actor` is about to act on, row-locked until the caller's atomic block ends; refused when merged,
    changed since `expected_version` (409) or outside the actor's queues (403)."""
    case = case_lock(case_id, expected_version)
    require_case_actor(actor, case)
    return case


def case_act(
    *,
    case: Case,
    actor: str,
    kind: str,
    action: str,
    body: str = "",
    data: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    snapshot: bool = True,
    fields: list[str] | tuple[str, ...] = (),
) -> CaseActivity:
    """Record an action on an acquired case, in the caller's atomic block: save `fields` with a new version (pages
    and clients holding the old one get a 409), the activity operators read, and the audit entry, whose `after` is
    the case's saved state (`case_state`, unless `snapshot` is false) updated with `after`."""
    case_save(case, list(fields))
    activity = CaseActivity.objects.create(case=case, actor=actor, kind=kind, body=body, data=data or {})
    recorded = {**case_state(case), **(after or {})} if snapshot else after
    audit_record(actor=actor, action=action, obj=case, before=before, after=recorded)
    return activity


@transaction.atomic
def case_assign(*, case_id: int, assignee: AbstractBaseUser | None, actor: Any, expected_version: int | None) -> Case:
    case = case_acquire(case_id=case_id, actor=actor, expected_version=expected_version)
    if assignee is not None and not can_be_assigned(assignee, case.queue):
        raise DomainError(f"{assignee.get_username()} is not a member of the {case.queue.name} queue")
    before = case_state(case)
    case.assignee = assignee
    fields = ["assignee"]
    if assignee is not None and case.status == CaseStatus.OPEN:
        case.status = CaseStatus.IN_PROGRESS
        fields.append("status")
    who = assignee.get_username() if assignee else "nobody"
    case_act(
        case=case,
        actor=actor_for(actor),
        kind=ActivityKind.ASSIGNED,
        body=f"assigned to {who}",
        action="case.assigned",
        before=before,
        fields=fields,
    )
    if assignee is not None and assignee.pk != getattr(actor, "pk", None):
        transaction.on_commit(lambda: notify_later(case.pk, "assigned"))
    return case


@transaction.atomic
def case_comment(*, case_id: int, body: str, actor: Any, expected_version: int | None) -> CaseActivity:
    text = (body or "").strip()
    if not text:
        raise DomainError("a comment needs some text")
    case = case_acquire(case_id=case_id, actor=actor, expected_version=expected_version)
    return case_act(
        case=case,
        actor=actor_for(actor),
        kind=ActivityKind.COMMENT,
        body=text[:5000],
        action="case.commented",
        after={"comment": text[:5000]},
        snapshot=False,
    )


@transaction.atomic
def case_transition(
    *,
    case_id: int,
    status: str,
    actor: Any,
    expected_version: int | None,
    note: str = "",
    snooze_until: datetime | None = None,
    snooze_occurrences: int | None = None,
) -> Case:
    """Move a case along open -> in_progress -> resolved (also waiting, ignored = snoozed with a condition)."""
    case = case_acquire(case_id=case_id, actor=actor, expected_version=expected_version)
    if status not in CaseStatus.values:
        raise DomainError(f"unknown status {status!r}")
    if status == case.status:
        raise DomainError(f"the case is {case.get_status_display().lower()} already")
    if status not in CASE_TRANSITIONS[case.status]:
        raise DomainError(f"a {case.status} case cannot become {status}")
    if status == CaseStatus.IGNORED:
        if snooze_until is None and snooze_occurrences is None:
            raise DomainError("snoozing needs a condition: a date, or a number of further occurrences")
        if snooze_until is not None and snooze_until <= timezone.now():
            raise DomainError("the snooze date must be in the future")
        if snooze_occurrences is not None and snooze_occurrences < 1:
            raise DomainError("the number of occurrences must be at least 1")
    before = case_state(case)
    case.status = status
    case.snooze_until = snooze_until if status == CaseStatus.IGNORED else None
    case.snooze_occurrences = snooze_occurrences if status == CaseStatus.IGNORED else None
    case.resolved_at = timezone.now() if status == CaseStatus.RESOLVED else None
    data: dict[str, Any] = {"from": before["status"], "to": status}
    if snooze_until:
        data["until"] = snooze_until.isoformat()
    if snooze_occurrences:
        data["occurrences"] = snooze_occurrences
    case_act(
        case=case,
        actor=actor_for(actor),
        kind=ActivityKind.SNOOZED if status == CaseStatus.IGNORED else ActivityKind.STATUS,
        body=note[:2000],
        data=data,
        action=f"case.{status}",
        before=before,
        after=data,
        fields=["status", "snooze_until", "snooze_occurrences", "resolved_at"],
    )
    return case


@transaction.atomic
def case_resolve_automatically(*, case_id: int, actor: str, kind: str, body: str, data: dict[str, Any]) -> bool:
    """Closeloop learnt that the cause of a case is gone (a replay was confirmed, a silence ended): resolve it if it is
    still active. The activity is written either way (it tells what happened); the audit entry `case.resolved` only
    when the status changed. True: the case was resolved now."""
    case = case_lock(case_id, None)
    before = case_state(case)
    resolved = case.status in ACTIVE_STATUSES
    if resolved:
        case.status = CaseStatus.RESOLVED
        case.resolved_at = timezone.now()
        case.snooze_until = case.snooze_occurrences = None
        case_save(case, ["status", "resolved_at", "snooze_until", "snooze_occurrences"])
    CaseActivity.objects.create(
        case=case,
        actor=actor,
        kind=kind,
        body=body + ("; case resolved" if resolved else ""),
        data={**data, "from": before["status"], "to": case.status},
    )
    if resolved:
        audit_record(actor=actor, action="case.resolved", obj=case, before=before, after={**case_state(case), **data})
    return resolved


@transaction.atomic
def occurrences_follow_transaction_merge(*, survivor_id: int, absorbed_ids: list[int]) -> int:
    """Occurrences of transactions that merged into another now belong to the survivor (the absorbed ids answer 301
    to it), so that a case's linked transactions stay reachable. Bookkeeping of the transactions app's own audited
    merge, so no audit entry of its own."""
    return ExceptionRecord.objects.filter(txn_id__in=absorbed_ids).update(txn_id=survivor_id)


@dataclass
class BulkResult:
    done: list[int]
    failed: dict[int, str]


def cases_bulk(*, action: str, versions: dict[int, int], actor: Any, **params: Any) -> BulkResult:
    """The same action on many cases, each in its own transaction: one stale or forbidden case fails alone."""
    actions = {"assign": case_assign, "transition": case_transition, "comment": case_comment}
    if action not in actions:
        raise DomainError(f"unknown bulk action {action!r}; use one of {sorted(actions)}")
    result = BulkResult(done=[], failed={})
    for case_id, version in sorted(versions.items()):
        try:
            actions[action](case_id=case_id, expected_version=version, actor=actor, **params)
            result.done.append(case_id)
        except Case.DoesNotExist:
            result.failed[case_id] = "no such case"
        except DomainError as exc:
            result.failed[case_id] = str(exc)
    return result


@transaction.atomic
def cases_merge(*, target_id: int, source_ids: list[int], actor: Any, expected_version: int | None = None) -> Case:
    """Fold cases into one; a fingerprint override sends their future occurrences to the target too."""
    ids = sorted({target_id, *source_ids})
    cases = {c.pk: c for c in Case.objects.select_for_update().select_related("queue").filter(pk__in=ids)}
    if len(cases) != len(ids) or len(ids) < 2:
        raise DomainError("merging needs a target and at least one other existing case")
    target = cases[target_id]
    if expected_version is not None and target.version != expected_version:
        raise StaleVersion(f"case #{target.pk} changed since you loaded it; reload")
    for case in cases.values():
        require_case_actor(actor, case)
        if case.merged_into_id:
            raise DomainError(f"case #{case.pk} was merged already")
    sources = [cases[i] for i in ids if i != target_id]
    for source in sources:
        ExceptionRecord.objects.filter(case=source).update(case=target)
        FingerprintOverride.objects.create(
            fingerprint=source.fingerprint, target=target, reason="merge", created_by=actor_for(actor)
        )
        FingerprintOverride.objects.filter(target=source).update(target=target)
        target.occurrence_count += source.occurrence_count
        target.amount_at_stake += source.amount_at_stake
        target.first_seen = min(target.first_seen, source.first_seen)
        if source.last_seen > target.last_seen and source.latest_message:
            target.latest_message = source.latest_message
        target.last_seen = max(target.last_seen, source.last_seen)
        source.merged_into = target
        source.status = CaseStatus.RESOLVED
        source.resolved_at = timezone.now()
        case_save(source, ["merged_into", "status", "resolved_at"])
        CaseActivity.objects.create(
            case=source, actor=actor_for(actor), kind=ActivityKind.MERGED, body=f"merged into case #{target.pk}"
        )
    case_save(target, ["occurrence_count", "amount_at_stake", "latest_message", "first_seen", "last_seen"])
    CaseActivity.objects.create(
        case=target,
        actor=actor_for(actor),
        kind=ActivityKind.MERGED,
        body="merged in " + ", ".join(f"#{s.pk}" for s in sources),
    )
    audit_record(actor=actor_for(actor), action="case.merged", obj=target, after={"merged": [s.pk for s in sources]})
    return target


@transaction.atomic
def occurrence_split(
    *, occurrence_id: int, actor: Any, message_contains: str = "", expected_version: int | None = None
) -> Case:
    """Move one occurrence to a case of its own; occurrences like it (same fingerprint, and the message text, when
    given) follow it from now on."""
    occurrence = ExceptionRecord.objects.select_related("case", "case__queue", "category").get(pk=occurrence_id)
    origin = case_lock(occurrence.case_id, expected_version)
    require_case_actor(actor, origin)
    if origin.occurrence_count < 2:
        raise DomainError("a case with a single occurrence cannot be split")
    fragment = (message_contains or "").strip()
    if fragment and fragment.lower() not in occurrence.error_message.lower():
        raise DomainError("the text to split on must appear in this occurrence's error message")
    now = timezone.now()
    case = Case.objects.create(
        fingerprint=origin.fingerprint,
        title=f"{origin.title} (split)"[:300],
        latest_message=headline(occurrence.error_message),
        category=origin.category,
        rule_id=origin.rule_id,
        explanation=origin.explanation,
        system=origin.system,
        kind=origin.kind,
        error_signature=origin.error_signature,
        queue=origin.queue,
        routing_rule_id=origin.routing_rule_id,
        priority=origin.priority,
        occurrence_count=1,
        amount_at_stake=occurrence.amount or 0,
        currency=occurrence.currency,
        first_seen=occurrence.occurred_at,
        last_seen=occurrence.occurred_at,
        triage_due_at=now + origin.queue.triage_target,
        resolve_due_at=now + origin.queue.resolve_target,
    )
    occurrence.case = case
    occurrence.save(update_fields=["case"])
    origin.occurrence_count -= 1
    origin.amount_at_stake -= occurrence.amount or 0
    # The origin's one-line name was perhaps the occurrence that left: name it after its latest remaining one.
    remaining = ExceptionRecord.objects.filter(case=origin).order_by("-occurred_at", "-id").first()
    origin.latest_message = headline(remaining.error_message) if remaining else origin.latest_message
    case_save(origin, ["occurrence_count", "amount_at_stake", "latest_message"])
    FingerprintOverride.objects.create(
        fingerprint=occurrence.fingerprint,
        message_contains=fragment or occurrence.error_message[:200],
        target=case,
        reason="split",
        created_by=actor_for(actor),
    )
    for target, text in (
        (origin, f"occurrence split out into case #{case.pk}"),
        (case, f"split out of case #{origin.pk}"),
    ):
        CaseActivity.objects.create(case=target, actor=actor_for(actor), kind=ActivityKind.SPLIT, body=text)
    audit_record(
        actor=actor_for(actor),
        action="case.split",
        obj=case,
        after={"from_case": origin.pk, "occurrence": occurrence.pk, "message_contains": fragment},
    )
    return case
