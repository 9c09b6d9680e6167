"""Approval lineage and the controls Closeloop checks itself, without the database.

Plain data in (events, the process steps' approval controls, segregation-of-duties pairs, the approvers' roles, and
the rows other apps contributed), ordered lineage rows and findings out. `console.selectors.lineage_get` reads the
facts; the findings are Closeloop's own judgement, not what a source reported.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from transactions.canonical import kind_matches

# Missing approval, segregation of duties (maker-checker and step pairs), ordering, approver not allowed.
MISSING_APPROVAL = "missing_approval"
SOD_MAKER_CHECKER = "sod_maker_checker"
SOD_PAIR = "sod_pair"
APPROVAL_AFTER_STEP = "approval_after_step"
APPROVER_NOT_ALLOWED = "approver_not_allowed"
FINDING_TITLES = {
    MISSING_APPROVAL: "Missing approval",
    SOD_MAKER_CHECKER: "Segregation of duties: maker approved own work",
    SOD_PAIR: "Segregation of duties: one person approved two steps",
    APPROVAL_AFTER_STEP: "Approval after the step it should precede",
    APPROVER_NOT_ALLOWED: "Approver not allowed for this step",
}
# The error code of the reference classification rules for control cases (exceptions.reference).
FINDING_CODES = {
    MISSING_APPROVAL: "APPROVAL_MISSING",
    SOD_MAKER_CHECKER: "SOD_CONFLICT",
    SOD_PAIR: "SOD_CONFLICT",
    APPROVAL_AFTER_STEP: "APPROVAL_ORDER",
    APPROVER_NOT_ALLOWED: "APPROVER_NOT_ALLOWED",
}

# Event attributes naming who created or changed the business object (sources spell it differently).
MAKER_ATTRIBUTES = ("created_by", "changed_by", "modified_by", "actor", "user", "finance.actor")
# At one instant: the event first, then what was decided about it, then the case, its actions, the audit entries.
KIND_RANK = {"event": 0, "approval": 0, "decision": 1, "case": 2, "case_action": 3, "replay": 3, "audit": 4}


@dataclass(frozen=True)
class EventFact:
    """One event of a transaction, as the checks see it."""

    event_id: int
    txn_id: int
    occurred_at: datetime
    system: str
    kind: str
    status: str
    approval: Mapping[str, Any] | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def approver(self) -> str:
        return str((self.approval or {}).get("actor") or "").strip()

    @property
    def approval_step(self) -> str:
        return str((self.approval or {}).get("step") or "").strip()

    @property
    def approved(self) -> bool:
        """A rejection is an approval record too, but it approves nothing."""
        decision = str((self.approval or {}).get("decision") or "").strip().lower()
        return bool(self.approval) and decision.startswith("approv")

    @property
    def maker(self) -> str:
        for name in MAKER_ATTRIBUTES:
            value = self.attributes.get(name)
            if value:
                return str(value).strip()
        return ""


@dataclass(frozen=True)
class StepControl:
    """A process step's approval control (transactions.ProcessStep)."""

    process_id: int
    position: int
    name: str
    kind_pattern: str
    system: str = ""
    requires_approval: bool = False
    approval_step: str = ""
    allowed_approvers: tuple[str, ...] = ()
    opens_case: bool = False

    @property
    def approval_name(self) -> str:
        return _norm(self.approval_step or self.name)

    def matches(self, event: EventFact) -> bool:
        return (not self.system or self.system == event.system) and kind_matches(self.kind_pattern, event.kind)


@dataclass(frozen=True)
class SodPair:
    """Two approval steps that must be held by different people (console.SodRule)."""

    rule_id: int
    first_step: str
    second_step: str
    process_id: int | None = None
    opens_case: bool = True


