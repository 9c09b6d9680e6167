"""Segregation-of-duties rules: pairs of approval steps that different people must hold (managers edit them)."""

from typing import Any

from django.db import transaction

from console.lib.audit import audit_delete, audited_create, audited_update
from console.lib.errors import DomainError
from console.models import SodRule
from transactions.models import ProcessDefinition


def sod_rule_snapshot(rule: SodRule) -> dict[str, Any]:
    return {
        "process": rule.process.slug if rule.process_id else None,
        "first_step": rule.first_step,
        "second_step": rule.second_step,
        "description": rule.description,
        "opens_case": rule.opens_case,
        "is_active": rule.is_active,
    }


def _sod_apply(
    rule: SodRule,
    *,
    process: ProcessDefinition | None,
    first_step: str,
    second_step: str,
    description: str,
    opens_case: bool,
    is_active: bool,
) -> None:
    first, second = " ".join(first_step.split()), " ".join(second_step.split())
    if not first or not second:
        raise DomainError("both steps are needed")
    if first.lower() == second.lower():
        raise DomainError("the two steps must differ")
    rule.process = process
    rule.first_step, rule.second_step = first, second
    rule.description = description.strip()
    rule.opens_case, rule.is_active = opens_case, is_active


def sod_rule_create(
    *,
    actor: str,
    first_step: str,
    second_step: str,
    process: ProcessDefinition | None = None,
    description: str = "",
    opens_case: bool = True,
    is_active: bool = True,
) -> SodRule:
    rule = SodRule()
    _sod_apply(
        rule,
        process=process,
        first_step=first_step,
        second_step=second_step,
        description=description,
        opens_case=opens_case,
        is_active=is_active,
    )
    return audited_create(rule, actor=actor, action="sod_rule.created", snapshot=sod_rule_snapshot)


def sod_rule_update(
    *,
    rule: SodRule,
    actor: str,
    first_step: str,
    second_step: str,
    process: ProcessDefinition | None = None,
    description: str = "",
    opens_case: bool = True,
    is_active: bool = True,
) -> SodRule:
    def apply(locked: SodRule) -> None:
        _sod_apply(
            locked,
            process=process,
            first_step=first_step,
            second_step=second_step,
            description=description,
            opens_case=opens_case,
            is_active=is_active,
        )

    return audited_update(rule, actor=actor, action="sod_rule.updated", snapshot=sod_rule_snapshot, apply=apply)


@transaction.atomic
def sod_rule_delete(*, rule: SodRule, actor: str) -> None:
    audit_delete(obj=rule, actor=actor, action="sod_rule.deleted", before=sod_rule_snapshot(rule))
