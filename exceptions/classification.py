"""Classification, fingerprinting, routing and priority without the database: plain data in, plain data out."""

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exceptions.choices import SEVERITY_PRIORITY, UNCLASSIFIED
from transactions.canonical import glob_matches

HTTP_STATUS_ATTRIBUTES = ("http.response.status_code", "http.status_code", "http_status")
# Where sources state their own category of a failure: Closeloop's convention first, then OpenTelemetry's `error.type`
# (which carries a class of error: an exception type, a status code, or a category some instrumentations set).
SOURCE_CATEGORY_ATTRIBUTES = ("finance.exception.category", "error.type")
# A source's own words for the default categories (lower case, spaces, dashes and underscores alike).
SOURCE_CATEGORY_NAMES = {
    "data_quality": ("data quality", "data", "validation", "master data", "data error"),
    "mapping": ("mapping", "transformation", "translation", "schema"),
    "business_rule": ("business rule", "business", "business error", "functional"),
    "platform": ("platform", "technical", "infrastructure", "connectivity", "system error", "availability"),
    "security": ("security", "authentication", "authorization", "auth"),
    "control": ("control", "control exception", "compliance", "approval"),
}
_SOURCE_CATEGORY = {
    " ".join(name.replace("_", " ").replace("-", " ").split()): slug
    for slug, names in SOURCE_CATEGORY_NAMES.items()
    for name in (slug, *names)
}
# SAP message ids (message class and number, e.g. F5 201 "posting period not open") in the notations systems use:
# `F5/201` (SAP Gateway OData error codes), `F5 201`, `F5201`, "Message no. F5201" (SAP GUI long texts), and the
# class and number as separate fields (BAPI RETURN's ID and NUMBER, T100 MSGID/MSGNO).
_SAP_CODE = re.compile(r"^\s*(/?[A-Z0-9_/]{1,20}?)\s*[/ ]?\s*(\d{3})\s*$", re.IGNORECASE)
_SAP_IN_TEXT = re.compile(
    r"(?:message\s+(?:no\.?|number|nr\.?)|msg\.?\s*no\.?)\s*:?\s*(/?[A-Z0-9_/]{1,20}?)\s*[/ ]?\s*(\d{3})\b"
    r"|\b([A-Z][A-Z0-9]{1,3})/(\d{3})\b",
    re.IGNORECASE,
)
SAP_MESSAGE_ATTRIBUTES = (
    ("sap.message.class", "sap.message.number"),
    ("sap.msgid", "sap.msgno"),
    ("msgid", "msgno"),
    ("message_class", "message_number"),
    ("ID", "NUMBER"),
)