@dataclass(frozen=True)
class Finding:
    """A control Closeloop found broken in one transaction; `refs` name the lineage rows it is about."""

    code: str
    txn_id: int
    detail: str
    refs: tuple[str, ...]
    subject: str  # what repeats of the same finding share (a step, a rule): it groups their control case
    at: datetime
    opens_case: bool = False

    @property
    def title(self) -> str:
        return FINDING_TITLES[self.code]

    @property
    def signal_key(self) -> str:
        return f"lineage:{self.code}:{self.txn_id}:{':'.join(self.refs)}"[:200]


@dataclass(frozen=True)
class LineageRow:
    """One line of the lineage: what happened, when, who or what did it, and where to read more."""

    at: datetime
    kind: str
    txn_id: int | None
    actor: str
    what: str
    ref: str
    system: str = ""
    decision: str = ""
    step: str = ""
    detail: str = ""
    link: str = ""
    findings: tuple[str, ...] = ()

    def sort_key(self) -> tuple:
        kind, _, number = self.ref.partition(":")
        return (self.at, KIND_RANK.get(self.kind, 9), kind, int(number) if number.isdigit() else 0, self.ref)


@dataclass(frozen=True)
class Lineage:
    rows: list[LineageRow]
    findings: list[Finding]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def event_rows(events: Iterable[EventFact]) -> list[LineageRow]:
    """Approvals as approval rows (actor, decision, step), every other event as an event row (its maker, if named)."""
    rows = []
    for e in events:
        if e.approval:
            decision = str(e.approval.get("decision") or "")
            rows.append(
                LineageRow(
                    e.occurred_at,
                    "approval",
                    e.txn_id,
                    e.approver,
                    f"{e.approval_step or '?'} {decision}".strip(),
                    f"event:{e.event_id}",
                    system=e.system,
                    decision=decision,
                    step=e.approval_step,
                    detail=e.kind,
                )
            )
        else:
            rows.append(
                LineageRow(
                    e.occurred_at,
                    "event",
                    e.txn_id,
                    e.maker or e.system,
                    e.kind,
                    f"event:{e.event_id}",
                    system=e.system,
                    detail=e.status,
                )
            )
    return rows


def _allowed(actor: str, allowed: tuple[str, ...], roles: Mapping[str, frozenset[str]]) -> bool:
    names = {_norm(a) for a in allowed}
    # An approver holding several roles is allowed when any of them is on the list.
    return _norm(actor) in names or bool(names & {_norm(r) for r in roles.get(_norm(actor), frozenset())})


def check_transaction(
    txn_id: int,
    events: list[EventFact],
    steps: list[StepControl],
    pairs: list[SodPair],
    roles: Mapping[str, frozenset[str]],
    process_id: int | None,
) -> list[Finding]:
    """Every control finding of one transaction; `events` in time order, `roles` keyed by normalised actor name."""
    findings: list[Finding] = []
    approvals = [e for e in events if e.approval]
    steps = sorted((s for s in steps if s.process_id == process_id), key=lambda s: s.position)
    for step in steps:
        mine = [a for a in approvals if _norm(a.approval_step) == step.approval_name]
        if step.requires_approval:
            # The approval must come before (or with) the step's own first event: an approval carried on that event
            # counts, one timestamped after it does not.
            dependent = next((e for e in events if step.matches(e)), None)
            granted = [a for a in mine if a.approved]
            if dependent is not None and not granted:
                findings.append(
                    Finding(
                        MISSING_APPROVAL,
                        txn_id,
                        f"step “{step.name}” needs an approval ({step.approval_name}) before {dependent.kind}; none",
                        (f"event:{dependent.event_id}",),
                        f"step:{step.process_id}:{step.position}",
                        dependent.occurred_at,
                        step.opens_case,
                    )
                )
            elif dependent is not None and all(a.occurred_at > dependent.occurred_at for a in granted):
                first = granted[0]
                findings.append(
                    Finding(
                        APPROVAL_AFTER_STEP,
                        txn_id,
                        f"{step.approval_name} approved by {first.approver} at {first.occurred_at:%Y-%m-%d %H:%M:%S}, "
                        f"after {dependent.kind} at {dependent.occurred_at:%Y-%m-%d %H:%M:%S}",
                        (f"event:{first.event_id}", f"event:{dependent.event_id}"),
                        f"step:{step.process_id}:{step.position}",
                        first.occurred_at,
                        step.opens_case,
                    )
                )
        if step.allowed_approvers:
            for a in mine:
                if not _allowed(a.approver, step.allowed_approvers, roles):
                    held = ", ".join(sorted(roles.get(_norm(a.approver), frozenset()))) or "no role"
                    findings.append(
                        Finding(
                            APPROVER_NOT_ALLOWED,
                            txn_id,
                            f"{a.approver} ({held}) approved {step.approval_name}; allowed: "
                            + ", ".join(step.allowed_approvers),
                            (f"event:{a.event_id}",),
                            f"step:{step.process_id}:{step.position}",
                            a.occurred_at,
                            step.opens_case,
                        )
                    )
    findings += _segregation(txn_id, events, approvals, steps, pairs, process_id)
    return findings


