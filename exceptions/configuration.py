"""Managers' configuration writes: taxonomy categories, classification and routing rules, queues and their members,
and re-routing open cases after the routing rules changed.

Each service changes its rows inside one atomic block and writes its audit entry (before/after) as the last write of
that block, so that a change and its audit entry are committed together or not at all. Editing rules reclassifies and
re-routes nothing by itself: new failures follow the new rules; moving open cases is the separate `cases_reroute`.
"""

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.lib.audit import audit_delete, audit_record
from console.lib.capabilities import ACT_ON_CASES
from console.lib.errors import DomainError
from exceptions.choices import ActivityKind, Severity
from exceptions.models import Case, CaseActivity, Category, ClassificationRule, Queue, RoutingRule
from exceptions.selectors import CaseMove, open_cases, routing_moves
from exceptions.services import routing_specs
from transactions.durations import duration_label

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")
_STATUS_RE = re.compile(r"^\d{3}$")
_STATUS_RANGE_RE = re.compile(r"^(\d{3})-(\d{3})$")
# The audit entry of a re-route lists the moves; a larger batch is summarised past this many.
AUDITED_MOVES = 500


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return before != after


def _slug_problem(slug: str, max_length: int) -> str | None:
    if not SLUG_RE.match(slug) or len(slug) > max_length:
        return f"lower-case letters, digits, - and _ (at most {max_length}), e.g. master-data"
    return None


# ---- Taxonomy categories --------------------------------------------------------------------------------------------


def category_snapshot(category: Category) -> dict[str, Any]:
    return {
        "slug": category.slug,
        "name": category.name,
        "severity": category.severity,
        "retryable": category.retryable,
        "suggested_action": category.suggested_action,
        "description": category.description,
    }


def _category_apply(
    category: Category, *, name: str, severity: str, retryable: bool, suggested_action: str, description: str
) -> None:
    if not name.strip():
        raise DomainError("the name is empty")
    if severity not in Severity.values:
        raise DomainError(f"unknown severity {severity!r}")
    category.name = name.strip()
    category.severity = severity
    category.retryable = retryable
    category.suggested_action = suggested_action.strip()
    category.description = description.strip()


@transaction.atomic
def category_create(
    *,
    actor: str,
    slug: str,
    name: str,
    severity: str,
    retryable: bool = False,
    suggested_action: str = "",
    description: str = "",
) -> Category:
    slug = slug.strip()
    problem = _slug_problem(slug, 40)
    if problem:
        raise DomainError(f"slug: {problem}")
    if Category.objects.filter(slug=slug).exists():
        raise DomainError(f"a category with the slug {slug!r} exists already")
    category = Category(slug=slug)
    _category_apply(
        category,
        name=name,
        severity=severity,
        retryable=retryable,
        suggested_action=suggested_action,
        description=description,
    )
    category.save()
    audit_record(actor=actor, action="category.created", obj=category, after=category_snapshot(category))
    return category


@transaction.atomic
def category_update(
    *,
    category: Category,
    actor: str,
    name: str,
    severity: str,
    retryable: bool,
    suggested_action: str = "",
    description: str = "",
) -> Category:
    """The slug never changes: cases' fingerprints and routing rules name categories by it."""
    category = Category.objects.select_for_update().get(pk=category.pk)
    before = category_snapshot(category)
    _category_apply(
        category,
        name=name,
        severity=severity,
        retryable=retryable,
        suggested_action=suggested_action,
        description=description,
    )
    after = category_snapshot(category)
    if not _changed(before, after):
        return category
    category.save()
    audit_record(actor=actor, action="category.updated", obj=category, before=before, after=after)
    return category


# ---- Classification rules -------------------------------------------------------------------------------------------


def http_status_problem(text: str) -> str | None:
    """Why `text` is not a status condition classification understands (429, 5xx, 500-504, comma-separated)."""
    for part in (p.strip().lower() for p in text.split(",")):
        if _STATUS_CLASS_RE.match(part):
            continue
        if _STATUS_RE.match(part) and 100 <= int(part) <= 599:
            continue
        found = _STATUS_RANGE_RE.match(part)
        if found:
            low, high = int(found.group(1)), int(found.group(2))
            if 100 <= low <= high <= 599:
                continue
            return f"{part!r}: a range runs from a lower to a higher status, both between 100 and 599"
        return f"{part or 'an empty part'!r} is not a status: use 429, 5xx or 500-504 (several separated by commas)"
    return None


def attributes_problem(attributes: Any) -> str | None:
    if not isinstance(attributes, dict):
        return 'a JSON object of attribute name to glob, e.g. {"http.route": "/orders*"}'
    for name, pattern in attributes.items():
        if not name.strip():
            return "an attribute name is empty"
        if not isinstance(pattern, str) or not pattern.strip():
            return f"the pattern of {name!r} must be a non-empty text (a glob such as EU* or a|b)"
    return None