@dataclass(frozen=True)
class FailureFacts:
    """What classification looks at in one failed event."""

    system: str
    kind: str
    error_code: str = ""
    error_type: str = ""
    message: str = ""
    http_status: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    entity: str = ""
    amount: Decimal | None = None

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The error code as sent, and every SAP message id found in it, the message or the attributes, as CLASS/NNN:
        a rule written `F5/201` matches each notation."""
        found = [self.error_code] if self.error_code else []
        found += [sap for sap in sap_message_ids(self.error_code, self.message, self.attributes) if sap not in found]
        return tuple(found)


def sap_message_ids(code: str, message: str, attributes: dict[str, Any]) -> list[str]:
    """SAP message ids (CLASS/NNN, upper case) in an error code, a message text and attributes."""
    ids: list[str] = []

    def add(message_class: str, number: str) -> None:
        key = f"{message_class.strip().upper()}/{number}"
        if message_class.strip() and key not in ids:
            ids.append(key)

    match = _SAP_CODE.match(code or "")
    if match and not code.strip().isdigit():
        add(match.group(1), match.group(2))
    for found in _SAP_IN_TEXT.finditer(message or ""):
        add(found.group(1) or found.group(3), found.group(2) or found.group(4))
    lowered = {str(name).lower(): value for name, value in attributes.items()}
    for class_name, number_name in SAP_MESSAGE_ATTRIBUTES:
        message_class, number = lowered.get(class_name.lower()), lowered.get(number_name.lower())
        if message_class and number is not None and str(number).strip().isdigit():
            add(str(message_class), f"{int(str(number).strip()):03d}")
    return ids


def source_category(attributes: dict[str, Any]) -> tuple[str, str] | None:
    """(category slug, attribute) when the source states a known category of its own."""
    for name in SOURCE_CATEGORY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            slug = _SOURCE_CATEGORY.get(" ".join(value.replace("_", " ").replace("-", " ").lower().split()))
            if slug:
                return slug, name
    return None


@dataclass(frozen=True)
class ClassificationSpec:
    rule_id: int
    name: str
    category: str
    system: str = ""
    kind: str = ""
    error_code: str = ""
    error_type: str = ""
    message_pattern: str = ""
    http_status: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Classification:
    category: str
    rule_id: int | None
    explanation: str


def glob(pattern: str, value: str | None) -> bool:
    """Case-insensitive glob; `a|b` matches either (compiled once per pattern: rules are matched per failure)."""
    return glob_matches(pattern, value or "")


def http_status_matches(pattern: str, status: int | None) -> bool:
    """`429`, `5xx`, `500-504`, or several separated by commas."""
    if status is None:
        return False
    for part in (p.strip().lower() for p in pattern.split(",")):
        if re.fullmatch(r"\dxx", part) and status // 100 == int(part[0]):
            return True
        if re.fullmatch(r"\d{3}-\d{3}", part):
            low, high = (int(x) for x in part.split("-"))
            if low <= status <= high:
                return True
        if part.isdigit() and int(part) == status:
            return True
    return False


def http_status_of(error_code: str, attributes: dict[str, Any]) -> int | None:
    for name in HTTP_STATUS_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
    if error_code.isdigit() and 100 <= int(error_code) <= 599:
        return int(error_code)
    return None


def classify(facts: FailureFacts, rules: list[ClassificationSpec]) -> Classification:
    """The first rule (in order) whose conditions all hold; else the category the source states itself (one of the
    taxonomy's, in its attributes); `unclassified` when neither (a taxonomy gap)."""
    for rule in rules:
        reasons = _match(rule, facts)
        if reasons is not None:
            because = "; ".join(reasons) if reasons else "matches every failure"
            return Classification(rule.category, rule.rule_id, f"rule “{rule.name}”: {because}"[:300])
    stated = source_category(facts.attributes)
    if stated is not None:
        slug, attribute = stated
        value = facts.attributes[attribute]
        return Classification(slug, None, f"no rule matches; the source states {attribute}={value!r}"[:300])
    return Classification(UNCLASSIFIED, None, "no classification rule matches: a taxonomy gap")


def _match(rule: ClassificationSpec, facts: FailureFacts) -> list[str] | None:
    reasons: list[str] = []
    checks = (
        (rule.system, facts.system, "system"),
        (rule.kind, facts.kind, "kind"),
        (rule.error_type, facts.error_type, "error type"),
    )
    for pattern, value, label in checks:
        if pattern:
            if not glob(pattern, value):
                return None
            reasons.append(f"{label} {value!r} matches {pattern!r}")
    if rule.error_code:
        code = next((c for c in facts.error_codes if glob(rule.error_code, c)), None)
        if code is None:
            return None
        reasons.append(f"error code {code!r} matches {rule.error_code!r}")
    if rule.message_pattern:
        try:
            found = re.search(rule.message_pattern, facts.message or "", re.IGNORECASE)
        except re.error:
            return None
        if not found:
            return None
        reasons.append(f"message contains {found.group(0)[:60]!r}")
    if rule.http_status:
        if not http_status_matches(rule.http_status, facts.http_status):
            return None
        reasons.append(f"HTTP status {facts.http_status} in {rule.http_status}")
    for name, pattern in rule.attributes.items():
        value = facts.attributes.get(name)
        if value is None or not glob(str(pattern), str(value)):
            return None
        reasons.append(f"attribute {name}={value!r}")
    return reasons


# Ids, numbers and amounts differ between occurrences of one failure; they are replaced before fingerprinting.
_NORMALISERS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<email>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”"), "<text>"),
    (re.compile(r"\b[A-Z]{2,}[-_/]?\d[\w-]*\b"), "<id>"),
    (re.compile(r"\b[a-z]{2,5}_[A-Za-z0-9]{3,}\b"), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?"), "<date>"),
    (re.compile(r"[-+]?\d[\d,.']*"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_error(message: str) -> str:
    text = message or ""
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return text.strip()[:300]


HEADLINE_LENGTH = 200


def headline(message: str) -> str:
    """A case's one-line name in a queue: the first line of a real error message, spaces collapsed, cut to 200
    characters. The normalised template (`<n>`, `<id>`) stays the grouping key; operators read the concrete text."""
    first = next((line for line in message.splitlines() if line.strip()), "")
    text = " ".join(first.split())
    return text if len(text) <= HEADLINE_LENGTH else text[: HEADLINE_LENGTH - 1].rstrip() + "…"


def fingerprint(*, category: str, system: str, kind: str, error_signature: str) -> str:
    text = "\x1f".join([category, system.lower(), kind.lower(), error_signature.lower()])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RoutingSpec:
    rule_id: int
    name: str
    queue_id: int
    categories: tuple[str, ...] = ()
    system: str = ""
    kind: str = ""
    entity: str = ""
    min_amount: Decimal | None = None


@dataclass(frozen=True)
class CaseFacts:
    category: str
    system: str
    kind: str
    entity: str = ""
    amount: Decimal = Decimal(0)


def route(case: CaseFacts, rules: list[RoutingSpec]) -> RoutingSpec | None:
    """The first routing rule whose conditions all hold; None sends the case to the default queue."""
    for rule in rules:
        if rule.categories and case.category not in rule.categories:
            continue
        if rule.system and not glob(rule.system, case.system):
            continue
        if rule.kind and not glob(rule.kind, case.kind):
            continue
        if rule.entity and not glob(rule.entity, case.entity):
            continue
        if rule.min_amount is not None and case.amount < rule.min_amount:
            continue
        return rule
    return None


# Money at stake raises urgency by one level per threshold crossed.
AMOUNT_THRESHOLDS = (Decimal("100000"), Decimal("1000000"))


def priority_for(severity: str, amount_at_stake: Decimal, *, escalation_level: int = 0) -> int:
    """1 (most urgent) to 4, from severity, the amount at stake and escalations."""
    level = SEVERITY_PRIORITY.get(severity, 3)
    level -= sum(1 for threshold in AMOUNT_THRESHOLDS if amount_at_stake >= threshold)
    level -= escalation_level
    return max(1, min(4, level))


# ---- Learning from triage: a rule generalised from one failure ------------------------------------------------------

# What each placeholder of `normalise_error` stood for, as a regular expression: the variable parts of a message.
_PLACEHOLDER_PATTERNS = {
    "<uuid>": r"\S+",
    "<email>": r"\S+",
    "<hex>": r"\S+",
    "<text>": r".+?",
    "<id>": r"\S+",
    "<date>": r"\S+",
    "<n>": r"\S+",
}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in _PLACEHOLDER_PATTERNS))
MESSAGE_PATTERN_LENGTH = 300


def glob_literal(value: str) -> str:
    """`value` as a glob that matches only itself (brackets make *, ? and [ literal); `|` cannot be escaped in our
    globs, so a value holding one is left out by the caller."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in value)


def message_pattern_of(message: str, *, limit: int = MESSAGE_PATTERN_LENGTH) -> str:
    """A case-insensitive regular expression for the messages that differ from `message` only in their variable parts
    (numbers, ids, quoted values, dates...: what fingerprinting replaces), cut at a word boundary to fit `limit`."""
    # A number glued to letters or punctuation ("001Ab", "(502)") is one variable word, not a number in fixed text.
    template = re.sub(r"\S*<(?:n|id|hex|uuid|email|date)>\S*", "<id>", normalise_error(headline(message)))
    pieces: list[str] = []
    at = 0
    for found in _PLACEHOLDER.finditer(template):
        pieces.append(_literal(template[at : found.start()]))
        pieces.append(_PLACEHOLDER_PATTERNS[found.group(0)])
        at = found.end()
    pieces.append(_literal(template[at:]))
    pattern, used = "", 0
    for piece in pieces:
        if used + len(piece) > limit:
            break
        pattern += piece
        used += len(piece)
    # A pattern that ends in a wildcard adds nothing to what comes before it; one of wildcards alone matches anything.
    pattern = re.sub(r"(\\s\+|\\S\+|\.\+\?)+$", "", pattern)
    return pattern if re.search(r"\w", re.sub(r"\\[sS]", "", pattern)) else ""


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(word) for word in text.split(" ")) if text else ""


@dataclass(frozen=True)
class RuleDraft:
    """The conditions of a classification rule proposed from one failure; every field may be edited before saving."""

    name: str
    system: str
    error_code: str
    error_type: str
    message_pattern: str


def rule_from_failure(facts: FailureFacts) -> RuleDraft:
    """Generalise one failure into a rule: the same system and exception type; the SAP message id in the notation that
    matches them all (else the error code as sent); and, unless an SAP message id names the message already, the
    message with its variable parts removed."""
    sap_ids = sap_message_ids(facts.error_code, facts.message, facts.attributes)
    if sap_ids:
        code = sap_ids[0]
    elif facts.error_code and "|" not in facts.error_code:
        code = glob_literal(facts.error_code)
    else:
        code = ""
    pattern = "" if sap_ids else message_pattern_of(facts.message)
    error_type = glob_literal(facts.error_type) if "|" not in facts.error_type else ""
    label = sap_ids[0] if sap_ids else facts.error_code or facts.error_type or headline(facts.message)[:60]
    return RuleDraft(
        name=f"{facts.system}: {label}".strip()[:120],
        system=glob_literal(facts.system) if "|" not in facts.system else "",
        error_code=code[:100],
        error_type=error_type[:200],
        message_pattern=pattern,
    )
