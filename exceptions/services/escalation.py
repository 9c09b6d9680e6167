"""Escalation: the periodic sweep that raises the priority of cases past their triage or resolve target."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, OuterRef, Value
from django.utils import timezone

from console.lib.audit import audit_record
from exceptions.choices import ACTIVE_STATUSES, ActivityKind
from exceptions.models import Case, CaseActivity
from exceptions.services.cases import case_save
from exceptions.services.notify import notify_later


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
    # At most one escalation per resolve target period: the due date itself stays, so that the case keeps counting
    # as overdue on the queue page for as long as it is.
    recently_escalated = Exists(
        CaseActivity.objects.filter(
            case=OuterRef("pk"),
            kind=ActivityKind.ESCALATED,
            created_at__gt=ExpressionWrapper(
                Value(now, output_field=DateTimeField()) - OuterRef("queue__resolve_target"),
                output_field=DateTimeField(),
            ),
        )
    )
    late = overdue.filter(resolve_due_at__lt=now, escalation_level__lt=2).exclude(pk__in=escalated)
    for case in late.filter(~recently_escalated):
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
    case_save(case, ["escalation_level", "priority"])
    CaseActivity.objects.create(case=case, actor="system:escalation", kind=ActivityKind.ESCALATED, body=why)
    transaction.on_commit(lambda: notify_later(case.pk, "escalated"))
    return case.pk
