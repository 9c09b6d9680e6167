"""Managers' reconciliation configuration: rules, value mappings and FX rates, each change audited in its own atomic
block (before/after), refused whole when a field is wrong (nothing half-saved).

Editing a rule re-evaluates nothing by itself: transactions are reconciled again as their events arrive and by the
periodic sweep over recently active transactions; what the rule would find is what its preview shows.
"""

import re
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction

from console.lib.audit import audit_delete, audited_create, audited_set_active, audited_update
from console.lib.errors import DomainError
from exceptions.choices import Comparison, ReconciliationKind, Severity
from exceptions.models import FxRate, ReconciliationKey, ReconciliationRule, ValueMapping
from exceptions.reconciliation import path_problem
from exceptions.services.configuration import new_slug
from exceptions.services.reconciliation_rollups import reconciliation_days_mark_dirty, rule_result_days
from transactions.models import ProcessDefinition

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAPPING_ENTRIES_MAX = 5000


# ---- Rules ----------------------------------------------------------------------------------------------------------


def reconciliation_rule_problems(
    *,
    name: str,
    kind: str,
    left_kind: str,
    left_path: str,
    left_currency_path: str = "currency",
    right_kind: str = "",
    right_path: str = "",
    right_currency_path: str = "currency",
    scope_path: str = "",
    comparison: str = Comparison.EQUAL,
    tolerance: Decimal | None = Decimal(0),
    severity: str = Severity.MEDIUM,
) -> dict[str, str]:
    """What keeps a rule from working, by field name (empty when it is sound); the form and the service both ask."""
    problems: dict[str, str] = {}
    if not name.strip():
        problems["name"] = "the name is empty"
    if kind not in ReconciliationKind.values:
        problems["kind"] = f"unknown kind {kind!r}: compare or unique"
    if comparison not in Comparison.values:
        problems["comparison"] = f"unknown comparison {comparison!r}: {', '.join(Comparison.values)}"
    if severity not in Severity.values:
        problems["severity"] = f"unknown severity {severity!r}"
    if tolerance is None:
        problems["tolerance"] = "a number, 0 or more"
    elif tolerance < 0:
        problems["tolerance"] = "the tolerance cannot be negative (0 means exactly equal)"
    elif comparison == Comparison.RELATIVE and tolerance > 1:
        problems["tolerance"] = "a relative tolerance is a fraction of the left value: 0.01 is 1%, at most 1"
    if not left_kind.strip():
        problems["left_kind"] = "which events hold the fact: a kind glob such as contract.approved"
    fields = {"left_path": left_path, "left_currency_path": left_currency_path}
    if kind == ReconciliationKind.COMPARE:
        if not right_kind.strip():
            problems["right_kind"] = "a compare rule needs the other side's event kind"
        fields |= {"right_path": right_path, "right_currency_path": right_currency_path}
    elif scope_path.strip():
        fields["scope_path"] = scope_path
    for field, text in fields.items():
        if field.endswith("currency_path") and not text.strip():
            if comparison == Comparison.CURRENCY and kind == ReconciliationKind.COMPARE:
                problems[field] = "a currency-aware comparison needs each side's currency"
            continue
        problem = path_problem(text)
        if problem:
            problems[field] = problem
    return problems


def reconciliation_rule_snapshot(rule: ReconciliationRule) -> dict[str, Any]:
    return {
        "position": rule.position,
        "name": rule.name,
        "description": rule.description,
        "process": rule.process.slug if rule.process_id else None,
        "kind": rule.kind,
        "left_system": rule.left_system,
        "left_kind": rule.left_kind,
        "left_path": rule.left_path,
        "left_currency_path": rule.left_currency_path,
        "right_system": rule.right_system,
        "right_kind": rule.right_kind,
        "right_path": rule.right_path,
        "right_currency_path": rule.right_currency_path,
        "scope_path": rule.scope_path,
        "comparison": rule.comparison,
        "tolerance": format(Decimal(rule.tolerance).normalize(), "f") if rule.tolerance is not None else None,
        "mapping": rule.mapping.slug if rule.mapping_id else None,
        "severity": rule.severity,
        "is_active": rule.is_active,
    }


