"""Correlation logic without the database: which keys link events, how a batch groups, what state a transaction is in.

Plain data in, plain data out, so that the rules can be tested exhaustively; `transactions.services.correlation` does
the I/O.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from transactions.canonical import kind_matches

TRACE = "trace"
SYSTEM = "system"
Key = tuple[str, str]  # (key type, normalised value); trace ids use the type "trace"


@dataclass(frozen=True)
class EventFacts:
    """What correlation needs to know of one event."""

    event_id: int
    received_at: datetime
    occurred_at: datetime
    system: str
    kind: str
    status: str
    trace_id: str | None
    links: list[dict]
    business_keys: dict[str, str]


@dataclass(frozen=True)
class StepSpec:
    position: int
    name: str
    system: str
    kind_pattern: str
    allowance: timedelta
    required: bool

    def matches(self, system: str, kind: str) -> bool:
        return (not self.system or self.system == system) and kind_matches(self.kind_pattern, kind)


@dataclass(frozen=True)
class ProcessSpec:
    process_id: int
    name: str
    steps: tuple[StepSpec, ...]


def linking_keys(event: EventFacts, correlating_types: frozenset[str]) -> list[Key]:
    """Keys that join this event to others: its trace, the traces it links to, and its correlating business keys."""
    keys: list[Key] = []
    if event.trace_id:
        keys.append((TRACE, event.trace_id))
    for link in event.links:
        if link.get("trace_id"):
            keys.append((TRACE, link["trace_id"]))
    for key_type, value in sorted(event.business_keys.items()):
        if key_type in correlating_types:
            keys.append((key_type, value))
    return list(dict.fromkeys(keys))


def searchable_keys(event: EventFacts, correlating_types: frozenset[str]) -> list[Key]:
    """Business keys that are searched but never link (customer, legal entity...)."""
    return [(t, v) for t, v in sorted(event.business_keys.items()) if t not in correlating_types]


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, node: int) -> int:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


@dataclass
class Group:
    """Events of a batch that belong together, and the existing transactions their keys already point at."""

    event_indexes: list[int] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    existing_txn_ids: set[int] = field(default_factory=set)


def group_batch(event_keys: list[list[Key]], existing: dict[Key, int]) -> list[Group]:
    """Union the batch's events by shared keys; each group knows the transactions it touches (more than one: merge)."""
    finder = _UnionFind(len(event_keys))
    first_holder: dict[Key, int] = {}
    for index, keys in enumerate(event_keys):
        for key in keys:
            if key in first_holder:
                finder.union(first_holder[key], index)
            else:
                first_holder[key] = index
    groups: dict[int, Group] = {}
    for index, keys in enumerate(event_keys):
        group = groups.setdefault(finder.find(index), Group())
        group.event_indexes.append(index)
        for key in keys:
            if key not in group.keys:
                group.keys.append(key)
            if key in existing:
                group.existing_txn_ids.add(existing[key])
    return list(groups.values())


# ---- Transaction summary and state ----------------------------------------------------------------------------------


def fact_key(system: str, kind: str) -> str:
    return f"{system}|{kind}"


def add_event_facts(step_facts: dict, events: Iterable[EventFacts]) -> dict:
    """Fold events into the per-(system, kind) facts; the latest occurrence decides a step's status (late-safe)."""
    facts = {k: dict(v) for k, v in step_facts.items()}
    for event in events:
        key = fact_key(event.system, event.kind)
        at = event.occurred_at.isoformat()
        fact = facts.get(key)
        if fact is None:
            facts[key] = {"status": event.status, "first_at": at, "last_at": at, "count": 1}
            continue
        fact["count"] += 1
        fact["first_at"] = min(fact["first_at"], at)
        if at >= fact["last_at"]:
            fact["last_at"] = at
            fact["status"] = event.status
    return facts


def merge_facts(a: dict, b: dict) -> dict:
    facts = {k: dict(v) for k, v in a.items()}
    for key, fact in b.items():
        mine = facts.get(key)
        if mine is None:
            facts[key] = dict(fact)
            continue
        mine["count"] += fact["count"]
        mine["first_at"] = min(mine["first_at"], fact["first_at"])
        if fact["last_at"] >= mine["last_at"]:
            mine["last_at"], mine["status"] = fact["last_at"], fact["status"]
    return facts


def _facts_for_step(step: StepSpec, facts: dict) -> list[dict]:
    found = []
    for key, fact in facts.items():
        system, _, kind = key.partition("|")
        if step.matches(system, kind):
            found.append(fact)
    return found


def detect_process(processes: Iterable[ProcessSpec], facts: dict) -> ProcessSpec | None:
    """The process whose steps the transaction matches best; its first step matching breaks ties."""
    best: tuple[int, int, int] | None = None
    chosen = None
    for process in processes:
        matched = [s for s in process.steps if _facts_for_step(s, facts)]
        if not matched:
            continue
        score = (len(matched), -min(s.position for s in matched), -process.process_id)
        if best is None or score > best:
            best, chosen = score, process
    return chosen


@dataclass(frozen=True)
class TransactionState:
    status: str
    next_step: dict | None
    next_due_at: datetime | None


def next_expected_step(
    process: ProcessSpec, facts: dict, *, started_at: datetime
) -> tuple[StepSpec | None, datetime | None]:
    """The first required step not seen yet, due its allowance after the latest step seen before it."""
    previous_done_at = started_at
    for step in process.steps:
        found = _facts_for_step(step, facts)
        if found:
            previous_done_at = max(previous_done_at, *(datetime.fromisoformat(f["last_at"]) for f in found))
            continue
        if step.required:
            return step, previous_done_at + step.allowance
    return None, None


def unrecovered_failures(facts: dict) -> list[str]:
    """Fact keys whose latest attempt failed and that no later success of the same system made good.

    Sources report a retry in their own words: the failed attempt and the one that succeeded often carry different
    names (an OpenTelemetry retry is a new span, linked to the failed one; an iPaaS logs "post failed" then the posted
    document), so a later success of the same system counts as the retry. Whether the transaction then completed is
    still decided by the process's steps."""
    latest_ok: dict[str, str] = {}
    for key, fact in facts.items():
        if fact["status"] != "error":
            system = key.partition("|")[0]
            latest_ok[system] = max(latest_ok.get(system, ""), fact["last_at"])
    return [
        key
        for key, fact in facts.items()
        if fact["status"] == "error" and latest_ok.get(key.partition("|")[0], "") <= fact["last_at"]
    ]


def evaluate_state(
    process: ProcessSpec | None, facts: dict, *, started_at: datetime, now: datetime, error_count: int = 0
) -> TransactionState:
    """failed (a failure not made good since), completed, recovered (completed after a failure: `error_count` counts
    failed events, as a retry under the same name leaves no failed fact behind), stalled (next step overdue) or
    in_flight."""
    step, due = next_expected_step(process, facts, started_at=started_at) if process else (None, None)
    if unrecovered_failures(facts):
        return TransactionState("failed", _step_dict(step) if step else None, None)
    if process is None:
        return TransactionState("in_flight", None, None)
    if step is None:
        failed_before = error_count > 0 or any(f["status"] == "error" for f in facts.values())
        return TransactionState("recovered" if failed_before else "completed", None, None)
    return TransactionState("stalled" if due < now else "in_flight", _step_dict(step), due)


def _step_dict(step: StepSpec) -> dict:
    return {"position": step.position, "name": step.name, "system": step.system, "kind": step.kind_pattern}
