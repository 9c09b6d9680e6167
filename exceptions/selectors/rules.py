"""Reads of the managers' configuration: the rules as classification and routing read them, previews of rules as
typed, routing moves, the taxonomy gap and queues with their counts."""

import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery

from exceptions.choices import ACTIVE_STATUSES, UNCLASSIFIED
from exceptions.classification import (
    CaseFacts,
    ClassificationSpec,
    FailureFacts,
    RoutingSpec,
    classify,
    http_status_of,
    route,
)
from exceptions.models import (
    Case,
    Category,
    ClassificationRule,
    ExceptionRecord,
    Queue,
    RoutingRule,
)
from transactions.selectors import failed_event_details

# Rule previews and match counts look this far back (the occurrence_time_idx serves `occurred_at >= ?`).
PREVIEW_DAYS = 7
# A preview classifies in Python; past this many recent occurrences it looks at the newest ones only and says so.
PREVIEW_LIMIT = 10_000
PREVIEW_SAMPLE = 20
ROUTING_PREVIEW_SAMPLE = 50
# The id a rule being created has in a preview; real ids start at 1.
NEW_RULE_ID = 0


def classification_specs() -> list[ClassificationSpec]:
    """The active classification rules, in evaluation order, as classification reads them."""
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
    """The active routing rules, in evaluation order, as routing reads them."""
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
    """What classification and routing look at in a failed event (as `failed_event_details` returns it)."""
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


def category_list() -> QuerySet[Category]:
    return Category.objects.annotate(rule_count=Count("rules")).order_by("name")


@dataclass(frozen=True)
class GapRow:
    """Unclassified occurrences of one (system, kind, error code) in the last 7 and 30 days."""

    system: str
    kind: str
    error_code: str
    error_type: str
    sample_message: str
    last_7_days: int
    last_30_days: int
    last_seen: datetime
    # An open, still unclassified case of the group, to classify from ("Classify"); None when none is open.
    case_id: int | None = None


def taxonomy_gap(*, now: datetime, limit: int = 200) -> list[GapRow]:
    """What no classification rule matched lately, grouped by system, kind and error code; the most frequent first."""
    week, month = now - timedelta(days=7), now - timedelta(days=30)
    rows = (
        ExceptionRecord.objects.filter(category__slug=UNCLASSIFIED, occurred_at__gte=month)
        .values("system", "kind", "error_code")
        .annotate(
            last_7_days=Count("id", filter=Q(occurred_at__gte=week)),
            last_30_days=Count("id"),
            last_seen=Max("occurred_at"),
            # Any one of the group's values will do to pre-fill a rule; MAX is the cheapest "any" in SQL.
            error_type=Max("error_type"),
            sample_message=Max("error_message"),
            case_id=Max(
                "case_id",
                filter=Q(
                    case__category__slug=UNCLASSIFIED,
                    case__status__in=ACTIVE_STATUSES,
                    case__merged_into__isnull=True,
                ),
            ),
        )
        .order_by("-last_7_days", "-last_30_days", "system", "kind", "error_code")[:limit]
    )
    return [GapRow(**{**row, "sample_message": (row["sample_message"] or "")[:300]}) for row in rows]


def classification_rule_list(*, now: datetime) -> list[ClassificationRule]:
    """Every rule in evaluation order, each with `matches_7d`: the occurrences it classified in the last 7 days."""
    since = now - timedelta(days=PREVIEW_DAYS)
    counts = dict(
        ExceptionRecord.objects.filter(occurred_at__gte=since, rule__isnull=False)
        .values("rule_id")
        .annotate(n=Count("id"))
        .values_list("rule_id", "n")
    )
    rules = list(ClassificationRule.objects.select_related("category").order_by("position", "id"))
    for rule in rules:
        rule.matches_7d = counts.get(rule.pk, 0)  # type: ignore[attr-defined]
    return rules


def classification_rule_get(*, rule_id: int) -> ClassificationRule:
    return ClassificationRule.objects.select_related("category").get(pk=rule_id)


def _order_key(position: int, rule_id: int) -> tuple[int, int]:
    # A rule being created has no id yet; saved, it gets the highest one, so it comes last among equal positions.
    return (position, rule_id or sys.maxsize)


