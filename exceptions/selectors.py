"""Reads of the exceptions app shared by the triage console and the API."""

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery

from console.lib.audit import audit_history
from console.lib.capabilities import ACT_ON_ALL_QUEUES, ACT_ON_CASES
from exceptions.choices import ACTIVE_STATUSES, UNCLASSIFIED, ReplayStatus
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
    CaseActivity,
    Category,
    ClassificationRule,
    ExceptionRecord,
    Notification,
    OutboundWebhook,
    Queue,
    Replay,
    ReplayTarget,
    RoutingRule,
)
from transactions.selectors import failed_event_details


def case_list() -> QuerySet[Case]:
    """Live cases (merged ones are folded into their target), most urgent first: priority, then newest occurrence."""
    return (
        Case.objects.filter(merged_into__isnull=True)
        .select_related("queue", "category", "assignee")
        .order_by("priority", "-last_seen", "-id")
    )


def case_get(*, case_id: int) -> Case:
    return Case.objects.select_related("queue", "category", "assignee", "rule", "routing_rule").get(pk=case_id)


def case_occurrences(*, case: Case, limit: int = 200) -> QuerySet[ExceptionRecord]:
    return ExceptionRecord.objects.filter(case=case).select_related("rule").order_by("-occurred_at")[:limit]


def case_activities(*, case: Case) -> QuerySet[CaseActivity]:
    return CaseActivity.objects.filter(case=case).order_by("created_at", "id")


def queue_list_for(*, user: object) -> QuerySet[Queue]:
    """The queues a user works: all of them for managers and readers of everything, else their memberships."""
    queues = Queue.objects.order_by("name")
    if user.has_perm(ACT_ON_ALL_QUEUES) or not user.has_perm(ACT_ON_CASES):
        return queues
    return queues.filter(members=user)


# ---- Triage console ----


@dataclass(frozen=True)
class QueueSummary:
    """One row of the queues page."""

    queue: Queue
    backlog: int
    unassigned: int
    overdue: int
    oldest_first_seen: datetime | None


def _overdue(now: datetime) -> Q:
    # Triage is met by assigning the case, so the triage target only counts while nobody owns it.
    return Q(assignee__isnull=True, triage_due_at__lt=now) | Q(resolve_due_at__lt=now)


def queue_summaries(*, queues: Iterable[Queue], now: datetime) -> list[QueueSummary]:
    """Backlog (active cases), unassigned, overdue and the oldest first occurrence per queue, in one grouped query."""
    queues = list(queues)
    rows = {
        row["queue_id"]: row
        for row in Case.objects.filter(queue__in=queues, status__in=ACTIVE_STATUSES, merged_into__isnull=True)
        .values("queue_id")
        .annotate(
            backlog=Count("id"),
            unassigned=Count("id", filter=Q(assignee__isnull=True)),
            overdue=Count("id", filter=_overdue(now)),
            oldest=Min("first_seen"),
        )
        .order_by()
    }
    empty = {"backlog": 0, "unassigned": 0, "overdue": 0, "oldest": None}
    return [
        QueueSummary(
            queue=q,
            backlog=rows.get(q.pk, empty)["backlog"],
            unassigned=rows.get(q.pk, empty)["unassigned"],
            overdue=rows.get(q.pk, empty)["overdue"],
            oldest_first_seen=rows.get(q.pk, empty)["oldest"],
        )
        for q in queues
    ]


def queue_get(*, slug: str) -> Queue:
    return Queue.objects.select_related("lead").get(slug=slug)


def queue_member_list(*, queue: Queue) -> QuerySet:
    """The people a case of this queue can be assigned to."""
    return get_user_model().objects.filter(queues=queue, is_active=True).order_by("username")


def case_live_id(*, case_id: int) -> int:
    """The id of the case that `case_id` was merged into (following the chain), or `case_id` itself."""
    seen = {case_id}
    current = Case.objects.values_list("merged_into_id", flat=True).get(pk=case_id)
    live = case_id
    while current is not None and current not in seen:
        seen.add(current)
        live = current
        current = Case.objects.values_list("merged_into_id", flat=True).get(pk=current)
    return live


