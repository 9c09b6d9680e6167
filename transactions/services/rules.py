"""Extraction rules (business keys and failure marks per source and kind) and redaction rules, as edited on the console.

Every change is audited through console.lib.audit's helpers; ingest reads the active rules at the start of each batch.
"""

from typing import Any

from django.db import transaction

from console.lib.audit import audit_delete, audited_create, audited_set_active, audited_update
from console.lib.errors import DomainError
from transactions.canonical import KEY_TYPE_RE, PathError, parse_path
from transactions.choices import RedactionAction, RuleAction
from transactions.models import ExtractionRule, IngestSource, RedactionRule


def extraction_rule_problems(*, action: str, path: str, key_type: str) -> dict[str, str]:
    """What keeps a rule from working, by field name (empty when it is sound); forms and services both ask."""
    problems: dict[str, str] = {}
    if action not in RuleAction.values:
        problems["action"] = f"unknown action {action!r}"
        return problems
    if action == RuleAction.BUSINESS_KEY:
        if not path:
            problems["path"] = "a business-key rule needs a JSON path"
        if not key_type:
            problems["key_type"] = "a business-key rule needs a key type"
    if path and "path" not in problems:
        try:
            parse_path(path)
        except PathError as exc:
            problems["path"] = str(exc)
    if key_type and not KEY_TYPE_RE.match(key_type):
        problems["key_type"] = "lower-case letters, digits and _, starting with a letter (e.g. order, invoice)"
    return problems


def extraction_rule_snapshot(rule: ExtractionRule) -> dict[str, Any]:
    return {
        "source": rule.source.name if rule.source_id else None,
        "kind_pattern": rule.kind_pattern,
        "action": rule.action,
        "path": rule.path,
        "key_type": rule.key_type,
        "description": rule.description,
        "position": rule.position,
        "is_active": rule.is_active,
    }


def _extraction_rule_apply(
    rule: ExtractionRule,
    *,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str,
    key_type: str,
    description: str,
    position: int,
    is_active: bool,
) -> None:
    path, key_type = path.strip(), key_type.strip()
    problems = extraction_rule_problems(action=action, path=path, key_type=key_type)
    if problems:
        raise DomainError("; ".join(f"{name}: {text}" for name, text in problems.items()))
    rule.source = source
    rule.kind_pattern = kind_pattern.strip() or "*"
    rule.action = action
    rule.path = path
    rule.key_type = key_type
    rule.description = description.strip()
    rule.position = position
    rule.is_active = is_active


@transaction.atomic
def extraction_rule_create(
    *,
    actor: str,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str = "",
    key_type: str = "",
    description: str = "",
    position: int = 100,
    is_active: bool = True,
) -> ExtractionRule:
    rule = ExtractionRule()
    _extraction_rule_apply(
        rule,
        source=source,
        kind_pattern=kind_pattern,
        action=action,
        path=path,
        key_type=key_type,
        description=description,
        position=position,
        is_active=is_active,
    )
    return audited_create(rule, actor=actor, action="extraction_rule.created", snapshot=extraction_rule_snapshot)


@transaction.atomic
def extraction_rule_update(
    *,
    rule: ExtractionRule,
    actor: str,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str = "",
    key_type: str = "",
    description: str = "",
    position: int = 100,
    is_active: bool = True,
) -> ExtractionRule:
    # Only the rule's row is locked: joining its nullable source would be an outer join, which PostgreSQL cannot lock.
    return audited_update(
        rule,
        actor=actor,
        action="extraction_rule.updated",
        snapshot=extraction_rule_snapshot,
        apply=lambda locked: _extraction_rule_apply(
            locked,
            source=source,
            kind_pattern=kind_pattern,
            action=action,
            path=path,
            key_type=key_type,
            description=description,
            position=position,
            is_active=is_active,
        ),
    )


def _extraction_rule_activation_problems(rule: ExtractionRule) -> list[str]:
    # A rule saved before validation existed (or loaded as data) must not start rejecting records.
    return list(extraction_rule_problems(action=rule.action, path=rule.path, key_type=rule.key_type).values())


@transaction.atomic
def extraction_rule_set_active(*, rule: ExtractionRule, actor: str, is_active: bool) -> ExtractionRule:
    return audited_set_active(
        rule,
        actor=actor,
        action_prefix="extraction_rule",
        snapshot=extraction_rule_snapshot,
        is_active=is_active,
        problems=_extraction_rule_activation_problems,
    )


@transaction.atomic
def extraction_rule_delete(*, rule: ExtractionRule, actor: str) -> None:
    audit_delete(obj=rule, actor=actor, action="extraction_rule.deleted", before=extraction_rule_snapshot(rule))


def redaction_rule_snapshot(rule: RedactionRule) -> dict[str, Any]:
    return {
        "source": rule.source.name if rule.source_id else None,
        "pattern": rule.pattern,
        "action": rule.action,
        "is_active": rule.is_active,
    }


def _redaction_rule_apply(
    rule: RedactionRule, *, source: IngestSource | None, pattern: str, action: str, is_active: bool
) -> None:
    pattern = pattern.strip()
    if not pattern:
        raise DomainError("the pattern is empty")
    if action not in RedactionAction.values:
        raise DomainError(f"unknown redaction action {action!r}")
    rule.source = source
    rule.pattern = pattern
    rule.action = action
    rule.is_active = is_active


@transaction.atomic
def redaction_rule_create(
    *, actor: str, source: IngestSource | None, pattern: str, action: str, is_active: bool = True
) -> RedactionRule:
    rule = RedactionRule()
    _redaction_rule_apply(rule, source=source, pattern=pattern, action=action, is_active=is_active)
    return audited_create(rule, actor=actor, action="redaction_rule.created", snapshot=redaction_rule_snapshot)


@transaction.atomic
def redaction_rule_update(
    *, rule: RedactionRule, actor: str, source: IngestSource | None, pattern: str, action: str, is_active: bool
) -> RedactionRule:
    return audited_update(
        rule,
        actor=actor,
        action="redaction_rule.updated",
        snapshot=redaction_rule_snapshot,
        apply=lambda locked: _redaction_rule_apply(
            locked, source=source, pattern=pattern, action=action, is_active=is_active
        ),
    )


@transaction.atomic
def redaction_rule_delete(*, rule: RedactionRule, actor: str) -> None:
    audit_delete(obj=rule, actor=actor, action="redaction_rule.deleted", before=redaction_rule_snapshot(rule))