def classification_rule_problems(*, message_pattern: str, http_status: str, attributes: Any) -> dict[str, str]:
    """What keeps a rule from working, by field name (empty when it is sound); forms and services both ask."""
    problems: dict[str, str] = {}
    if message_pattern:
        try:
            re.compile(message_pattern, re.IGNORECASE)
        except re.error as exc:
            # classify() treats a broken pattern as "no match": the rule would silently never apply.
            problems["message_pattern"] = f"not a regular expression: {exc}"
    if http_status:
        problem = http_status_problem(http_status)
        if problem:
            problems["http_status"] = problem
    problem = attributes_problem(attributes)
    if problem:
        problems["attributes"] = problem
    return problems


def classification_rule_snapshot(rule: ClassificationRule) -> dict[str, Any]:
    return {
        "position": rule.position,
        "name": rule.name,
        "category": rule.category.slug,
        "system": rule.system,
        "kind": rule.kind,
        "error_code": rule.error_code,
        "error_type": rule.error_type,
        "message_pattern": rule.message_pattern,
        "http_status": rule.http_status,
        "attributes": rule.attributes,
        "is_active": rule.is_active,
    }


def _classification_rule_apply(
    rule: ClassificationRule,
    *,
    position: int,
    name: str,
    category: Category,
    system: str = "",
    kind: str = "",
    error_code: str = "",
    error_type: str = "",
    message_pattern: str = "",
    http_status: str = "",
    attributes: dict[str, str] | None = None,
    is_active: bool = True,
) -> None:
    attributes = {} if attributes is None else attributes
    http_status = re.sub(r"\s+", "", http_status)
    problems = classification_rule_problems(
        message_pattern=message_pattern, http_status=http_status, attributes=attributes
    )
    if not name.strip():
        problems["name"] = "the name is empty"
    if problems:
        raise DomainError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    rule.position = position
    rule.name = name.strip()
    rule.category = category
    rule.system = system.strip()
    rule.kind = kind.strip()
    rule.error_code = error_code.strip()
    rule.error_type = error_type.strip()
    rule.message_pattern = message_pattern
    rule.http_status = http_status
    rule.attributes = {k.strip(): v.strip() for k, v in attributes.items()}
    rule.is_active = is_active


@transaction.atomic
def classification_rule_create(*, actor: str, **fields: Any) -> ClassificationRule:
    """A rule that classifies failures from now on; what was classified before keeps its category."""
    rule = ClassificationRule()
    _classification_rule_apply(rule, **fields)
    rule.save()
    audit_record(actor=actor, action="classification_rule.created", obj=rule, after=classification_rule_snapshot(rule))
    return rule


@transaction.atomic
def classification_rule_update(*, rule: ClassificationRule, actor: str, **fields: Any) -> ClassificationRule:
    rule = ClassificationRule.objects.select_for_update().get(pk=rule.pk)
    before = classification_rule_snapshot(rule)
    _classification_rule_apply(rule, **fields)
    after = classification_rule_snapshot(rule)
    if not _changed(before, after):
        return rule
    rule.save()
    audit_record(actor=actor, action="classification_rule.updated", obj=rule, before=before, after=after)
    return rule


@transaction.atomic
def classification_rule_set_active(*, rule: ClassificationRule, actor: str, is_active: bool) -> ClassificationRule:
    rule = ClassificationRule.objects.select_for_update().get(pk=rule.pk)
    if rule.is_active == is_active:
        return rule
    if is_active:
        # A rule loaded as data before validation existed must not start classifying with a broken condition.
        problems = classification_rule_problems(
            message_pattern=rule.message_pattern, http_status=rule.http_status, attributes=rule.attributes
        )
        if problems:
            raise DomainError("fix this rule before activating it: " + "; ".join(problems.values()))
    before = classification_rule_snapshot(rule)
    rule.is_active = is_active
    rule.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=actor,
        action="classification_rule.activated" if is_active else "classification_rule.deactivated",
        obj=rule,
        before=before,
        after=classification_rule_snapshot(rule),
    )
    return rule


@transaction.atomic
def classification_rule_delete(*, rule: ClassificationRule, actor: str) -> None:
    """Cases and occurrences it classified keep their category; they just no longer name a rule."""
    rule = ClassificationRule.objects.select_for_update().get(pk=rule.pk)
    audit_delete(obj=rule, actor=actor, action="classification_rule.deleted", before=classification_rule_snapshot(rule))