def case_transaction_ids(*, case: Case, limit: int = 3) -> list[int]:
    """The distinct transactions the case's occurrences belong to, most recently failing first."""
    rows = (
        ExceptionRecord.objects.filter(case=case, txn__isnull=False)
        .values("txn_id")
        .annotate(latest=Max("occurred_at"))
        .order_by("-latest", "-txn_id")[:limit]
    )
    return [row["txn_id"] for row in rows]


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a case's history: an activity (what operators read) or an audit entry (the tamper-evident row)."""

    at: datetime
    actor: str
    source: str  # "activity" or "audit"
    what: str
    body: str
    data: Any


def case_history(*, case: Case) -> list[HistoryEntry]:
    """Activities and audit entries of the case, oldest first; both are shown because only the audit side is
    hash-chained, and only the activity side carries recurrences and comments as operators wrote them."""
    entries = [
        HistoryEntry(at=a.created_at, actor=a.actor, source="activity", what=a.kind, body=a.body, data=a.data)
        for a in case_activities(case=case)
    ]
    entries += [
        HistoryEntry(
            at=e.occurred_at,
            actor=e.actor,
            source="audit",
            what=e.action,
            body=e.entry_hash[:12],
            data={"before": e.before, "after": e.after},
        )
        for e in audit_history(obj=case)
    ]
    # Stable sort: at equal times the activity (written first in each service) stays before its audit entry.
    return sorted(entries, key=lambda e: e.at)


def case_list_for_transaction(*, txn_id: int) -> QuerySet[Case]:
    """The live cases with an occurrence in this transaction (merges and splits move occurrences, so they are live)."""
    return case_list().filter(pk__in=ExceptionRecord.objects.filter(txn_id=txn_id).values("case_id"))


def notification_list(*, user: Any, unread_only: bool = False, limit: int = 200) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(user=user).select_related("case").order_by("-created_at", "-id")
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications[:limit]


def notification_unread_count(*, user: Any) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


# ---- API and replay -------------------------------------------------------------------------------------------------


# Where a success event names the replay it confirms: the id we sent as Idempotency-Key, echoed back as an attribute.
REPLAY_ID_ATTRIBUTES = ("closeloop.replay_id", "idempotency_key")
# The statuses the model's partial unique constraint allows once per occurrence.
REPLAY_IN_FLIGHT = (ReplayStatus.PENDING, ReplayStatus.SENDING, ReplayStatus.SENT)


def case_detail_list() -> QuerySet[Case]:
    """Cases (merged ones too, so that old links still answer) with what the detail view shows, in a fixed number of
    queries: the latest 50 occurrences, the latest 200 activities and the latest 20 replays."""
    return Case.objects.select_related(
        "queue", "category", "assignee", "rule", "routing_rule", "merged_into"
    ).prefetch_related(
        Prefetch(
            "occurrences",
            queryset=ExceptionRecord.objects.select_related("rule").order_by("-occurred_at", "-id")[:50],
            to_attr="latest_occurrences",
        ),
        # A busy case collects one activity per occurrence; the newest ones are what an operator reads first.
        Prefetch(
            "activities",
            queryset=CaseActivity.objects.order_by("-created_at", "-id")[:200],
            to_attr="latest_activities",
        ),
        Prefetch("replays", queryset=Replay.objects.order_by("-created_at")[:20], to_attr="latest_replays"),
    )


def occurrence_latest(*, case_id: int) -> ExceptionRecord | None:
    return ExceptionRecord.objects.filter(case_id=case_id).order_by("-occurred_at", "-id").first()


def replay_target_for(*, system: str) -> ReplayTarget | None:
    return ReplayTarget.objects.filter(system=system, is_active=True).first()


def replay_previous(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id).order_by("-created_at").first()


def replay_in_flight(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id, status__in=REPLAY_IN_FLIGHT).first()


def replays_awaiting_success(*, since: datetime) -> dict[str, Replay]:
    """Replays a success event may still confirm, by id text: those in flight, and those whose send looked failed
    since `since` (a target can process a request and still answer 5xx, or time out after doing the work)."""
    replays = Replay.objects.filter(
        Q(status__in=[ReplayStatus.SENDING, ReplayStatus.SENT]) | Q(status=ReplayStatus.FAILED, claimed_at__gte=since)
    )
    return {str(r.pk): r for r in replays}


