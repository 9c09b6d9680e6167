"""Writes of the exceptions app: classify failures into cases, route them, and every action on a case.

Every action changes the case under a row lock, checks the version the actor based it on (a stale one raises
StaleVersion, 409), and writes its activity and audit entry in the same atomic block.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from console.lib.audit import actor_for, audit_record
from console.lib.bulk import rows_update
from console.lib.capabilities import ACT_ON_ALL_QUEUES, ACT_ON_CASES
from console.lib.errors import DomainError, NotPermitted, StaleVersion
from console.lib.locks import advisory_lock_keys, key_bucket
from exceptions.choices import ACTIVE_STATUSES, CASE_TRANSITIONS, UNCLASSIFIED, ActivityKind, CaseStatus
from exceptions.classification import (
    CaseFacts,
    ClassificationSpec,
    FailureFacts,
    RoutingSpec,
    classify,
    fingerprint,
    http_status_of,
    normalise_error,
    priority_for,
    route,
)
from exceptions.models import (
    Case,
    CaseActivity,
    Category,
    ClassificationRule,
    ExceptionRecord,
    FingerprintOverride,
    Notification,
    Queue,
    RoutingRule,
)
from transactions.selectors import failed_event_details

logger = logging.getLogger(__name__)
LOCK_NAMESPACE = 0x4558


# ---- Permissions ----------------------------------------------------------------------------------------------------


def can_act_on_queue(user: Any, queue: Queue) -> bool:
    """Managers and admins act on every queue; finance operations only on the queues they belong to."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.has_perm(ACT_ON_ALL_QUEUES):
        return True
    return user.has_perm(ACT_ON_CASES) and queue.members.filter(pk=user.pk).exists()


def can_act_on_case(user: Any, case: Case) -> bool:
    return can_act_on_queue(user, case.queue)


def _require_actor(user: Any, case: Case) -> None:
    if not can_act_on_case(user, case):
        raise NotPermitted("you may only act on cases in the queues you belong to")


# ---- Classification and grouping ------------------------------------------------------------------------------------


def classification_specs() -> list[ClassificationSpec]:
    return [
        ClassificationSpec(
            rule_id=r.pk,
            name=r.name,
            category=r.category.slug,
            system=r.system,
            kind=r.kind,
            error_code=r.error_code,
            error_type=r.error_type,
            message_pattern=r.message_pattern,
            http_status=r.http_status,
            attributes={k: str(v) for k, v in (r.attributes or {}).items()},
        )
        for r in ClassificationRule.objects.filter(is_active=True).select_related("category").order_by("position", "id")
    ]


def routing_specs() -> list[RoutingSpec]:
    return [
        RoutingSpec(
            rule_id=r.pk,
            name=r.name,
            queue_id=r.queue_id,
            categories=tuple(r.categories or ()),
            system=r.system,
            kind=r.kind,
            entity=r.entity,
            min_amount=r.min_amount,
        )
        for r in RoutingRule.objects.filter(is_active=True).order_by("position", "id")
    ]


def failure_facts(event: dict) -> FailureFacts:
    error = event.get("error") or {}
    attributes = event.get("attributes") or {}
    code = str(error.get("code") or "")
    return FailureFacts(
        system=event["system"],
        kind=event["kind"],
        error_code=code,
        error_type=str(error.get("type") or ""),
        message=str(error.get("message") or ""),
        http_status=http_status_of(code, attributes),
        attributes=attributes,
        entity=event.get("entity") or "",
        amount=event.get("amount"),
    )


def _default_queue() -> Queue:
    queue = Queue.objects.filter(is_default=True).first()
    if queue is None:
        # A freshly migrated database has no reference data yet; failures must still land somewhere visible.
        queue, _ = Queue.objects.get_or_create(
            slug="triage",
            defaults={
                "name": "Triage",
                "is_default": True,
                "triage_target": timedelta(hours=4),
                "resolve_target": timedelta(days=2),
            },
        )
    return queue


