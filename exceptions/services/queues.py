"""Queues and their members: the managers' writes, each in one atomic block with its audit entry (before/after).

Exactly one queue is the default (where cases go when no routing rule matches): making another the default takes
it from the previous one, as an audited change of that queue too.
"""

from datetime import timedelta
from typing import Any

from django.db import transaction

from console.lib.audit import audit_record, audited_create, audited_update
from console.lib.capabilities import ACT_ON_CASES
from console.lib.errors import DomainError
from exceptions.models import Queue
from exceptions.services.configuration import new_slug
from transactions.durations import duration_label


def queue_snapshot(queue: Queue) -> dict[str, Any]:
    return {
        "slug": queue.slug,
        "name": queue.name,
        "is_default": queue.is_default,
        "triage_target": duration_label(queue.triage_target),
        "resolve_target": duration_label(queue.resolve_target),
        "notify_email": queue.notify_email,
        "lead": queue.lead.get_username() if queue.lead_id and queue.lead else None,
    }


def _queue_apply(
    queue: Queue,
    *,
    name: str,
    triage_target: timedelta,
    resolve_target: timedelta,
    notify_email: str = "",
    lead: Any = None,
) -> None:
    if not name.strip():
        raise DomainError("the name is empty")
    if triage_target <= timedelta() or resolve_target <= timedelta():
        raise DomainError("targets must be longer than zero")
    if triage_target > resolve_target:
        # Triage is part of resolving: a case cannot be due for assignment after it is due to be resolved.
        raise DomainError("the triage target cannot be longer than the resolve target")
    queue.name = name.strip()
    queue.triage_target = triage_target
    queue.resolve_target = resolve_target
    queue.notify_email = notify_email.strip()
    queue.lead = lead


def _give_up_default(queue: Queue, actor: str) -> None:
    """Make room for `queue` as the one default: the previous default gives it up first (the partial unique index
    allows one), as an audited update of its own."""
    for previous in Queue.objects.filter(is_default=True).exclude(pk=queue.pk):
        audited_update(
            previous,
            actor=actor,
            action="queue.updated",
            snapshot=queue_snapshot,
            apply=lambda locked: setattr(locked, "is_default", False),
        )


@transaction.atomic
def queue_create(
    *,
    actor: str,
    slug: str,
    name: str,
    triage_target: timedelta,
    resolve_target: timedelta,
    is_default: bool = False,
    notify_email: str = "",
    lead: Any = None,
) -> Queue:
    slug = new_slug(Queue, slug, max_length=60, noun="queue")
    if not is_default and not Queue.objects.filter(is_default=True).exists():
        raise DomainError("no queue is the default yet: make this one the default (exactly one queue is)")
    queue = Queue(slug=slug)
    _queue_apply(
        queue,
        name=name,
        triage_target=triage_target,
        resolve_target=resolve_target,
        notify_email=notify_email,
        lead=lead,
    )
    if is_default:
        _give_up_default(queue, actor)
    queue.is_default = is_default
    return audited_create(queue, actor=actor, action="queue.created", snapshot=queue_snapshot)


@transaction.atomic
def queue_update(
    *,
    queue: Queue,
    actor: str,
    name: str,
    triage_target: timedelta,
    resolve_target: timedelta,
    is_default: bool,
    notify_email: str = "",
    lead: Any = None,
) -> Queue:
    """Targets apply to cases created from now on; open cases keep the due dates they were given."""

    def apply(locked: Queue) -> None:
        if locked.is_default and not is_default:
            raise DomainError("exactly one queue is the default: make another queue the default instead")
        _queue_apply(
            locked,
            name=name,
            triage_target=triage_target,
            resolve_target=resolve_target,
            notify_email=notify_email,
            lead=lead,
        )
        if is_default and not locked.is_default:
            _give_up_default(locked, actor)
        locked.is_default = is_default

    return audited_update(queue, actor=actor, action="queue.updated", snapshot=queue_snapshot, apply=apply)


def _member_names(queue: Queue) -> list[str]:
    return sorted(u.get_username() for u in queue.members.all())


def _membership_change(*, queue: Queue, user: Any, actor: str, join: bool) -> Queue:
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    name, member = user.get_username(), queue.members.filter(pk=user.pk).exists()
    if join and (not user.is_active or not user.has_perm(ACT_ON_CASES)):
        raise DomainError(f"{name} may not act on cases (finance_ops or manager role needed)")
    if join and member:
        raise DomainError(f"{name} is a member of {queue.name} already")
    if not join and not member:
        raise DomainError(f"{name} is not a member of {queue.name}")
    before = _member_names(queue)
    (queue.members.add if join else queue.members.remove)(user)
    audit_record(
        actor=actor,
        action="queue.member_added" if join else "queue.member_removed",
        obj=queue,
        before={"members": before},
        after={"members": _member_names(queue), ("added" if join else "removed"): name},
    )
    return queue


@transaction.atomic
def queue_member_add(*, queue: Queue, user: Any, actor: str) -> Queue:
    """Finance operations act on the cases of the queues they belong to (managers on every queue anyway)."""
    return _membership_change(queue=queue, user=user, actor=actor, join=True)


@transaction.atomic
def queue_member_remove(*, queue: Queue, user: Any, actor: str) -> Queue:
    """Cases assigned to the member stay assigned: reassigning them is the queue's work, visible on its page."""
    return _membership_change(queue=queue, user=user, actor=actor, join=False)
