"""Managers' configuration writes: taxonomy categories, classification and routing rules, and re-routing open cases
after the routing rules changed (queues are in services/queues.py).

Each service changes its rows inside one atomic block and writes its audit entry (before/after) as the last write of
that block, so that a change and its audit entry are committed together or not at all. Editing rules reclassifies and
re-routes nothing by itself: new failures follow the new rules; moving open cases is the separate `cases_reroute`.
"""

import re
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from console.lib.audit import audit_delete, audit_record, audited_create, audited_set_active, audited_update
from console.lib.errors import DomainError
from exceptions.choices import ActivityKind, Severity
from exceptions.models import Case, CaseActivity, Category, ClassificationRule, Queue, RoutingRule
from exceptions.selectors import CaseMove, open_cases, routing_moves, routing_specs

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")
_STATUS_RE = re.compile(r"^\d{3}$")
_STATUS_RANGE_RE = re.compile(r"^(\d{3})-(\d{3})$")
# The audit entry of a re-route lists the moves; a larger batch is summarised past this many.
AUDITED_MOVES = 500


def new_slug(model: type[models.Model], slug: str, *, max_length: int, noun: str) -> str:
    """The slug of an object being created, stripped; refused when malformed or taken. Slugs never change afterwards:
    fingerprints, routing rules, links and audit entries name objects by them."""
    slug = slug.strip()
    if not SLUG_RE.match(slug) or len(slug) > max_length:
        raise DomainError(f"slug: lower-case letters, digits, - and _ (at most {max_length}), e.g. master-data")
    if model._default_manager.filter(slug=slug).exists():
        raise DomainError(f"a {noun} with the slug {slug!r} exists already")
    return slug


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
    category = Category(slug=new_slug(Category, slug, max_length=40, noun="category"))
    _category_apply(
        category,
        name=name,
        severity=severity,
        retryable=retryable,
        suggested_action=suggested_action,
        description=description,
    )
    return audited_create(category, actor=actor, action="category.created", snapshot=category_snapshot)


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
    return audited_update(
        category,
        actor=actor,
        action="category.updated",
        snapshot=category_snapshot,
        apply=lambda locked: _category_apply(
            locked,
            name=name,
            severity=severity,
            retryable=retryable,
            suggested_action=suggested_action,
            description=description,
        ),
    )


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


def classification_rule_create(
    *,
    actor: str,
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
) -> ClassificationRule:
    """A rule that classifies failures from now on; what was classified before keeps its category."""
    rule = ClassificationRule()
    _classification_rule_apply(
        rule,
        position=position,
        name=name,
        category=category,
        system=system,
        kind=kind,
        error_code=error_code,
        error_type=error_type,
        message_pattern=message_pattern,
        http_status=http_status,
        attributes=attributes,
        is_active=is_active,
    )
    return audited_create(
        rule, actor=actor, action="classification_rule.created", snapshot=classification_rule_snapshot
    )


def classification_rule_update(
    *,
    rule: ClassificationRule,
    actor: str,
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
) -> ClassificationRule:
    return audited_update(
        rule,
        actor=actor,
        action="classification_rule.updated",
        snapshot=classification_rule_snapshot,
        apply=lambda locked: _classification_rule_apply(
            locked,
            position=position,
            name=name,
            category=category,
            system=system,
            kind=kind,
            error_code=error_code,
            error_type=error_type,
            message_pattern=message_pattern,
            http_status=http_status,
            attributes=attributes,
            is_active=is_active,
        ),
    )


def _activation_problems(rule: ClassificationRule) -> list[str]:
    # A rule loaded as data before validation existed must not start classifying with a broken condition; one that
    # is active already is left alone (switching it "on" again changes nothing).
    if rule.is_active:
        return []
    problems = classification_rule_problems(
        message_pattern=rule.message_pattern, http_status=rule.http_status, attributes=rule.attributes
    )
    return list(problems.values())


def classification_rule_set_active(*, rule: ClassificationRule, actor: str, is_active: bool) -> ClassificationRule:
    return audited_set_active(
        rule,
        actor=actor,
        action_prefix="classification_rule",
        snapshot=classification_rule_snapshot,
        is_active=is_active,
        problems=_activation_problems,
    )


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


def routing_rule_create(
    *,
    actor: str,
    position: int,
    name: str,
    queue: Queue,
    categories: list[str] | None = None,
    system: str = "",
    kind: str = "",
    entity: str = "",
    min_amount: Decimal | None = None,
    is_active: bool = True,
) -> RoutingRule:
    """Routes new cases from now on; open cases move only when someone re-routes them (`cases_reroute`)."""
    rule = RoutingRule()
    _routing_rule_apply(
        rule,
        position=position,
        name=name,
        queue=queue,
        categories=categories,
        system=system,
        kind=kind,
        entity=entity,
        min_amount=min_amount,
        is_active=is_active,
    )
    return audited_create(rule, actor=actor, action="routing_rule.created", snapshot=routing_rule_snapshot)


def routing_rule_update(
    *,
    rule: RoutingRule,
    actor: str,
    position: int,
    name: str,
    queue: Queue,
    categories: list[str] | None = None,
    system: str = "",
    kind: str = "",
    entity: str = "",
    min_amount: Decimal | None = None,
    is_active: bool = True,
) -> RoutingRule:
    return audited_update(
        rule,
        actor=actor,
        action="routing_rule.updated",
        snapshot=routing_rule_snapshot,
        apply=lambda locked: _routing_rule_apply(
            locked,
            position=position,
            name=name,
            queue=queue,
            categories=categories,
            system=system,
            kind=kind,
            entity=entity,
            min_amount=min_amount,
            is_active=is_active,
        ),
    )


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
