"""Progress lines and the closing summary of a simulation run (plain text, no dependency)."""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from transactions.canonical import normalise_key
from transactions.choices import BROAD_KEY_TYPES, DEFAULT_CORRELATING_KEY_TYPES
from transactions.correlation import EventFacts, add_event_facts, group_batch, linking_keys, unrecovered_failures
from transactions.simulation.builder import BusinessTransaction, JsonDict, SimEvent
from transactions.simulation.catalogue import FAILURE_KINDS, PROCESS_WEIGHTS, SILENT_MISMATCHES, SYSTEMS

Write = Callable[[str], None]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Every `interval` seconds a line such as `simulate: 12,400/25,000 events (49%) 8,100 ev/s ETA 2s`.

    The ETA follows the rate so far, or the clock when the run ends at a known `deadline` (live mode).
    """

    def __init__(
        self,
        *,
        total: int,
        write: Write | None,
        interval: float = 2.0,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.write = write
        self.interval = interval
        self.deadline = deadline
        self.clock = clock
        self.done = 0
        self.started = self.last = clock()

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.report(now)

    def finish(self) -> None:
        self.report(self.clock())

    def line(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.done // self.total if self.total else 100
        if self.deadline is not None:
            eta: float | None = max(0.0, self.deadline - now)
        elif self.done >= self.total:
            eta = 0.0
        else:
            eta = (self.total - self.done) / rate if rate > 0 else None
        return f"simulate: {self.done:,}/{self.total:,} events ({percent}%) {rate:,.0f} ev/s ETA {_duration(eta)}"

    def report(self, now: float) -> None:
        if self.write is not None:
            self.write(self.line(now))


def _delivered(txn: BusinessTransaction) -> list[EventFacts]:
    """What correlation sees of the transaction: its events ingest accepted (a malformed record is a dead letter)."""
    return [
        EventFacts(
            event_id=0,
            received_at=e.deliver_at,
            occurred_at=e.occurred_at,
            system=e.record["system"],
            kind=e.record["kind"],
            status=e.record["status"],
            trace_id=e.record.get("trace_id"),
            links=e.record.get("links") or [],
            business_keys={t: normalise_key(t, str(v)) for t, v in (e.record.get("business_keys") or {}).items()},
        )
        for e in txn.events
        if not e.malformed
    ]


def delivered_facts(txn: BusinessTransaction) -> dict[str, dict]:
    """The transaction's step facts as correlation folds them, from what ingest accepts of its deliveries."""
    return add_event_facts({}, _delivered(txn))


def delivered_parts(txn: BusinessTransaction, correlating: frozenset[str]) -> int:
    """How many transactions correlation makes of what ingest accepted of it: more than one when a dead-lettered
    record was the only event carrying the keys of both halves (the sales order that names contract and order)."""
    return len(group_batch([linking_keys(e, correlating) for e in _delivered(txn)], {}))