@dataclass(frozen=True)
class PreviewRow:
    occurred_at: datetime
    system: str
    kind: str
    error_code: str
    message: str
    current: str
    new: str


@dataclass
class ClassificationPreview:
    """What one rule, as typed, would classify among recent occurrences, with the rules before it still winning."""

    days: int
    scanned: int
    capped: bool
    matches: int = 0
    changes_category: int = 0
    # Occurrences this (saved) rule classifies under the current rules that the edited one would leave to others.
    left_to_others: int = 0
    # The taxonomy gap's view of the same: unclassified occurrences scanned, those the rule would classify, and
    # occurrences in another category today that the rule would move ("others change").
    unclassified: int = 0
    unclassified_matches: int = 0
    others_change: int = 0
    rows: list[PreviewRow] = field(default_factory=list)


def occurrence_facts(record: ExceptionRecord, event: dict | None) -> FailureFacts:
    """What classification looks at in a recorded occurrence: its event when still stored, else the record."""
    if event is not None:
        return failure_facts(event)
    # The event is gone (retention dropped its partition): the record keeps all but its attributes.
    return FailureFacts(
        system=record.system,
        kind=record.kind,
        error_code=record.error_code,
        error_type=record.error_type,
        message=record.error_message,
        http_status=http_status_of(record.error_code, {}),
        entity=record.entity,
        amount=record.amount,
    )


def classification_rule_preview(
    *, spec: ClassificationSpec, position: int, now: datetime, limit: int = PREVIEW_LIMIT, sample: int = PREVIEW_SAMPLE
) -> ClassificationPreview:
    """Classify the last 7 days of occurrences with the active rules plus `spec` (treated as active) in its position.

    `spec.rule_id` is the edited rule's id, or NEW_RULE_ID for a rule not saved yet. Nothing is written.
    """
    current = classification_specs()
    positions = dict(ClassificationRule.objects.values_list("id", "position"))
    others = [s for s in current if s.rule_id != spec.rule_id]
    key = _order_key(position, spec.rule_id)
    at = next((i for i, s in enumerate(others) if _order_key(positions[s.rule_id], s.rule_id) > key), len(others))
    edited = [*others[:at], spec, *others[at:]]
    records = list(
        # Signals name their category themselves: no classification rule ever sees them.
        ExceptionRecord.objects.filter(occurred_at__gte=now - timedelta(days=PREVIEW_DAYS), event_id__isnull=False)
        .select_related("category")
        .order_by("-occurred_at", "-id")[: limit + 1]
    )
    preview = ClassificationPreview(days=PREVIEW_DAYS, scanned=min(len(records), limit), capped=len(records) > limit)
    records = records[:limit]
    for start in range(0, len(records), 1000):
        chunk = records[start : start + 1000]
        events = {e["id"]: e for e in failed_event_details(event_ids=[r.event_id for r in chunk])}
        for record in chunk:
            facts = occurrence_facts(record, events.get(record.event_id))
            outcome = classify(facts, edited)
            gap = record.category.slug == UNCLASSIFIED
            preview.unclassified += gap
            if outcome.rule_id == spec.rule_id:
                preview.matches += 1
                preview.changes_category += record.category.slug != spec.category
                preview.unclassified_matches += gap
                preview.others_change += not gap and record.category.slug != spec.category
                if len(preview.rows) < sample:
                    preview.rows.append(
                        PreviewRow(
                            occurred_at=record.occurred_at,
                            system=record.system,
                            kind=record.kind,
                            error_code=record.error_code,
                            message=record.error_message[:300],
                            current=record.category.slug,
                            new=spec.category,
                        )
                    )
            elif spec.rule_id != NEW_RULE_ID and classify(facts, current).rule_id == spec.rule_id:
                preview.left_to_others += 1
    return preview


def routing_rule_list() -> QuerySet[RoutingRule]:
    return RoutingRule.objects.select_related("queue").order_by("position", "id")


def routing_rule_get(*, rule_id: int) -> RoutingRule:
    return routing_rule_list().get(pk=rule_id)