def _segregation(
    txn_id: int,
    events: list[EventFact],
    approvals: list[EventFact],
    steps: list[StepControl],
    pairs: list[SodPair],
    process_id: int | None,
) -> list[Finding]:
    findings: list[Finding] = []
    opens = {s.approval_name: s.opens_case for s in steps}
    makers: dict[str, EventFact] = {}
    for e in events:
        if not e.approval and e.maker:
            makers.setdefault(_norm(e.maker), e)
    for a in approvals:
        made = makers.get(_norm(a.approver))
        if a.approved and made is not None:
            findings.append(
                Finding(
                    SOD_MAKER_CHECKER,
                    txn_id,
                    f"{a.approver} made {made.kind} and approved {a.approval_step or 'it'}",
                    (f"event:{made.event_id}", f"event:{a.event_id}"),
                    f"maker:{_norm(a.approval_step)}",
                    a.occurred_at,
                    opens.get(_norm(a.approval_step), False),
                )
            )
    for pair in pairs:
        if pair.process_id is not None and pair.process_id != process_id:
            continue
        first = [a for a in approvals if a.approved and _norm(a.approval_step) == _norm(pair.first_step)]
        second = [a for a in approvals if a.approved and _norm(a.approval_step) == _norm(pair.second_step)]
        for a in first:
            for b in second:
                if a.event_id != b.event_id and _norm(a.approver) == _norm(b.approver):
                    findings.append(
                        Finding(
                            SOD_PAIR,
                            txn_id,
                            f"{a.approver} approved both {pair.first_step} and {pair.second_step}",
                            (f"event:{a.event_id}", f"event:{b.event_id}"),
                            f"sod:{pair.rule_id}",
                            max(a.occurred_at, b.occurred_at),
                            pair.opens_case,
                        )
                    )
    return findings


def lineage_build(
    *,
    events: list[EventFact],
    other_rows: Iterable[LineageRow],
    steps: list[StepControl],
    pairs: list[SodPair],
    roles: Mapping[str, frozenset[str]],
    process_of: Mapping[int, int | None],
) -> Lineage:
    """The ordered lineage of some transactions and the findings of each, with every row naming its findings."""
    by_txn: dict[int, list[EventFact]] = {}
    for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        by_txn.setdefault(e.txn_id, []).append(e)
    findings: list[Finding] = []
    for txn_id in sorted(process_of):
        findings += check_transaction(txn_id, by_txn.get(txn_id, []), steps, pairs, roles, process_of[txn_id])
    about: dict[str, list[str]] = {}
    for f in findings:
        for ref in f.refs:
            about.setdefault(ref, []).append(f.code)
    rows = [replace(row, findings=tuple(about.get(row.ref, ()))) for row in [*event_rows(events), *other_rows]]
    rows.sort(key=LineageRow.sort_key)
    findings.sort(key=lambda f: (f.at, f.txn_id, f.code, f.refs))
    return Lineage(rows=rows, findings=findings)


def actor_key(actor: str) -> str:
    """How actor names are compared (case and spacing ignored): the key of the `roles` mapping."""
    return _norm(actor)