def _categories() -> dict[str, Category]:
    categories = {c.slug: c for c in Category.objects.all()}
    if UNCLASSIFIED not in categories:
        categories[UNCLASSIFIED], _ = Category.objects.get_or_create(
            slug=UNCLASSIFIED, defaults={"name": "Unclassified", "suggested_action": "Add a classification rule."}
        )
    return categories


def _lock_fingerprints(fingerprints: Iterable[str]) -> None:
    advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f) for f in fingerprints))


def _live_case(case: Case) -> Case:
    seen = {case.pk}
    while case.merged_into_id and case.merged_into_id not in seen:
        seen.add(case.merged_into_id)
        case = Case.objects.select_for_update().get(pk=case.merged_into_id)
    return case


def _override_target(overrides: list[FingerprintOverride], message: str) -> Case | None:
    # Split overrides name a message fragment and are more specific than merges of the whole fingerprint.
    for override in sorted(overrides, key=lambda o: (o.message_contains == "", -o.pk)):
        if not override.message_contains or override.message_contains.lower() in message.lower():
            return _live_case(override.target)
    return None


def _new_case(
    *,
    facts: FailureFacts,
    category: Category,
    classification: Any,
    signature: str,
    print_: str,
    at: datetime,
    routes: list[RoutingSpec],
    queues: dict[int, Queue],
) -> Case:
    amount = facts.amount or Decimal(0)
    routed = route(CaseFacts(category.slug, facts.system, facts.kind, facts.entity, amount), routes)
    queue = queues[routed.queue_id] if routed else _default_queue()
    now = timezone.now()
    return Case.objects.create(
        fingerprint=print_,
        title=f"{category.name}: {facts.system} {facts.kind} — {signature or facts.error_code or 'failed'}"[:300],
        category=category,
        rule_id=classification.rule_id,
        explanation=classification.explanation,
        system=facts.system,
        kind=facts.kind,
        error_signature=signature,
        queue=queue,
        routing_rule_id=routed.rule_id if routed else None,
        priority=priority_for(category.severity, amount),
        status=CaseStatus.OPEN,
        first_seen=at,
        last_seen=at,
        triage_due_at=now + queue.triage_target,
        resolve_due_at=now + queue.resolve_target,
    )


@dataclass
class ClassifyOutcome:
    classified: int = 0
    cases_created: int = 0
    cases_reopened: int = 0
    unclassified: int = 0


