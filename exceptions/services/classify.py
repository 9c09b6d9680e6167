"""Classification: failed events become occurrences (`ExceptionRecord`), grouped by fingerprint into cases that the
routing rules put in a queue; a recurrence reopens a resolved (or woken snoozed) case.

Work is per batch, not per event, and every batch writes one audit link (ARCHITECTURE.md: batching automatic actions
is fine).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_record
from console.lib.bulk import rows_update
from console.lib.locks import advisory_lock_keys, key_bucket
from exceptions.choices import UNCLASSIFIED, ActivityKind, CaseStatus
from exceptions.classification import (
    CaseFacts,
    FailureFacts,
    RoutingSpec,
    classify,
    fingerprint,
    normalise_error,
    priority_for,
    route,
)
from exceptions.models import Case, CaseActivity, Category, ExceptionRecord, FingerprintOverride, Queue
from exceptions.selectors import classification_specs, failure_facts, routing_specs
from exceptions.services.notify import notify_later
from transactions.selectors import failed_event_details

LOCK_NAMESPACE = 0x4558


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
        transaction.on_commit(lambda c=case_id: notify_later(c, "reopened"))
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
