"""Who may act on which cases: checked by the services before every action, and by pages and the API to show or
refuse the action before any input is read."""

from typing import Any

from console.lib.capabilities import ACT_ON_ALL_QUEUES, ACT_ON_CASES, EDIT_RULES, MANAGE_INGEST
from console.lib.errors import NotPermitted
from exceptions.models import Case, Queue


def can_act_on_queue(user: Any, queue: Queue) -> bool:
    """Managers and admins act on every queue; finance operations only on the queues they belong to."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.has_perm(ACT_ON_ALL_QUEUES):
        return True
    return user.has_perm(ACT_ON_CASES) and queue.members.filter(pk=user.pk).exists()


def can_act_on_case(user: Any, case: Case) -> bool:
    return can_act_on_queue(user, case.queue)


def require_case_actor(user: Any, case: Case) -> None:
    """Raise NotPermitted (403) unless `user` may act on `case`."""
    if not can_act_on_case(user, case):
        raise NotPermitted("you may only act on cases in the queues you belong to")


def can_be_assigned(user: Any, queue: Queue) -> bool:
    """A case goes to a member of its queue, or to someone who works every queue."""
    return queue.members.filter(pk=user.pk).exists() or user.has_perm(ACT_ON_ALL_QUEUES)


# Replay targets and webhooks are wiring between systems (integration engineers) and decide where finance data goes
# (managers): either role configures them; finance operations and compliance do not.
OUTBOUND_CAPABILITIES = (MANAGE_INGEST, EDIT_RULES)


def can_configure_outbound(user: Any) -> bool:
    return getattr(user, "is_authenticated", False) and any(user.has_perm(p) for p in OUTBOUND_CAPABILITIES)