@transaction.atomic
def failures_classify(*, event_ids: list[int]) -> ClassifyOutcome:
    """Classify failed events into exception records grouped into cases; events already classified are skipped.

    Work is per batch, not per event: rules, categories, queues and the batch's cases are read once, records and
    activities inserted together, and every touched case written once with its final counts.
    """
    outcome = ClassifyOutcome()
    done = set(ExceptionRecord.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True))
    events = [
        e for e in failed_event_details(event_ids=[i for i in event_ids if i not in done]) if e["status"] == "error"
    ]
    if not events:
        return outcome
    rules, routes = classification_specs(), routing_specs()
    categories = _categories()
    queues = {q.pk: q for q in Queue.objects.all()}
    prepared = []
    for event in events:
        facts = failure_facts(event)
        classification = classify(facts, rules)
        signature = normalise_error(facts.message) or facts.error_code
        print_ = fingerprint(
            category=classification.category, system=facts.system, kind=facts.kind, error_signature=signature
        )
        prepared.append((event, facts, classification, signature, print_))
    fingerprints = {p[-1] for p in prepared}
    _lock_fingerprints(fingerprints)
    overrides: dict[str, list[FingerprintOverride]] = {}
    for override in FingerprintOverride.objects.filter(is_active=True, fingerprint__in=fingerprints).select_related(
        "target"
    ):
        overrides.setdefault(override.fingerprint, []).append(override)
    live: dict[str, Case] = {}
    for case in (
        Case.objects.select_for_update(of=("self",))
        .select_related("category", "queue")
        .filter(fingerprint__in=fingerprints, merged_into__isnull=True)
        .order_by("-id")
    ):
        live[case.fingerprint] = case  # the oldest live case of a fingerprint wins (ordered newest first)
    touched: dict[int, Case] = {}
    occurrences: dict[int, int] = {}
    created_ids, reopened_ids = [], []
    records, activities = [], []
    for event, facts, classification, signature, print_ in sorted(prepared, key=lambda p: p[0]["occurred_at"]):
        category = categories.get(classification.category) or categories[UNCLASSIFIED]
        at = event["occurred_at"]
        case = _override_target(overrides.get(print_, []), facts.message) or live.get(print_)
        case = touched.get(case.pk, case) if case is not None else None
        if case is None:
            case = _new_case(
                facts=facts,
                category=category,
                classification=classification,
                signature=signature,
                print_=print_,
                at=at,
                routes=routes,
                queues=queues,
            )
            live[print_] = case
            activities.append(
                CaseActivity(
                    case=case,
                    actor="system:classifier",
                    kind=ActivityKind.CREATED,
                    body=classification.explanation,
                    data={"queue": case.queue.slug},
                )
            )
            created_ids.append(case.pk)
        elif _recur(case, activities):
            reopened_ids.append(case.pk)
        case.occurrence_count += 1
        case.amount_at_stake += facts.amount or Decimal(0)
        case.currency = event.get("currency") or case.currency
        case.last_seen, case.first_seen = max(case.last_seen, at), min(case.first_seen, at)
        touched[case.pk] = case
        occurrences[case.pk] = occurrences.get(case.pk, 0) + 1
        records.append(
            ExceptionRecord(
                event_id=event["id"],
                event_received_at=event["received_at"],
                txn_id=event.get("txn_id"),
                case=case,
                category=category,
                rule_id=classification.rule_id,
                explanation=classification.explanation,
                fingerprint=print_,
                system=facts.system,
                kind=facts.kind,
                error_code=facts.error_code[:100],
                error_type=facts.error_type[:200],
                error_message=facts.message,
                entity=facts.entity,
                amount=facts.amount,
                currency=event.get("currency") or "",
                occurred_at=at,
            )
        )
        outcome.classified += 1
        outcome.unclassified += classification.category == UNCLASSIFIED
    for case_id, count in occurrences.items():
        if case_id not in created_ids:
            activities.append(
                CaseActivity(
                    case_id=case_id, actor="system:classifier", kind=ActivityKind.OCCURRENCE, data={"new": count}
                )
            )
    for case in touched.values():
        case.priority = priority_for(
            case.category.severity, case.amount_at_stake, escalation_level=case.escalation_level
        )
        case.version += 1
    rows_update(
        list(touched.values()),
        [
            "occurrence_count",
            "amount_at_stake",
            "currency",
            "first_seen",
            "last_seen",
            "priority",
            "status",
            "resolved_at",
            "snooze_until",
            "snooze_occurrences",
            "version",
        ],
    )
    ExceptionRecord.objects.bulk_create(records, batch_size=1000)
    CaseActivity.objects.bulk_create(activities, batch_size=1000)
    outcome.cases_created, outcome.cases_reopened = len(created_ids), len(reopened_ids)
    # One audit link per batch of automatic classifications (ARCHITECTURE.md: batching automatic actions is fine).
    audit_record(
        actor="system:classifier",
        action="exceptions.classified",
        object_type="exceptions.case",
        after={
            "events": outcome.classified,
            "unclassified": outcome.unclassified,
            "cases_created": created_ids[:200],
            "cases_reopened": reopened_ids[:200],
        },
    )
    for case_id in reopened_ids:
        transaction.on_commit(lambda c=case_id: _notify_later(c, "reopened"))
    return outcome


