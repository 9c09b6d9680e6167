"""Cross-system reconciliation, the pure part: paths into events, normalisation, comparisons and verdicts.

Plain data in, plain data out, no ORM (the database side is exceptions/services/reconciliation.py). An event is the
dict `transaction_events_facts` returns plus `txn_keys`, the transaction's business keys: a path reads the canonical
fields (`amount`, `currency`, `entity`, `business_keys.contract`, `approval.actor`), the attributes
(`attributes.data.TotalNetAmount`, `attributes["tax.code"]`) or the transaction's keys (`txn_keys.contract[0]`).
`a|b` lists alternatives: the first one present wins, so that one rule reads the same fact as SAP S/4HANA's API
(`CompanyCode`) and its tables (`BUKRS`) name it.

A compare rule reads the latest ok event of each side that carries the fact (a correction supersedes what it
corrects); a unique rule turns each matching ok event into a normalised key (scope / value), which the service looks
up across the store.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from transactions.canonical import PathError, glob_matches, parse_path

# The fields a path may start with: the canonical event's, and the transaction's keys.
PATH_ROOTS = (
    "amount",
    "currency",
    "entity",
    "business_keys",
    "approval",
    "attributes",
    "system",
    "kind",
    "txn_keys",
)
MATCHED, MISMATCHED, INCOMPLETE, ERROR = "matched", "mismatched", "incomplete", "error"
EQUAL, NORMALISED, ABSOLUTE, RELATIVE, CURRENCY = "equal", "normalised", "absolute", "relative", "currency"
NUMERIC_COMPARISONS = (ABSOLUTE, RELATIVE, CURRENCY)
# Converted amounts are rounded to the minor unit before the tolerance applies, as an accounting system posts them.
MINOR_UNIT = Decimal("0.01")
VALUE_MAX = 300  # ReconciliationResult.left_value / right_value / subject
KEY_SEPARATOR = " / "
_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"^\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")

RateLookup = Callable[[str, str, date], Decimal | None]


# ---- Paths ----------------------------------------------------------------------------------------------------------


def path_alternatives(text: str) -> list[str]:
    """`a|b` -> ["a", "b"]; a `|` inside a quoted name (`attributes["a|b"]`) is part of the name."""
    parts, current, quoted = [], [], False
    previous = ""
    for char in text:
        if char == '"' and previous != "\\":
            quoted = not quoted
        if char == "|" and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        previous = char
    parts.append("".join(current).strip())
    return parts


def path_problem(text: str) -> str | None:
    """Why `text` is not a path reconciliation can read (None when it is)."""
    if not text.strip():
        return "the path is empty"
    for part in path_alternatives(text):
        if not part:
            return f"{text!r}: an alternative between | is empty"
        try:
            segments = _segments(part)
        except PathError as exc:
            return str(exc)
        if not isinstance(segments[0], str) or segments[0] not in PATH_ROOTS:
            return f"{part!r} starts with {segments[0]!r}; a path starts with one of {', '.join(PATH_ROOTS)}"
    return None


def _segments(part: str) -> list[str | int]:
    # `$.amount` is how JSONPath writes it; the leading `$` names the event itself.
    text = part.strip()
    if text.startswith("$."):
        text = text[2:]
    return parse_path(text)


@functools.lru_cache(maxsize=1024)
def compiled_path(text: str) -> tuple[tuple[str | int, ...], ...]:
    """The alternatives of a valid path as segment tuples (remembered: every event of a batch asks the same)."""
    return tuple(tuple(_segments(part)) for part in path_alternatives(text))


def path_value(event: dict[str, Any], text: str) -> Any:
    """The first alternative of `text` present in `event` (None and "" count as absent), else None."""
    for segments in compiled_path(text):
        current: Any = event
        for segment in segments:
            if isinstance(segment, int):
                current = current[segment] if isinstance(current, list) and segment < len(current) else None
            else:
                current = current.get(segment) if isinstance(current, dict) else None
            if current is None:
                break
        if current is not None and current != "" and not isinstance(current, dict | list):
            return current
    return None


# ---- Values ---------------------------------------------------------------------------------------------------------


def normalise(value: Any) -> str:
    """Case, whitespace and the leading zeros of ERP numbers do not make two values different (0000012345 = 12345)."""
    text = _WHITESPACE.sub(" ", str(value)).strip().casefold()
    if _DIGITS.match(text):
        text = text.lstrip("0") or "0"
    return text


def as_decimal(value: Any) -> Decimal | None:
    """A number as sent (JSON number, numeric text such as "125000.00"); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as the result and the case show it."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        if value == value.to_integral():
            return format(value.quantize(Decimal(1)), "f")
        # Trailing zeros of the stored scale go (a rate 1.0850500000 is 1.08505), cents stay (1000.50).
        text = format(value.normalize(), "f")
        return text + "0" if len(text.split(".")[1]) < 2 else text
    return str(value)[:VALUE_MAX]