def reconciliation_rule_apply(
    rule: ReconciliationRule,
    *,
    name: str,
    kind: str,
    left_kind: str,
    left_path: str,
    position: int = 100,
    description: str = "",
    process: ProcessDefinition | None = None,
    left_system: str = "",
    left_currency_path: str = "currency",
    right_system: str = "",
    right_kind: str = "",
    right_path: str = "",
    right_currency_path: str = "currency",
    scope_path: str = "",
    comparison: str = Comparison.EQUAL,
    tolerance: Decimal | None = Decimal(0),
    mapping: ValueMapping | None = None,
    severity: str = Severity.MEDIUM,
    is_active: bool = True,
) -> None:
    """Validate and set the fields of `rule` (unsaved: the preview evaluates it as it would be)."""
    problems = reconciliation_rule_problems(
        name=name,
        kind=kind,
        left_kind=left_kind,
        left_path=left_path,
        left_currency_path=left_currency_path,
        right_kind=right_kind,
        right_path=right_path,
        right_currency_path=right_currency_path,
        scope_path=scope_path,
        comparison=comparison,
        tolerance=tolerance,
        severity=severity,
    )
    if position < 0:
        problems["position"] = "a whole number from 0"
    if problems:
        raise DomainError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    compare = kind == ReconciliationKind.COMPARE
    rule.position = position
    rule.name = name.strip()
    rule.description = description.strip()
    rule.process = process
    rule.kind = kind
    rule.left_system = left_system.strip()
    rule.left_kind = left_kind.strip()
    rule.left_path = left_path.strip()
    rule.left_currency_path = left_currency_path.strip()
    # A unique rule has one side: what it does not read is not kept, so the page never shows a condition that is
    # silently ignored.
    rule.right_system = right_system.strip() if compare else ""
    rule.right_kind = right_kind.strip() if compare else ""
    rule.right_path = right_path.strip() if compare else ""
    rule.right_currency_path = right_currency_path.strip() if compare else ""
    rule.scope_path = "" if compare else scope_path.strip()
    rule.comparison = comparison if compare else Comparison.NORMALISED
    rule.tolerance = Decimal(tolerance or 0) if compare else Decimal(0)
    rule.mapping = mapping if compare else None
    rule.severity = severity
    rule.is_active = is_active


def reconciliation_rule_create(*, actor: str, **fields: Any) -> ReconciliationRule:
    """A rule that reconciles transactions from their next evaluation on (the fields: `reconciliation_rule_apply`)."""
    rule = ReconciliationRule()
    reconciliation_rule_apply(rule, **fields)
    return audited_create(
        rule, actor=actor, action="reconciliation_rule.created", snapshot=reconciliation_rule_snapshot
    )


# What a unique rule's stored keys were computed from: when one changes, the keys no longer say what the rule reads.
KEY_FIELDS = ("process", "kind", "left_system", "left_kind", "left_path", "scope_path")


@transaction.atomic
def reconciliation_rule_update(*, rule: ReconciliationRule, actor: str, **fields: Any) -> ReconciliationRule:
    """Changing what a unique rule reads drops its stored keys (bookkeeping of this audited change): they are built
    again, under the new paths, as transactions are reconciled, so an old value never counts as a duplicate."""
    before = reconciliation_rule_snapshot(rule)
    saved = audited_update(
        rule,
        actor=actor,
        action="reconciliation_rule.updated",
        snapshot=reconciliation_rule_snapshot,
        apply=lambda locked: reconciliation_rule_apply(locked, **fields),
    )
    after = reconciliation_rule_snapshot(saved)
    if any(before[name] != after[name] for name in KEY_FIELDS):
        ReconciliationKey.objects.filter(rule=saved).delete()
    return saved


def _activation_problems(rule: ReconciliationRule) -> list[str]:
    if rule.is_active:
        return []
    return list(
        reconciliation_rule_problems(
            name=rule.name,
            kind=rule.kind,
            left_kind=rule.left_kind,
            left_path=rule.left_path,
            left_currency_path=rule.left_currency_path,
            right_kind=rule.right_kind,
            right_path=rule.right_path,
            right_currency_path=rule.right_currency_path,
            scope_path=rule.scope_path,
            comparison=rule.comparison,
            tolerance=rule.tolerance,
            severity=rule.severity,
        ).values()
    )


def reconciliation_rule_set_active(*, rule: ReconciliationRule, actor: str, is_active: bool) -> ReconciliationRule:
    return audited_set_active(
        rule,
        actor=actor,
        action_prefix="reconciliation_rule",
        snapshot=reconciliation_rule_snapshot,
        is_active=is_active,
        problems=_activation_problems,
    )


@transaction.atomic
def reconciliation_rule_delete(*, rule: ReconciliationRule, actor: str) -> None:
    """Its results go with it; the cases its mismatches opened stay, as the record of what was found."""
    rule = ReconciliationRule.objects.select_for_update().get(pk=rule.pk)
    # Its results' cells go with it, and its transactions may count as reconciled now: their days are rebuilt.
    reconciliation_days_mark_dirty(rule_result_days(rule.pk))
    audit_delete(obj=rule, actor=actor, action="reconciliation_rule.deleted", before=reconciliation_rule_snapshot(rule))