def _recur(case: Case, activities: list[CaseActivity]) -> bool:
    """A new occurrence of a resolved case reopens it; of a snoozed one, once its condition is met. True: reopened."""
    why = None
    if case.status == CaseStatus.RESOLVED:
        why = "a new occurrence after it was resolved"
    elif case.status == CaseStatus.IGNORED:
        if case.snooze_occurrences is not None:
            case.snooze_occurrences -= 1
            if case.snooze_occurrences <= 0:
                why = "the snooze's occurrence count is reached"
        elif case.snooze_until is not None and case.snooze_until <= timezone.now():
            why = "a new occurrence after the snooze ended"
    if why is None:
        return False
    case.status, case.resolved_at, case.snooze_until, case.snooze_occurrences = CaseStatus.OPEN, None, None, None
    activities.append(CaseActivity(case=case, actor="system:classifier", kind=ActivityKind.REOPENED, body=why))
    return True


def _notify_later(case_id: int, kind: str) -> None:
    from exceptions.tasks import notify_case

    notify_case.delay(case_id, kind)


# ---- Actions on a case ----------------------------------------------------------------------------------------------


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


@transaction.atomic
def case_assign(*, case_id: int, assignee: AbstractBaseUser | None, actor: Any, expected_version: int | None) -> Case:
    case = case_lock(case_id, expected_version)
    _require_actor(actor, case)
    if (
        assignee is not None
        and not case.queue.members.filter(pk=assignee.pk).exists()
        and not assignee.has_perm(ACT_ON_ALL_QUEUES)
    ):
        raise DomainError(f"{assignee.get_username()} is not a member of the {case.queue.name} queue")
    before = case_state(case)
    case.assignee = assignee
    fields = ["assignee"]
    if assignee is not None and case.status == CaseStatus.OPEN:
        case.status = CaseStatus.IN_PROGRESS
        fields.append("status")
    case_save(case, fields)
    who = assignee.get_username() if assignee else "nobody"
    CaseActivity.objects.create(
        case=case, actor=actor_for(actor), kind=ActivityKind.ASSIGNED, body=f"assigned to {who}"
    )
    audit_record(actor=actor_for(actor), action="case.assigned", obj=case, before=before, after=case_state(case))
    if assignee is not None and assignee.pk != getattr(actor, "pk", None):
        transaction.on_commit(lambda: _notify_later(case.pk, "assigned"))
    return case


