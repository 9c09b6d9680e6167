"""Reads of the exceptions app shared by the triage console and the API."""

from django.db.models import QuerySet

from exceptions.models import Case, CaseActivity, ExceptionRecord, Queue


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
    if user.has_perm("console.act_on_all_queues") or not user.has_perm("console.act_on_cases"):
        return queues
    return queues.filter(members=user)