def replay_oldest_unconfirmed_claim(*, since: datetime) -> datetime | None:
    """When the oldest replay that a success event may still confirm was claimed (None: nothing awaits one)."""
    return (
        Replay.objects.filter(
            Q(status__in=[ReplayStatus.SENDING, ReplayStatus.SENT])
            | Q(status=ReplayStatus.FAILED, claimed_at__gte=since)
        )
        .order_by("claimed_at")
        .values_list("claimed_at", flat=True)
        .first()
    )


def webhooks_for(*, kind: str) -> list[OutboundWebhook]:
    """Active webhooks subscribed to `kind` (an empty list subscribes to everything); filtered here because SQLite
    cannot ask whether a JSON list contains a value, and there are only a handful of webhooks."""
    return [
        w for w in OutboundWebhook.objects.filter(is_active=True).order_by("id") if not w.events or kind in w.events
    ]


# ---- Manager configuration ------------------------------------------------------------------------------------------


# Rule previews and match counts look this far back (the occurrence_time_idx serves `occurred_at >= ?`).
PREVIEW_DAYS = 7
# A preview classifies in Python; past this many recent occurrences it looks at the newest ones only and says so.
PREVIEW_LIMIT = 10_000
PREVIEW_SAMPLE = 20
ROUTING_PREVIEW_SAMPLE = 50
# The id a rule being created has in a preview; real ids start at 1.
NEW_RULE_ID = 0


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
    rows: list[PreviewRow] = field(default_factory=list)


def _facts_of(record: ExceptionRecord, event: dict | None) -> FailureFacts:
    from exceptions.services import failure_facts  # see classification_rule_preview

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
    # Imported here: the write side (services and the modules they use) reads through selectors; importing it back at
    # module level would make the two depend on each other at import time.
    from exceptions.services import classification_specs

    current = classification_specs()
    positions = dict(ClassificationRule.objects.values_list("id", "position"))
    others = [s for s in current if s.rule_id != spec.rule_id]
    key = _order_key(position, spec.rule_id)
    at = next((i for i, s in enumerate(others) if _order_key(positions[s.rule_id], s.rule_id) > key), len(others))
    edited = [*others[:at], spec, *others[at:]]
    records = list(
        ExceptionRecord.objects.filter(occurred_at__gte=now - timedelta(days=PREVIEW_DAYS))
        .select_related("category")
        .order_by("-occurred_at", "-id")[: limit + 1]
    )
    preview = ClassificationPreview(days=PREVIEW_DAYS, scanned=min(len(records), limit), capped=len(records) > limit)
    records = records[:limit]
    for start in range(0, len(records), 1000):
        chunk = records[start : start + 1000]
        events = {e["id"]: e for e in failed_event_details(event_ids=[r.event_id for r in chunk])}
        for record in chunk:
            facts = _facts_of(record, events.get(record.event_id))
            outcome = classify(facts, edited)
            if outcome.rule_id == spec.rule_id:
                preview.matches += 1
                preview.changes_category += record.category.slug != spec.category
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
    from exceptions.services import routing_specs  # see classification_rule_preview

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


def open_case_categories_by_txn(*, categories: Iterable[str], txn_ids: Iterable[int] | None = None) -> dict:
    """{txn id: {category slug: first occurrence on the txn}} for live, active cases of these categories.

    Costs the open cases of the categories (what pauses SLA clocks), never the history of closed ones.
    """
    slugs = sorted(set(categories))
    if not slugs:
        return {}
    rows = ExceptionRecord.objects.filter(
        txn_id__isnull=False,
        case__status__in=ACTIVE_STATUSES,
        case__merged_into__isnull=True,
        case__category__slug__in=slugs,
    )
    if txn_ids is not None:
        rows = rows.filter(txn_id__in=list(txn_ids))
    found: dict[int, dict[str, datetime]] = {}
    for txn_id, slug, first in (
        rows.values("txn_id", "case__category__slug")
        .annotate(first=Min("occurred_at"))
        .values_list("txn_id", "case__category__slug", "first")
        .order_by()
    ):
        found.setdefault(txn_id, {})[slug] = first
    return found