@dataclass
class RunStats:
    """What a run sent and what ingest answered."""

    transactions: int = 0
    processes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # transactions hit, by failure kind or delivery anomaly
    retried: int = 0
    stalled: int = 0
    split: int = 0  # business transactions correlation sees as two or more: a dead letter was their only link
    failed: int = 0  # delivered a failure that no later success of the same system made good: the console's "failed"
    evidence_lost: int = 0
    withheld: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)  # transactions delivering a silent mismatch, by kind
    systems: Counter[str] = field(default_factory=Counter)  # deliveries, by system
    channels: Counter[str] = field(default_factory=Counter)  # deliveries, by channel
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    # Live OTLP: an OTLP export answer counts only rejected spans, so accepted and duplicate spans are not told apart.
    spans_exported: int = 0
    spans_failed: int = 0
    replayed: int = 0  # replayed steps the estate redid, each reported by a success event
    replays_made_good: int = 0  # failed transactions a replay's success event made good
    seconds: float = 0.0
    # The failed transactions by (system, kind, key type, key value) of their failed steps, for the replays to find.
    _failing: dict[tuple[str, str, str, str], BusinessTransaction] = field(default_factory=dict, repr=False)

    @property
    def delivered(self) -> int:
        return sum(self.systems.values())

    def count_transactions(
        self,
        transactions: list[BusinessTransaction],
        correlating: frozenset[str] = DEFAULT_CORRELATING_KEY_TYPES - BROAD_KEY_TYPES,
    ) -> None:
        """Count them as the console will: `correlating` are the key types that link events (the console's)."""
        for txn in transactions:
            parts = delivered_parts(txn, correlating)
            if not parts:
                continue  # nothing of it reaches the console but a dead letter
            self.transactions += parts
            self.split += parts > 1
            self.processes[txn.process] += 1
            if txn.failure is not None:
                self.failures[txn.failure] += 1
            self.retried += txn.retried
            self.stalled += txn.stalled
            if unrecovered_failures(delivered_facts(txn)):
                self.failed += 1
                for event in txn.events:
                    if event.record["status"] == "error" and not event.malformed:
                        for key in (event.record.get("business_keys") or {}).items():
                            self._failing[(event.system, event.record["kind"], *key)] = txn
            self.evidence_lost += txn.evidence_lost
            self.withheld += txn.withheld
            if txn.mismatch is not None:
                self.mismatches[txn.mismatch] += 1

    def count_delivery(self, *, system: str, channel: str, count: int) -> None:
        self.systems[system] += count
        self.channels[channel] += count

    def count_answer(self, *, accepted: int, duplicates: int, rejected: int) -> None:
        self.accepted += accepted
        self.duplicates += duplicates
        self.rejected += rejected

    def count_replay(self, *, record: JsonDict, accepted: int, duplicates: int) -> None:
        """A replayed step redone by its system: its success event `record` is a delivery like any other, and the
        failed transaction it belongs to (found by the step's system, kind and a business key) may be failed no more.
        """
        system, occurred_at = record["system"], datetime.fromisoformat(record["occurred_at"])
        self.replayed += 1
        keys = (record.get("business_keys") or {}).items()
        txn = next((t for k in keys if (t := self._failing.get((system, record["kind"], *k))) is not None), None)
        if txn is not None and accepted:
            txn.events.append(SimEvent(record, "native", occurred_at=occurred_at, deliver_at=occurred_at))
            if not unrecovered_failures(delivered_facts(txn)):
                self.failed -= 1
                self.replays_made_good += 1
                self._failing = {k: t for k, t in self._failing.items() if t is not txn}
        self.count_delivery(system=system, channel="native", count=accepted + duplicates)
        self.count_answer(accepted=accepted, duplicates=duplicates, rejected=0)

    def headline(self) -> str:
        rate = self.delivered / self.seconds if self.seconds > 0 else 0.0
        return (
            f"simulate: {self.delivered:,} events of {self.transactions:,} business transactions from "
            f"{len(self.systems)} systems in {self.seconds:.1f}s ({rate:,.0f} ev/s)"
        )

    def summary(self) -> list[str]:
        answer = f"{self.accepted:,} accepted, {self.duplicates:,} duplicates, {self.rejected:,} rejected"
        if self.spans_exported or self.spans_failed:
            answer += f"; OTLP spans: {self.spans_exported:,} exported, {self.spans_failed:,} failed to export"
        lines = [self.headline(), f"  ingest answered: {answer}", "  events per system:"]
        lines += [f"    {name:<18} {self.systems[name]:>8,}" for name in SYSTEMS if self.systems[name]]
        lines.append("  events per channel: " + ", ".join(f"{c} {n:,}" for c, n in sorted(self.channels.items())))
        lines.append(
            "  transactions per process: "
            + ", ".join(f"{p} {self.processes[p]:,}" for p in PROCESS_WEIGHTS if self.processes[p])
        )
        scheduled = {p: n for p, n in self.processes.items() if p not in PROCESS_WEIGHTS}
        if scheduled:
            lines.append("  scheduled traffic: " + ", ".join(f"{p} {n:,}" for p, n in sorted(scheduled.items())))
        hit = sum(self.failures.values())
        # "failed" in the console's sense: a failure delivered and not made good by a later success of the same
        # system. A failure whose transaction ended there but whose error never arrived (held back by a silent system,
        # after the end of the window) is not failed in the console, which never saw it.
        lines.append(
            f"  transactions hit by a failure or delivery anomaly: {hit:,} ({self.retried:,} recovered on retry, "
            f"{self.stalled:,} ended at their failure); {self.failed:,} failed as delivered"
        )
        lines += [f"    {name:<30} {self.failures[name]:>6,}" for name in FAILURE_KINDS if self.failures[name]]
        if self.split:
            lines.append(
                f"  {self.split:,} business transactions correlate as two or more (counted so above): a dead-lettered "
                "record was the only event carrying both halves' keys"
            )
        if self.replayed:
            lines.append(
                f"  replays: {self.replayed:,} replayed steps redone by their systems (a success event each), "
                f"{self.replays_made_good:,} of them made a failed transaction good"
            )
        if self.mismatches:
            lines.append(
                f"  silent mismatches (every system reports success; reconciliation finds them): "
                f"{sum(self.mismatches.values()):,}"
            )
            lines += [
                f"    {m.name:<30} {self.mismatches[m.name]:>6,}" for m in SILENT_MISMATCHES if self.mismatches[m.name]
            ]
        if self.withheld or self.evidence_lost:
            lines.append(
                f"  SLA pressure: {self.withheld:,} deliveries held back by a silent system, "
                f"{self.evidence_lost:,} transactions whose control evidence never arrives"
            )
        return lines