# ---- Compare rules --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideSpec:
    system: str
    kind: str
    path: str
    currency_path: str = "currency"


@dataclass(frozen=True)
class RuleSpec:
    """What evaluation needs of a rule (the service builds it from the model, the preview from a form)."""

    id: int
    name: str
    kind: str
    left: SideSpec
    right: SideSpec
    comparison: str = EQUAL
    tolerance: Decimal = Decimal(0)
    mapping: tuple[tuple[str, str], ...] = ()  # (normalised from, to)
    mapping_name: str = ""
    scope_path: str = ""
    process_id: int | None = None


@dataclass(frozen=True)
class Fact:
    """One side's fact: the value and the event it came from."""

    value: Any
    event: dict[str, Any]
    currency: str = ""


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    left: Fact | None = None
    right: Fact | None = None
    left_shown: str = ""
    right_shown: str = ""
    difference: Decimal | None = None  # numeric comparisons: |left - right| in `currency`
    currency: str = ""


def rule_spec(rule: Any) -> RuleSpec:
    """What evaluation needs of a rule (a ReconciliationRule, saved or not: the preview evaluates a form's), its
    mapping's entries normalised once."""
    mapping = rule.mapping if rule.mapping_id else None
    return RuleSpec(
        id=rule.pk or 0,
        name=rule.name,
        kind=rule.kind,
        left=SideSpec(rule.left_system, rule.left_kind, rule.left_path, rule.left_currency_path),
        right=SideSpec(rule.right_system, rule.right_kind, rule.right_path, rule.right_currency_path),
        comparison=rule.comparison,
        tolerance=Decimal(rule.tolerance or 0),
        mapping=tuple((normalise(k), str(v)) for k, v in ((mapping.entries if mapping else None) or {}).items()),
        mapping_name=mapping.name if mapping else "",
        scope_path=rule.scope_path,
        process_id=rule.process_id,
    )


def side_events(events: list[dict[str, Any]], side: SideSpec) -> list[dict[str, Any]]:
    """The ok events of a side, oldest first (failed attempts report no fact: their retry does)."""
    return [
        e
        for e in events
        if e["status"] == "ok"
        and glob_matches(side.kind or "*", e["kind"])
        and (not side.system or glob_matches(side.system, e["system"]))
    ]


def side_fact(events: list[dict[str, Any]], side: SideSpec) -> tuple[Fact | None, int]:
    """The latest event of the side carrying the fact, and how many events of the side there were."""
    candidates = side_events(events, side)
    for event in reversed(candidates):
        value = path_value(event, side.path)
        if value is not None:
            currency = path_value(event, side.currency_path) if side.currency_path else None
            return Fact(value=value, event=event, currency=str(currency or "").strip().upper()), len(candidates)
    return None, len(candidates)


def _missing(side: SideSpec, seen: int, name: str) -> str:
    if not seen:
        return f"no {side.kind} event{' from ' + side.system if side.system else ''} yet ({name} side)"
    return f"the {name} side's {side.kind} event carries nothing at {side.path}"


def evaluate_compare(spec: RuleSpec, events: list[dict[str, Any]], rates: RateLookup) -> Verdict:
    """The verdict of a compare rule on one transaction's events."""
    left, left_seen = side_fact(events, spec.left)
    right, right_seen = side_fact(events, spec.right)
    if left is None or right is None:
        reasons = [
            _missing(s, n, name)
            for f, s, n, name in ((left, spec.left, left_seen, "left"), (right, spec.right, right_seen, "right"))
            if f is None
        ]
        return Verdict(INCOMPLETE, "; ".join(reasons)[:VALUE_MAX], left=left, right=right)
    return compare_facts(spec, left, right, rates)


def _mapped(spec: RuleSpec, value: Any) -> tuple[Any, str | None]:
    if not spec.mapping:
        return value, None
    key = normalise(value)
    for source, target in spec.mapping:
        if source == key:
            return target, None
    return value, f"{shown(value)!r} has no entry in the mapping {spec.mapping_name!r}"