# ---- Value mappings -------------------------------------------------------------------------------------------------


def mapping_entries_problem(entries: Any) -> str | None:
    if not isinstance(entries, dict):
        return 'a JSON object of value to value, e.g. {"DE01": "1010"}'
    if len(entries) > MAPPING_ENTRIES_MAX:
        return f"at most {MAPPING_ENTRIES_MAX} entries"
    for source, target in entries.items():
        if not str(source).strip():
            return "a value to translate is empty"
        if not isinstance(target, str | int) or not str(target).strip():
            return f"the translation of {source!r} must be a non-empty text"
    return None


def value_mapping_snapshot(mapping: ValueMapping) -> dict[str, Any]:
    return {"slug": mapping.slug, "name": mapping.name, "description": mapping.description, "entries": mapping.entries}


def _value_mapping_apply(mapping: ValueMapping, *, name: str, entries: Any, description: str = "") -> None:
    problems = {}
    if not name.strip():
        problems["name"] = "the name is empty"
    problem = mapping_entries_problem(entries)
    if problem:
        problems["entries"] = problem
    if problems:
        raise DomainError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    mapping.name = name.strip()
    mapping.description = description.strip()
    mapping.entries = {str(k).strip(): str(v).strip() for k, v in sorted(entries.items())}


def value_mapping_create(*, actor: str, slug: str, name: str, entries: Any, description: str = "") -> ValueMapping:
    mapping = ValueMapping(slug=new_slug(ValueMapping, slug, max_length=60, noun="mapping"))
    _value_mapping_apply(mapping, name=name, entries=entries, description=description)
    return audited_create(mapping, actor=actor, action="value_mapping.created", snapshot=value_mapping_snapshot)


def value_mapping_update(
    *, mapping: ValueMapping, actor: str, name: str, entries: Any, description: str = ""
) -> ValueMapping:
    """The slug never changes: rules and audit entries name the mapping by it."""
    return audited_update(
        mapping,
        actor=actor,
        action="value_mapping.updated",
        snapshot=value_mapping_snapshot,
        apply=lambda locked: _value_mapping_apply(locked, name=name, entries=entries, description=description),
    )


@transaction.atomic
def value_mapping_delete(*, mapping: ValueMapping, actor: str) -> None:
    mapping = ValueMapping.objects.select_for_update().get(pk=mapping.pk)
    if ReconciliationRule.objects.filter(mapping=mapping).exists():
        raise DomainError("rules translate through this mapping; change them first")
    audit_delete(obj=mapping, actor=actor, action="value_mapping.deleted", before=value_mapping_snapshot(mapping))


# ---- FX rates -------------------------------------------------------------------------------------------------------


def fx_rate_snapshot(rate: FxRate) -> dict[str, Any]:
    return {
        "base_currency": rate.base_currency,
        "quote_currency": rate.quote_currency,
        "rate": format(Decimal(rate.rate).normalize(), "f"),
        "valid_from": rate.valid_from.isoformat(),
    }


@transaction.atomic
def fx_rate_create(*, actor: str, base_currency: str, quote_currency: str, rate: Decimal, valid_from: date) -> FxRate:
    """1 base = rate quote from `valid_from` on; the currency-aware comparison uses the latest rate valid on the day."""
    base, quote = base_currency.strip().upper(), quote_currency.strip().upper()
    problems = {}
    for field, code in (("base_currency", base), ("quote_currency", quote)):
        if not CURRENCY_RE.match(code):
            problems[field] = "an ISO 4217 code such as EUR"
    if base == quote and "base_currency" not in problems:
        problems["quote_currency"] = "a rate converts between two different currencies"
    if rate is None or rate <= 0:
        problems["rate"] = "a rate is more than 0"
    if not problems and FxRate.objects.filter(base_currency=base, quote_currency=quote, valid_from=valid_from).exists():
        problems["valid_from"] = f"a {base}->{quote} rate from {valid_from.isoformat()} exists already"
    if problems:
        raise DomainError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    fx = FxRate(base_currency=base, quote_currency=quote, rate=rate, valid_from=valid_from)
    return audited_create(fx, actor=actor, action="fx_rate.created", snapshot=fx_rate_snapshot)


@transaction.atomic
def fx_rate_delete(*, rate: FxRate, actor: str) -> None:
    rate = FxRate.objects.select_for_update().get(pk=rate.pk)
    audit_delete(obj=rate, actor=actor, action="fx_rate.deleted", before=fx_rate_snapshot(rate))
