"""Classification: failed events become occurrences (`ExceptionRecord`), grouped by fingerprint into cases that the
routing rules put in a queue; a recurrence reopens a resolved (or woken snoozed) case.

`occurrences_group` is the one path from an arrival to its case, shared by failed events (`failures_classify`, per
batch) and by signals (services/signals.py, one at a time): locking, merge and split overrides, routing, reopening,
counts and activities are the same for both.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_record
from console.lib.bulk import rows_update
from console.lib.locks import advisory_lock_keys, key_bucket
from console.lib.models import merged_chain_end
from exceptions.choices import UNCLASSIFIED, ActivityKind, CaseStatus
from exceptions.classification import (
    CaseFacts,
    FailureFacts,
    RoutingSpec,
    classify,
    fingerprint,
    headline,
    normalise_error,
    priority_for,
    route,
)
from exceptions.models import Case, CaseActivity, Category, ExceptionRecord, FingerprintOverride, Queue
from exceptions.selectors import classification_specs, failure_facts, routing_specs
from exceptions.services.notify import notify_later
from transactions.selectors import failed_event_details

LOCK_NAMESPACE = 0x4558
CLASSIFIER = "system:classifier"


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


def fingerprints_lock(fingerprints: Iterable[str]) -> None:
    """Serialise the grouping of these fingerprints until the transaction ends (two writers never make two cases)."""
    advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f) for f in fingerprints))


def override_target(overrides: list[FingerprintOverride], message: str) -> Case | None:
    # Split overrides name a message fragment and are more specific than merges of the whole fingerprint.
    for override in sorted(overrides, key=lambda o: (o.message_contains == "", -o.pk)):
        if not override.message_contains or override.message_contains.lower() in message.lower():
            # The case it names may have been merged since: follow to the live one, locked like every case we add to.
            # No select_related here: PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
            return merged_chain_end(override.target, queryset=Case.objects.select_for_update())
    return None


@dataclass(frozen=True)
class Arrival:
    """One occurrence about to be recorded, from a failed event or from a signal: what grouping, routing and the
    occurrence row need."""

    facts: FailureFacts
    category: str
    rule_id: int | None
    explanation: str
    signature: str
    fingerprint: str
    at: datetime
    currency: str = ""
    txn_id: int | None = None
    event_id: int | None = None
    event_received_at: datetime | None = None
    signal_key: str = ""
    title: str = ""  # a signal names its case; a failure's case is named after its category and error
    queue_id: int | None = None  # a signal may name its queue (an SLA's breach queue); else the routing rules decide


@dataclass
class Grouped:
    """What `occurrences_group` did: the occurrence rows (in the arrivals' time order) and the cases they went to."""

    records: list[ExceptionRecord] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    reopened_ids: list[int] = field(default_factory=list)


def _new_case(*, arrival: Arrival, category: Category, routes: list[RoutingSpec], queues: dict[int, Queue]) -> Case:
    facts = arrival.facts
    amount = facts.amount or Decimal(0)
    chosen = queues.get(arrival.queue_id) if arrival.queue_id is not None else None
    routed = None if chosen else route(CaseFacts(category.slug, facts.system, facts.kind, facts.entity, amount), routes)
    queue = chosen or (queues[routed.queue_id] if routed else _default_queue())
    title = (
        arrival.title
        or f"{category.name}: {facts.system} {facts.kind} — {arrival.signature or facts.error_code or 'failed'}"
    )
    return Case.objects.create(
        fingerprint=arrival.fingerprint,
        title=title[:300],
        category=category,
        rule_id=arrival.rule_id,
        explanation=arrival.explanation,
        system=facts.system,
        kind=facts.kind,
        error_signature=arrival.signature,
        queue=queue,
        routing_rule_id=routed.rule_id if routed else None,
        priority=priority_for(category.severity, amount),
        status=CaseStatus.OPEN,
        first_seen=arrival.at,
        last_seen=arrival.at,
        # Targets count from the first occurrence: a failure first seen three weeks ago is overdue now, however late
        # it was classified (a lost task swept up later, a backlog replayed into ingest).
        triage_due_at=arrival.at + queue.triage_target,
        resolve_due_at=arrival.at + queue.resolve_target,
    )


def occurrences_group(arrivals: list[Arrival], *, actor: str) -> Grouped:
    """Record `arrivals` as occurrences of the live case of their fingerprint (or of the case an operator's merge or
    split sends them to), creating and routing a case where none is live, and reopening resolved ones. Call inside an
    atomic block; the caller writes the audit entry.

    Work is per batch, not per occurrence: categories, queues and the batch's cases are read once, records and
    activities inserted together, and every touched case written once with its final counts.
    """
    grouped = Grouped()
    if not arrivals:
        return grouped
    routes = routing_specs()
    categories = _categories()
    queues = {q.pk: q for q in Queue.objects.all()}
    fingerprints = {a.fingerprint for a in arrivals}
    fingerprints_lock(fingerprints)
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
    activities: list[CaseActivity] = []
    for arrival in sorted(arrivals, key=lambda a: a.at):
        facts, at = arrival.facts, arrival.at
        category = categories.get(arrival.category) or categories[UNCLASSIFIED]
        case = override_target(overrides.get(arrival.fingerprint, []), facts.message) or live.get(arrival.fingerprint)
        case = touched.get(case.pk, case) if case is not None else None
        if case is None:
            case = _new_case(arrival=arrival, category=category, routes=routes, queues=queues)
            live[arrival.fingerprint] = case
            activities.append(
                CaseActivity(
                    case=case,
                    actor=actor,
                    kind=ActivityKind.CREATED,
                    body=arrival.explanation,
                    data={"queue": case.queue.slug},
                )
            )
            grouped.created_ids.append(case.pk)
        elif _recur(case, activities, actor=actor):
            grouped.reopened_ids.append(case.pk)
        case.occurrence_count += 1
        case.amount_at_stake += facts.amount or Decimal(0)
        case.currency = arrival.currency or case.currency
        if at >= case.last_seen or not case.latest_message:  # arrivals are in time order, late ones may come later
            case.latest_message = headline(facts.message) or case.latest_message
        case.last_seen, case.first_seen = max(case.last_seen, at), min(case.first_seen, at)
        touched[case.pk] = case
        occurrences[case.pk] = occurrences.get(case.pk, 0) + 1
        grouped.records.append(
            ExceptionRecord(
                event_id=arrival.event_id,
                event_received_at=arrival.event_received_at,
                signal_key=arrival.signal_key,
                txn_id=arrival.txn_id,
                case=case,
                category=category,
                rule_id=arrival.rule_id,
                explanation=arrival.explanation,
                fingerprint=arrival.fingerprint,
                system=facts.system,
                kind=facts.kind,
                error_code=facts.error_code[:100],
                error_type=facts.error_type[:200],
                error_message=facts.message,
                entity=facts.entity,
                amount=facts.amount,
                currency=arrival.currency,
                occurred_at=at,
            )
        )
    for case_id, count in occurrences.items():
        if case_id not in grouped.created_ids:
            activities.append(
                CaseActivity(case_id=case_id, actor=actor, kind=ActivityKind.OCCURRENCE, data={"new": count})
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
            "latest_message",
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
    ExceptionRecord.objects.bulk_create(grouped.records, batch_size=1000)
    CaseActivity.objects.bulk_create(activities, batch_size=1000)
    for case_id in grouped.reopened_ids:
        transaction.on_commit(lambda c=case_id: notify_later(c, "reopened"))
    return grouped


def _recur(case: Case, activities: list[CaseActivity], *, actor: str) -> bool:
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
    activities.append(CaseActivity(case=case, actor=actor, kind=ActivityKind.REOPENED, body=why))
    return True


@dataclass
class ClassifyOutcome:
    classified: int = 0
    cases_created: int = 0
    cases_reopened: int = 0
    unclassified: int = 0


@transaction.atomic
def failures_classify(*, event_ids: list[int]) -> ClassifyOutcome:
    """Classify failed events into exception records grouped into cases; events already classified are skipped."""
    done = set(ExceptionRecord.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True))
    events = [
        e for e in failed_event_details(event_ids=[i for i in event_ids if i not in done]) if e["status"] == "error"
    ]
    if not events:
        return ClassifyOutcome()
    rules = classification_specs()
    arrivals = []
    for event in events:
        facts = failure_facts(event)
        classification = classify(facts, rules)
        signature = normalise_error(facts.message) or facts.error_code
        arrivals.append(
            Arrival(
                facts=facts,
                category=classification.category,
                rule_id=classification.rule_id,
                explanation=classification.explanation,
                signature=signature,
                fingerprint=fingerprint(
                    category=classification.category, system=facts.system, kind=facts.kind, error_signature=signature
                ),
                at=event["occurred_at"],
                currency=event.get("currency") or "",
                txn_id=event.get("txn_id"),
                event_id=event["id"],
                event_received_at=event["received_at"],
            )
        )
    grouped = occurrences_group(arrivals, actor=CLASSIFIER)
    outcome = ClassifyOutcome(
        classified=len(arrivals),
        cases_created=len(grouped.created_ids),
        cases_reopened=len(grouped.reopened_ids),
        unclassified=sum(a.category == UNCLASSIFIED for a in arrivals),
    )
    # One audit link per batch of automatic classifications (ARCHITECTURE.md: batching automatic actions is fine).
    audit_record(
        actor=CLASSIFIER,
        action="exceptions.classified",
        object_type="exceptions.case",
        after={
            "events": outcome.classified,
            "unclassified": outcome.unclassified,
            "cases_created": grouped.created_ids[:200],
            "cases_reopened": grouped.reopened_ids[:200],
        },
    )
    return outcome