def routing_specs_as_typed(*, spec: RoutingSpec, position: int, is_active: bool) -> list[RoutingSpec]:
    """The active routing rules as they would be with `spec` saved in `position` (left out when inactive)."""
    positions = dict(RoutingRule.objects.values_list("id", "position"))
    others = [s for s in routing_specs() if s.rule_id != spec.rule_id]
    if not is_active:
        return others
    key = _order_key(position, spec.rule_id)
    at = next((i for i, s in enumerate(others) if _order_key(positions[s.rule_id], s.rule_id) > key), len(others))
    return [*others[:at], spec, *others[at:]]


@dataclass(frozen=True)
class CaseMove:
    """An open case that the routing rules would put in another queue."""

    case_id: int
    title: str
    version: int
    from_queue_id: int
    from_queue: str
    to_queue_id: int
    to_queue: str
    rule_id: int | None
    rule_name: str

    @property
    def reason(self) -> str:
        return f"rule “{self.rule_name}”" if self.rule_id is not None else "no routing rule matches: the default queue"

    @property
    def description(self) -> str:
        return f"moved from {self.from_queue} to {self.to_queue} by {self.reason}"


def open_cases() -> QuerySet[Case]:
    """Live open cases (open, in progress, waiting; not merged away): the ones routing still concerns."""
    return Case.objects.filter(status__in=ACTIVE_STATUSES, merged_into__isnull=True)


def routing_moves(*, rules: list[RoutingSpec], only: set[int] | None = None) -> list[CaseMove]:
    """Open cases (all, or those in `only`) whose queue differs from the one `rules` give them; cases no rule matches
    go to the default queue (and stay where they are when there is none). The facts are those routing looks at:
    category, system, kind, the entity of the latest occurrence and the amount at stake."""
    queues = {q.pk: q.name for q in Queue.objects.all()}
    default_id = Queue.objects.filter(is_default=True).values_list("pk", flat=True).first()
    # occurrence_case_idx (case, -occurred_at) serves this: one index probe per case.
    latest_entity = ExceptionRecord.objects.filter(case=OuterRef("pk")).order_by("-occurred_at", "-id").values("entity")
    rows = (
        open_cases()
        .annotate(entity=Subquery(latest_entity[:1]))
        .values("pk", "title", "version", "queue_id", "category__slug", "system", "kind", "entity", "amount_at_stake")
        .order_by("pk")
    )
    moves = []
    for row in rows:
        # Filtered here rather than with pk IN (...): thousands of open cases would overflow SQLite's parameter limit.
        if only is not None and row["pk"] not in only:
            continue
        facts = CaseFacts(
            row["category__slug"], row["system"], row["kind"], row["entity"] or "", row["amount_at_stake"] or Decimal(0)
        )
        routed = route(facts, rules)
        target = routed.queue_id if routed else default_id
        if target is None or target == row["queue_id"]:
            continue
        moves.append(
            CaseMove(
                case_id=row["pk"],
                title=row["title"],
                version=row["version"],
                from_queue_id=row["queue_id"],
                from_queue=queues.get(row["queue_id"], "?"),
                to_queue_id=target,
                to_queue=queues.get(target, "?"),
                rule_id=routed.rule_id if routed else None,
                rule_name=routed.name if routed else "",
            )
        )
    return moves


def queue_manage_list() -> QuerySet[Queue]:
    """Every queue with its member count and open case count (distinct: the two joins would multiply otherwise)."""
    return (
        Queue.objects.select_related("lead")
        .annotate(
            member_count=Count("members", distinct=True),
            open_cases=Count(
                "cases", filter=Q(cases__status__in=ACTIVE_STATUSES, cases__merged_into__isnull=True), distinct=True
            ),
        )
        .order_by("name")
    )


def queue_manage_get(*, queue_id: int) -> Queue:
    return Queue.objects.select_related("lead").get(pk=queue_id)


def queue_eligible_users() -> QuerySet[Any]:
    """Active users who may act on cases (finance operations, managers, admins): who can join a queue or lead it."""
    users = get_user_model().objects.filter(is_active=True)
    permission = Permission.objects.filter(codename="act_on_cases", content_type__app_label="console").first()
    if permission is None:
        return users.filter(is_superuser=True)
    return (
        users.filter(Q(is_superuser=True) | Q(groups__permissions=permission) | Q(user_permissions=permission))
        .distinct()
        .order_by("username")
    )