@transaction.atomic
def classification_rules_reorder(*, positions: dict[int, int], actor: str) -> int:
    """Set several rules' positions at once (the list page's order form); returns how many moved."""
    if any(p < 0 for p in positions.values()):
        raise DomainError("positions are whole numbers from 0")
    rules = {r.pk: r for r in ClassificationRule.objects.select_for_update().filter(pk__in=positions)}
    missing = sorted(set(positions) - set(rules))
    if missing:
        raise DomainError(f"no such rule: {', '.join(map(str, missing))} (deleted meanwhile?); reload the page")
    moved = {pk: (rules[pk].position, p) for pk, p in sorted(positions.items()) if rules[pk].position != p}
    if not moved:
        return 0
    for pk, (_, new) in moved.items():
        ClassificationRule.objects.filter(pk=pk).update(position=new, updated_at=timezone.now())
    audit_record(
        actor=actor,
        action="classification_rules.reordered",
        object_type=ClassificationRule._meta.label_lower,
        before={str(pk): old for pk, (old, _) in moved.items()},
        after={str(pk): new for pk, (_, new) in moved.items()},
    )
    return len(moved)


# ---- Routing rules --------------------------------------------------------------------------------------------------


def routing_rule_problems(*, categories: list[str], min_amount: Decimal | None) -> dict[str, str]:
    problems: dict[str, str] = {}
    unknown = sorted(set(categories) - set(Category.objects.values_list("slug", flat=True)))
    if unknown:
        problems["categories"] = f"no such category: {', '.join(unknown)}"
    if min_amount is not None and min_amount < 0:
        problems["min_amount"] = "the amount cannot be negative"
    return problems


def routing_rule_snapshot(rule: RoutingRule) -> dict[str, Any]:
    return {
        "position": rule.position,
        "name": rule.name,
        "queue": rule.queue.slug,
        "categories": list(rule.categories or []),
        "system": rule.system,
        "kind": rule.kind,
        "entity": rule.entity,
        "min_amount": None if rule.min_amount is None else str(Decimal(rule.min_amount).quantize(Decimal("0.01"))),
        "is_active": rule.is_active,
    }


def _routing_rule_apply(
    rule: RoutingRule,
    *,
    position: int,
    name: str,
    queue: Queue,
    categories: list[str] | None = None,
    system: str = "",
    kind: str = "",
    entity: str = "",
    min_amount: Decimal | None = None,
    is_active: bool = True,
) -> None:
    categories = sorted(set(categories or []))
    problems = routing_rule_problems(categories=categories, min_amount=min_amount)
    if not name.strip():
        problems["name"] = "the name is empty"
    if problems:
        raise DomainError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    rule.position = position
    rule.name = name.strip()
    rule.queue = queue
    rule.categories = categories
    rule.system = system.strip()
    rule.kind = kind.strip()
    rule.entity = entity.strip()
    rule.min_amount = min_amount
    rule.is_active = is_active


@transaction.atomic
def routing_rule_create(*, actor: str, **fields: Any) -> RoutingRule:
    """Routes new cases from now on; open cases move only when someone re-routes them (`cases_reroute`)."""
    rule = RoutingRule()
    _routing_rule_apply(rule, **fields)
    rule.save()
    audit_record(actor=actor, action="routing_rule.created", obj=rule, after=routing_rule_snapshot(rule))
    return rule


@transaction.atomic
def routing_rule_update(*, rule: RoutingRule, actor: str, **fields: Any) -> RoutingRule:
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    before = routing_rule_snapshot(rule)
    _routing_rule_apply(rule, **fields)
    after = routing_rule_snapshot(rule)
    if not _changed(before, after):
        return rule
    rule.save()
    audit_record(actor=actor, action="routing_rule.updated", obj=rule, before=before, after=after)
    return rule


@transaction.atomic
def routing_rule_delete(*, rule: RoutingRule, actor: str) -> None:
    """Cases it routed stay in their queue (they just no longer name a rule) until someone re-routes them."""
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    audit_delete(obj=rule, actor=actor, action="routing_rule.deleted", before=routing_rule_snapshot(rule))


