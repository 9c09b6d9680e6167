"""Notifications: console notifications and e-mail to the people concerned by a case, sent by a task after commit.

Outbound webhooks about the same facts are delivered by a task of their own (services/webhooks.py).
"""

from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from exceptions.models import Case, Notification


def notify_later(case_id: int, kind: str) -> None:
    """Enqueue the notification task; call it from `transaction.on_commit`, so that nobody hears of a rolled-back
    change. The one import of the tasks module from the services: tasks import the services at load time."""
    from exceptions.tasks import notify_case

    notify_case.delay(case_id, kind)


@transaction.atomic
def notifications_mark_read(*, user: Any, ids: list[int] | None = None) -> int:
    """Mark the user's unread notifications (all, or `ids`) as read; a person's reading state, not audited."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


def case_notify(*, case_id: int, kind: str) -> int:
    """Console notifications and e-mail to the people concerned; outbound webhooks are sent by their own task."""
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
