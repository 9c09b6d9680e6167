"""Reads of cases, queues and notifications: the triage console, the API and the transaction page's panel."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, Prefetch, Q, QuerySet

from console.lib.audit import audit_history
from console.lib.capabilities import ACT_ON_ALL_QUEUES, ACT_ON_CASES
from console.lib.models import merged_chain_end_id
from exceptions.choices import ACTIVE_STATUSES, ActivityKind
from exceptions.models import (
    Case,
    CaseActivity,
    ExceptionRecord,
    Notification,
    Queue,
    Replay,
)


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


def case_has_occurrence(*, case: Case, occurrence_id: int) -> bool:
    return ExceptionRecord.objects.filter(case=case, pk=occurrence_id).exists()


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


def case_overdue_condition(*, now: datetime) -> Q:
    """Cases past a target: the queue page's overdue count and its `overdue` filter use this one condition."""
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
            overdue=Count("id", filter=case_overdue_condition(now=now)),
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
    return merged_chain_end_id(Case.objects.all(), case_id)


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


def occurrence_latest(*, case_id: int, replayable: bool = False) -> ExceptionRecord | None:
    """The case's newest occurrence; with `replayable`, the newest that a failed event carries (a signal has no
    record to send again)."""
    occurrences = ExceptionRecord.objects.filter(case_id=case_id)
    if replayable:
        occurrences = occurrences.filter(event_id__isnull=False)
    return occurrences.order_by("-occurred_at", "-id").first()


def lineage_case_facts(*, txn_ids: Iterable[int]) -> dict[str, list[dict]]:
    """What the exceptions app decided and did about these transactions, as plain rows for the compliance lineage:
    occurrences (classification), their cases (routing), case activities and replays, oldest first."""
    ids = list(txn_ids)
    records = list(
        ExceptionRecord.objects.filter(txn_id__in=ids)
        .order_by("occurred_at", "id")
        .values(
            "id",
            "txn_id",
            "case_id",
            "event_id",
            "occurred_at",
            "created_at",
            "system",
            "kind",
            "category__slug",
            "rule__name",
            "explanation",
            "signal_key",
        )
    )
    case_ids = sorted({r["case_id"] for r in records})
    cases = list(
        Case.objects.filter(pk__in=case_ids)
        .order_by("id")
        .values(
            "id",
            "title",
            "status",
            "created_at",
            "first_seen",
            "category__slug",
            "queue__name",
            "routing_rule__name",
            "merged_into_id",
        )
    )
    activities = list(
        # A case's growth by other transactions' occurrences is not this transaction's lineage (its own occurrence
        # is): a case with 100,000 occurrences would otherwise bring all of its growth into every transaction.
        CaseActivity.objects.filter(case_id__in=case_ids)
        .exclude(kind=ActivityKind.OCCURRENCE)
        .order_by("created_at", "id")
        .values("id", "case_id", "actor", "kind", "body", "created_at")
    )
    replays = list(
        Replay.objects.filter(case_id__in=case_ids)
        .order_by("created_at")
        .values("id", "case_id", "status", "outcome", "requested_by", "created_at", "target_url")
    )
    return {"records": records, "cases": cases, "activities": activities, "replays": replays}


def open_case_categories_by_txn(
    *, categories: Iterable[str], txn_ids: Iterable[int] | None = None
) -> dict[int, dict[str, datetime]]:
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


def signal_case_ids_open_for(*, txn_ids: Iterable[int], category_slug: str) -> list[int]:
    """Active (unmerged) cases of a signal category with an occurrence on one of these transactions."""
    wanted = sorted(set(txn_ids))
    if not wanted:
        return []
    return sorted(
        set(
            ExceptionRecord.objects.filter(
                txn_id__in=wanted,
                signal_key__isnull=False,
                category__slug=category_slug,
                case__status__in=ACTIVE_STATUSES,
                case__merged_into__isnull=True,
            ).values_list("case_id", flat=True)
        )
    )


def signal_occurrences_on_transactions_in(*, case_id: int, txn_status: str, limit: int) -> dict[int, set[str]]:
    """The signal keys of a case's occurrences whose transaction is (still) in `txn_status`, per transaction; at
    most `limit` occurrences (a caller asking "does any still hold?" needs only a few)."""
    found: dict[int, set[str]] = {}
    rows = ExceptionRecord.objects.filter(case_id=case_id, signal_key__isnull=False, txn__status=txn_status)
    for txn_id, key in rows.values_list("txn_id", "signal_key")[:limit]:
        found.setdefault(txn_id, set()).add(key)
    return found


def signal_keys_recorded(*, keys: Iterable[str]) -> set[str]:
    """Which of these signal keys already have their occurrence (the unique signal_key index answers it), so that a
    caller sweeping for conditions can skip the ones signalled before."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    return set(ExceptionRecord.objects.filter(signal_key__in=wanted).values_list("signal_key", flat=True))