@transaction.atomic
def cases_reroute(*, actor: str) -> list[CaseMove]:
    """Move every open case the current routing rules would put elsewhere; nothing but the queue and the routing rule
    changes (assignee, status, targets stay). One activity per case, one audit entry listing the moves."""
    # Lock the open cases first, by themselves: a concurrent action on one of them waits, and its version bump after
    # ours makes a stale form answer 409 instead of silently acting on a case that moved.
    locked = set(open_cases().select_for_update().order_by("pk").values_list("pk", flat=True))
    moves = routing_moves(rules=routing_specs(), only=locked)
    if not moves:
        return []
    slugs = dict(Queue.objects.values_list("pk", "slug"))
    now = timezone.now()
    for move in moves:
        Case.objects.filter(pk=move.case_id).update(
            queue_id=move.to_queue_id, routing_rule_id=move.rule_id, version=F("version") + 1, updated_at=now
        )
        CaseActivity.objects.create(
            case_id=move.case_id,
            actor=actor,
            kind=ActivityKind.ROUTED,
            body=move.description,
            data={"from": slugs.get(move.from_queue_id), "to": slugs.get(move.to_queue_id), "rule": move.rule_id},
        )
    listed = [
        {
            "case": m.case_id,
            "from": slugs.get(m.from_queue_id),
            "to": slugs.get(m.to_queue_id),
            "rule": m.rule_name or None,
        }
        for m in moves
    ]
    audit_record(
        actor=actor,
        action="cases.rerouted",
        object_type=Case._meta.label_lower,
        after={"count": len(moves), "moves": listed[:AUDITED_MOVES]},
    )
    return moves


# ---- Queues and their members ---------------------------------------------------------------------------------------


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


def _take_default(queue: Queue) -> list[tuple[Queue, dict[str, Any]]]:
    """Make room for `queue` as the one default: the previous default gives it up first (the partial unique index
    allows one). Returns the queues changed, with their state before, for the caller to audit at the end."""
    changed = []
    for previous in Queue.objects.select_for_update().filter(is_default=True).exclude(pk=queue.pk):
        before = queue_snapshot(previous)
        Queue.objects.filter(pk=previous.pk).update(is_default=False, updated_at=timezone.now())
        previous.is_default = False
        changed.append((previous, before))
    return changed


def _audit_default_given_up(changed: list[tuple[Queue, dict[str, Any]]], actor: str) -> None:
    for previous, before in changed:
        audit_record(actor=actor, action="queue.updated", obj=previous, before=before, after=queue_snapshot(previous))


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
    slug = slug.strip()
    problem = _slug_problem(slug, 60)
    if problem:
        raise DomainError(f"slug: {problem}")
    if Queue.objects.filter(slug=slug).exists():
        raise DomainError(f"a queue with the slug {slug!r} exists already")
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
    changed = _take_default(queue) if is_default else []
    queue.is_default = is_default
    queue.save()
    _audit_default_given_up(changed, actor)
    audit_record(actor=actor, action="queue.created", obj=queue, after=queue_snapshot(queue))
    return queue


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
    # No select_related("lead"): a nullable FK is an outer join, which PostgreSQL cannot lock.
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    before = queue_snapshot(queue)
    if queue.is_default and not is_default:
        raise DomainError("exactly one queue is the default: make another queue the default instead")
    _queue_apply(
        queue,
        name=name,
        triage_target=triage_target,
        resolve_target=resolve_target,
        notify_email=notify_email,
        lead=lead,
    )
    after = {**queue_snapshot(queue), "is_default": is_default}
    if not _changed(before, after):
        return queue
    changed = _take_default(queue) if is_default and not queue.is_default else []
    queue.is_default = is_default
    queue.save()
    _audit_default_given_up(changed, actor)
    audit_record(actor=actor, action="queue.updated", obj=queue, before=before, after=after)
    return queue


def _member_names(queue: Queue) -> list[str]:
    return sorted(u.get_username() for u in queue.members.all())


@transaction.atomic
def queue_member_add(*, queue: Queue, user: Any, actor: str) -> Queue:
    """Finance operations act on the cases of the queues they belong to (managers on every queue anyway)."""
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    if not user.is_active or not user.has_perm(ACT_ON_CASES):
        raise DomainError(f"{user.get_username()} may not act on cases (finance_ops or manager role needed)")
    if queue.members.filter(pk=user.pk).exists():
        raise DomainError(f"{user.get_username()} is a member of {queue.name} already")
    before = _member_names(queue)
    queue.members.add(user)
    audit_record(
        actor=actor,
        action="queue.member_added",
        obj=queue,
        before={"members": before},
        after={"members": _member_names(queue), "added": user.get_username()},
    )
    return queue


@transaction.atomic
def queue_member_remove(*, queue: Queue, user: Any, actor: str) -> Queue:
    """Cases assigned to the member stay assigned: reassigning them is the queue's work, visible on its page."""
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    if not queue.members.filter(pk=user.pk).exists():
        raise DomainError(f"{user.get_username()} is not a member of {queue.name}")
    before = _member_names(queue)
    queue.members.remove(user)
    audit_record(
        actor=actor,
        action="queue.member_removed",
        obj=queue,
        before={"members": before},
        after={"members": _member_names(queue), "removed": user.get_username()},
    )
    return queue