@transaction.atomic
def case_comment(*, case_id: int, body: str, actor: Any, expected_version: int | None) -> CaseActivity:
    text = (body or "").strip()
    if not text:
        raise DomainError("a comment needs some text")
    case = case_lock(case_id, expected_version)
    _require_actor(actor, case)
    case_save(case, [])
    activity = CaseActivity.objects.create(
        case=case, actor=actor_for(actor), kind=ActivityKind.COMMENT, body=text[:5000]
    )
    audit_record(actor=actor_for(actor), action="case.commented", obj=case, after={"comment": text[:5000]})
    return activity


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
    case = case_lock(case_id, expected_version)
    _require_actor(actor, case)
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
    case_save(case, ["status", "snooze_until", "snooze_occurrences", "resolved_at"])
    kind = ActivityKind.SNOOZED if status == CaseStatus.IGNORED else ActivityKind.STATUS
    data = {"from": before["status"], "to": status}
    if snooze_until:
        data["until"] = snooze_until.isoformat()
    if snooze_occurrences:
        data["occurrences"] = snooze_occurrences
    CaseActivity.objects.create(case=case, actor=actor_for(actor), kind=kind, body=note[:2000], data=data)
    audit_record(
        actor=actor_for(actor), action=f"case.{status}", obj=case, before=before, after={**case_state(case), **data}
    )
    return case


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
        _require_actor(actor, case)
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
        target.last_seen = max(target.last_seen, source.last_seen)
        source.merged_into = target
        source.status = CaseStatus.RESOLVED
        source.resolved_at = timezone.now()
        case_save(source, ["merged_into", "status", "resolved_at"])
        CaseActivity.objects.create(
            case=source, actor=actor_for(actor), kind=ActivityKind.MERGED, body=f"merged into case #{target.pk}"
        )
    case_save(target, ["occurrence_count", "amount_at_stake", "first_seen", "last_seen"])
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
    _require_actor(actor, origin)
    if origin.occurrence_count < 2:
        raise DomainError("a case with a single occurrence cannot be split")
    fragment = (message_contains or "").strip()
    if fragment and fragment.lower() not in occurrence.error_message.lower():
        raise DomainError("the text to split on must appear in this occurrence's error message")
    now = timezone.now()
    case = Case.objects.create(
        fingerprint=origin.fingerprint,
        title=f"{origin.title} (split)"[:300],
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
    case_save(origin, ["occurrence_count", "amount_at_stake"])
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


# ---- Escalation -----------------------------------------------------------------------------------------------------


@transaction.atomic
def cases_escalate(*, now: datetime | None = None) -> list[int]:
    """Periodic: cases unassigned past their triage target or unresolved past their resolve target escalate once per
    missed target: priority up one level, the queue lead notified, an activity and an audit entry."""
    now = now or timezone.now()
    skip_locked = connection.vendor == "postgresql"
    overdue = (
        Case.objects.select_for_update(skip_locked=skip_locked)
        .filter(status__in=ACTIVE_STATUSES, merged_into__isnull=True)
        .select_related("queue", "category")
    )
    escalated = []
    for case in overdue.filter(assignee__isnull=True, triage_due_at__lt=now, escalation_level=0):
        escalated.append(_escalate(case, "unassigned past its triage target"))
    for case in overdue.filter(resolve_due_at__lt=now, escalation_level__lt=2).exclude(pk__in=escalated):
        escalated.append(_escalate(case, "unresolved past its resolution target"))
    if escalated:
        audit_record(
            actor="system:escalation",
            action="cases.escalated",
            object_type="exceptions.case",
            after={"cases": escalated[:500]},
        )
    return escalated


def _escalate(case: Case, why: str) -> int:
    case.escalation_level += 1
    case.priority = max(1, case.priority - 1)
    # The next escalation waits for a new target, so a late case is not escalated on every sweep.
    case.resolve_due_at = timezone.now() + case.queue.resolve_target
    case_save(case, ["escalation_level", "priority", "resolve_due_at"])
    CaseActivity.objects.create(case=case, actor="system:escalation", kind=ActivityKind.ESCALATED, body=why)
    transaction.on_commit(lambda: _notify_later(case.pk, "escalated"))
    return case.pk


# ---- Notifications --------------------------------------------------------------------------------------------------


@transaction.atomic
def notifications_mark_read(*, user: Any, ids: list[int] | None = None) -> int:
    """Mark the user's unread notifications (all, or `ids`) as read; a person's reading state, not audited."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


def case_notify(*, case_id: int, kind: str) -> int:
    """Console notifications and e-mail to the people concerned; outbound webhooks are sent by their own task."""
    from django.core.mail import send_mail

    case = Case.objects.select_related("queue", "queue__lead", "assignee").get(pk=case_id)
    recipients = []
    if kind == "assigned" and case.assignee:
        recipients = [case.assignee]
    elif kind == "escalated":
        recipients = [u for u in (case.queue.lead, case.assignee) if u]
    elif kind == "reopened":
        recipients = [case.assignee] if case.assignee else list(case.queue.members.all()[:20])
    text = {
        "assigned": f"Case #{case.pk} was assigned to you: {case.title}",
        "escalated": f"Case #{case.pk} escalated (P{case.priority}): {case.title}",
        "reopened": f"Case #{case.pk} reopened by a new occurrence: {case.title}",
    }.get(kind, f"Case #{case.pk}: {kind}")[:300]
    Notification.objects.bulk_create([Notification(user=u, case=case, kind=kind, text=text) for u in recipients])
    emails = sorted(
        {u.email for u in recipients if u.email}
        | ({case.queue.notify_email} if kind == "escalated" and case.queue.notify_email else set())
    )
    if emails:
        send_mail(
            subject=f"[Closeloop] {text}",
            message=f"{text}\n\n/cases/{case.pk}/",
            from_email=None,
            recipient_list=emails,
            fail_silently=True,
        )
    return len(recipients)