def compare_facts(spec: RuleSpec, left: Fact, right: Fact, rates: RateLookup) -> Verdict:
    """Compare two facts as the rule says; the mapping translates the left value first."""
    value, problem = _mapped(spec, left.value)
    left_shown = shown(left.value) if value is left.value else f"{shown(left.value)} -> {shown(value)}"
    right_shown = shown(right.value)

    def verdict(status: str, reason: str, difference: Decimal | None = None, currency: str = "") -> Verdict:
        return Verdict(
            status,
            reason[:VALUE_MAX],
            left=left,
            right=right,
            left_shown=left_shown[:VALUE_MAX],
            right_shown=right_shown[:VALUE_MAX],
            difference=difference,
            currency=currency,
        )

    if problem:
        return verdict(ERROR, problem)
    if spec.comparison == NORMALISED:
        same = normalise(value) == normalise(right.value)
        return verdict(MATCHED if same else MISMATCHED, "equal after normalisation" if same else "differ")
    if spec.comparison == EQUAL:
        # Numbers as numbers (125000 = 125000.00); text exactly as sent ("0001" is not "1": that is normalisation).
        if _is_number(value) and _is_number(right.value):
            same = as_decimal(value) == as_decimal(right.value)
        else:
            same = shown(value) == right_shown
        return verdict(MATCHED if same else MISMATCHED, "equal" if same else "differ")
    lv, rv = as_decimal(value), as_decimal(right.value)
    if lv is None or rv is None:
        which = "left" if lv is None else "right"
        return verdict(ERROR, f"the {which} value {shown(value if lv is None else right.value)!r} is not a number")
    currency = right.currency or left.currency
    if spec.comparison == CURRENCY:
        if not left.currency or not right.currency:
            which = "left" if not left.currency else "right"
            return verdict(ERROR, f"the {which} side has no currency at {getattr(spec, which).currency_path}")
        if left.currency != right.currency:
            on = _day(right.event.get("occurred_at"))
            rate = rates(left.currency, right.currency, on)
            if rate is None:
                return verdict(ERROR, f"no FX rate {left.currency}->{right.currency} configured for {on.isoformat()}")
            converted = (lv * rate).quantize(MINOR_UNIT, rounding=ROUND_HALF_UP)
            left_shown = f"{shown(lv)} {left.currency} = {shown(converted)} {right.currency} at {shown(rate)}"
            lv = converted
        else:
            left_shown = f"{shown(lv)} {left.currency}"
        right_shown = f"{shown(rv)} {right.currency}"
        currency = right.currency
    difference = abs(lv - rv)
    if spec.comparison == RELATIVE:
        allowed = spec.tolerance * abs(lv)
        within = difference <= allowed
        limit = f"{shown(spec.tolerance)} x {shown(abs(lv))} = {shown(allowed)}"
        reason = f"differ by {shown(difference)}, {'within' if within else 'over'} {limit}"
    else:
        within = difference <= spec.tolerance
        reason = (
            f"differ by {shown(difference)}, {'within' if within else 'over'} the tolerance {shown(spec.tolerance)}"
        )
    if difference == 0:
        reason = "equal"
    return verdict(MATCHED if within else MISMATCHED, reason, difference=difference, currency=currency)


def _day(moment: Any) -> date:
    if isinstance(moment, datetime):
        return moment.date()
    if isinstance(moment, date):
        return moment
    return date.today()


# ---- Unique rules ---------------------------------------------------------------------------------------------------


def unique_key(spec: RuleSpec, event: dict[str, Any]) -> str | None:
    """The normalised key of an event under a unique rule ("scope / value"), None when a part is missing."""
    value = path_value(event, spec.left.path)
    if value is None:
        return None
    if not spec.scope_path:
        return normalise(value)[:VALUE_MAX]
    scope = path_value(event, spec.scope_path)
    if scope is None:
        return None
    return f"{normalise(scope)}{KEY_SEPARATOR}{normalise(value)}"[:VALUE_MAX]


def unique_keys(spec: RuleSpec, events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(key, event) of every ok event of the rule's side that has a key."""
    found = []
    for event in side_events(events, spec.left):
        key = unique_key(spec, event)
        if key is not None:
            found.append((key, event))
    return found


# ---- FX rates -------------------------------------------------------------------------------------------------------


def rate_lookup(rates: list[tuple[str, str, date, Decimal]]) -> RateLookup:
    """A lookup over the configured rates (base, quote, valid_from, rate): the latest rate valid on the day, direct
    or inverted; None when none is configured (the comparison refuses rather than guess)."""
    table: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
    for base, quote, valid_from, rate in rates:
        table.setdefault((base.upper(), quote.upper()), []).append((valid_from, Decimal(rate)))
    for entries in table.values():
        entries.sort()

    def latest(pair: tuple[str, str], on: date) -> tuple[date, Decimal] | None:
        valid = [entry for entry in table.get(pair, []) if entry[0] <= on]
        return valid[-1] if valid else None

    def lookup(base: str, quote: str, on: date) -> Decimal | None:
        direct, inverse = latest((base, quote), on), latest((quote, base), on)
        if direct and (not inverse or direct[0] >= inverse[0]):
            return direct[1]
        if inverse:
            return Decimal(1) / inverse[1]
        return None

    return lookup
