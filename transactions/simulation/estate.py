"""The simulated finance integration estate: a seeded generator of business transactions.

Pure module (no Django, no ORM). `generate` turns a `Scenario` (seed, time window, rate, failure mix) into business
transactions, each an ordered list of canonical events (ARCHITECTURE.md "Canonical event") with the channel each one
travels on and the moment it is delivered. The history and live drivers only encode and send what is decided here, so
one seed gives the same estate whichever way it travels. The systems, processes and failure kinds are in `catalogue`,
the steps of each process in `processes`.
"""

import contextlib
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import partial

from transactions.simulation.builder import BusinessTransaction, IdSource, SimEvent, Stalled, TxnBuilder
from transactions.simulation.catalogue import (
    DECK_SIZE,
    DEFAULT_FAILURE_RATE,
    DEFAULT_FAILURE_WEIGHTS,
    FAILURE_KINDS,
    MAX_MISMATCH_SCALE,
    PROCESS_WEIGHTS,
    SILENT_MISMATCHES,
    SYSTEMS,
    FailureKind,
)
from transactions.simulation.processes import PROCESS_STEPS, bank_statement, bill_run_invoice


@dataclass(frozen=True)
class Scenario:
    """What to simulate: transactions start in [start, end); nothing occurs or is delivered after `end`."""

    seed: int
    start: datetime
    end: datetime
    rate_per_hour: float  # business transactions per hour (history: the average over the business week)
    failure_rate: float = DEFAULT_FAILURE_RATE  # share of transactions hit by a failure or delivery anomaly
    failure_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FAILURE_WEIGHTS))
    # Live runs compress each process into seconds and arrive at a flat rate; history follows business hours.
    live: bool = False
    # SLA pressure beyond failures: one system that goes silent for the last `silence` of working time before `end`
    # (its deliveries are held back, as by a webhook endpoint that stopped accepting), and a share of control
    # evidence that is never captured (the compliance vault never hears of it).
    silent_system: str = ""
    silence: timedelta = timedelta(0)
    evidence_loss: float = 0.0
    # Silent mismatches (catalogue.SILENT_MISMATCHES) at their realistic rates times this factor; 0 turns them off.
    mismatch_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if not 0 < self.rate_per_hour < math.inf:
            raise ValueError("rate must be a number above 0")
        if not 0 <= self.failure_rate <= 1:
            raise ValueError("failure rate must be between 0 and 1")
        unknown = set(self.failure_weights) - set(FAILURE_KINDS)
        if unknown:
            raise ValueError(f"unknown failure kinds {sorted(unknown)}; known kinds: {', '.join(FAILURE_KINDS)}")
        if self.failure_rate > 0 and not any(w > 0 for w in self.failure_weights.values()):
            raise ValueError("with a failure rate above 0, at least one failure kind needs a weight above 0")
        if self.silent_system and self.silent_system not in SYSTEMS:
            raise ValueError(f"unknown system {self.silent_system!r}; known systems: {', '.join(SYSTEMS)}")
        if self.silence < timedelta(0):
            raise ValueError("silence must not be negative")
        if not 0 <= self.evidence_loss <= 1:
            raise ValueError("evidence loss must be between 0 and 1")
        if not 0 <= self.mismatch_scale <= MAX_MISMATCH_SCALE:
            raise ValueError(f"mismatch scale must be between 0 and {MAX_MISMATCH_SCALE:g}")

    @property
    def silence_start(self) -> datetime | None:
        """When the silent system stops delivering: `silence` of weekday working time (06:00-18:00 UTC, which
        covers the working day of every European calendar) before `end`; live runs count plain seconds."""
        if not self.silent_system or self.silence <= timedelta(0):
            return None
        if self.live:
            return max(self.start, self.end - self.silence)
        return _working_time_before(self.end, self.silence, floor=self.start)


# Scheduled traffic (history only): the German entity's morning bill run posts about 200-260 invoices each weekday,
# and the house bank's camt.053 statement is imported before 06:00 Berlin. On one weekday of the window each fails
# as they do in real estates (the bill run stops part way; the statement comes after the morning's cash positioning).
BILL_RUN_INVOICES = (215, 260)
BILL_RUN_SHORT = (110, 170)
BILL_RUN_HOURS = (6.0, 7.5)  # UTC: 07:00-09:30 in Berlin, well before the 18:00 deadline
STATEMENT_HOURS = (3.2, 3.9)  # UTC: before 05:00 in Berlin, summer and winter
STATEMENT_LATE_HOURS = (7.5, 8.5)
BILL_RUN_PROCESS = "bill-run"
BANK_STATEMENT_PROCESS = "bank-statement"

# Working time as the simulator sees it (it knows no calendars): weekdays, 06:00-18:00 UTC.
_WORK_HOURS = (6, 18)
# Evidence the compliance vault captures (and then has approved) for a control.
EVIDENCE_KINDS = ("evidence.captured", "evidence.approved")


def _working_time_before(end: datetime, span: timedelta, *, floor: datetime) -> datetime:
    """The instant from which `span` of weekday working time (06:00-18:00 UTC) passes until `end` (not before floor)."""
    end, left = end.astimezone(UTC), span
    day = end.date()
    while True:
        day_start = datetime.combine(day, time(_WORK_HOURS[0]), tzinfo=UTC)
        upper = min(end, datetime.combine(day, time(_WORK_HOURS[1]), tzinfo=UTC))
        if day.weekday() < 5 and upper > day_start:
            if upper - day_start >= left:
                return max(upper - left, floor)
            left -= upper - day_start
        if day_start <= floor:
            return floor
        day -= timedelta(days=1)


def generate(scenario: Scenario) -> Iterator[BusinessTransaction]:
    """The scenario's business transactions in start order; the same scenario always yields the same ids."""
    return _Estate(scenario).transactions()


def deliveries(transactions: list[BusinessTransaction]) -> list[SimEvent]:
    """Every delivery of `transactions` in arrival order (ties keep business order)."""
    return sorted((event for txn in transactions for event in txn.events), key=lambda e: e.deliver_at)


# ---- Generator ------------------------------------------------------------------------------------------------------


def _intensity(hour: datetime) -> float:
    """Relative traffic of an hour (UTC): finance integrations follow the business day and the working week."""
    if hour.weekday() >= 5:
        return 0.25
    if hour.hour in (9, 10, 11, 14, 15, 16):
        return 1.9
    if 8 <= hour.hour < 18:
        return 1.5
    if 6 <= hour.hour < 8 or 18 <= hour.hour < 21:
        return 0.7
    return 0.2


_WEEK = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
_MEAN_INTENSITY = sum(_intensity(_WEEK + timedelta(hours=h)) for h in range(168)) / 168


class _Deck:
    """Failure kinds dealt like cards from a shuffled deck, in proportion to their weights, every kind at least once."""

    def __init__(self, weights: Mapping[str, float], rng: random.Random) -> None:
        total = sum(w for w in weights.values() if w > 0)
        self.rng = rng
        self.cards = [
            name
            for name in FAILURE_KINDS  # catalogue order, so the deck does not depend on the order weights were given
            if weights.get(name, 0) > 0
            for _ in range(max(1, round(weights[name] / total * DECK_SIZE)))
        ]
        self.pile: list[str] = []

    def draw(self) -> str:
        if not self.pile:
            self.pile = list(self.cards)
            self.rng.shuffle(self.pile)
        return self.pile.pop()


class _Estate:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.evidence_rng = random.Random(f"{scenario.seed}:evidence")
        # Silent mismatches and the facts they change draw from a stream of their own: the estate is otherwise the
        # same with or without them.
        self.mismatch_rng = random.Random(f"{scenario.seed}:mismatch")
        self.supplier_invoices: list[dict] = []
        self.deck = _Deck(scenario.failure_weights, self.rng)
        self.ids = IdSource(self.rng)
        self.processes = list(PROCESS_WEIGHTS)
        self.process_weights = list(PROCESS_WEIGHTS.values())

    def arrivals(self) -> Iterator[datetime]:
        """A Poisson process: flat in live runs, following business hours in history."""
        s = self.scenario
        if s.live:
            moment = s.start
            while True:
                moment += timedelta(seconds=self.rng.expovariate(s.rate_per_hour / 3600))
                if moment >= s.end:
                    return
                yield moment
        hour = s.start.replace(minute=0, second=0, microsecond=0)
        while hour < s.end:
            rate = s.rate_per_hour * _intensity(hour) / _MEAN_INTENSITY
            moment, hour_end = hour, hour + timedelta(hours=1)
            while True:
                moment += timedelta(hours=self.rng.expovariate(rate))
                if moment >= hour_end:
                    break
                if moment >= s.start:
                    yield moment
            hour = hour_end

    def transactions(self) -> Iterator[BusinessTransaction]:
        last = 0
        for txn in self.business():
            last = txn.number
            yield txn
        if not self.scenario.live:
            for number, txn in enumerate(self.scheduled(), start=last + 1):
                txn.number = number
                yield txn

    def scheduled(self) -> Iterator[BusinessTransaction]:
        """The bill run and the bank statement of every weekday in the window, from generators of their own (so
        that the business transactions stay the same with or without them)."""
        s = self.scenario
        rng = random.Random(f"{s.seed}:schedule")
        ids = IdSource(rng)
        weekdays = []
        day = s.start.astimezone(UTC).date()
        while day <= s.end.astimezone(UTC).date():
            if day.weekday() < 5:
                weekdays.append(day)
            day += timedelta(days=1)
        # The misses fall on earlier weekdays, never the last two: the console then shows a monitor that missed
        # and recovered as well as one that holds now.
        candidates = weekdays[:-2] or weekdays
        short_run = rng.choice(candidates) if candidates else None
        late_statement = rng.choice(candidates) if candidates else None
        for day in weekdays:
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            low, high = STATEMENT_LATE_HOURS if day == late_statement else STATEMENT_HOURS
            at = midnight + timedelta(hours=rng.uniform(low, high))
            if s.start <= at < s.end:
                yield from self.built(ids, BANK_STATEMENT_PROCESS, at, bank_statement)
            count = rng.randint(*(BILL_RUN_SHORT if day == short_run else BILL_RUN_INVOICES))
            at = midnight + timedelta(hours=rng.uniform(*BILL_RUN_HOURS))
            run = f"BR-{day:%Y%m%d}-DE01"
            for _ in range(count):
                if not s.start <= at < s.end:
                    break
                for txn in self.built(ids, BILL_RUN_PROCESS, at, partial(bill_run_invoice, bill_run=run)):
                    at = max(at, txn.started_at, *(e.occurred_at for e in txn.events))
                    yield txn

    def built(
        self, ids: IdSource, process: str, start: datetime, steps: Callable[[TxnBuilder], None]
    ) -> Iterator[BusinessTransaction]:
        txn = TxnBuilder(
            ids=ids,
            live=False,
            end=self.scenario.end,
            number=0,
            process=process,
            start=start.replace(microsecond=start.microsecond // 1000 * 1000),
            failure=None,
            site=None,
        )
        steps(txn)
        result = self.pressure(txn.finish())
        if result.events:
            yield result

    def business(self) -> Iterator[BusinessTransaction]:
        s = self.scenario
        for number, start in enumerate(self.arrivals(), start=1):
            failure: FailureKind | None = None
            site: tuple[str, str] | None = None
            if s.failure_rate > 0 and self.rng.random() < s.failure_rate:
                failure = FAILURE_KINDS[self.deck.draw()]
                if failure.sites:
                    site = self.rng.choice(failure.sites)
            process = site[0] if site else self.rng.choices(self.processes, self.process_weights)[0]
            silent = self.silent_mismatch(process)
            txn = TxnBuilder(
                ids=self.ids,
                live=s.live,
                end=s.end,
                number=number,
                process=process,
                # Senders write milliseconds; whole milliseconds keep every channel's timestamps identical.
                start=start.replace(microsecond=start.microsecond // 1000 * 1000),
                failure=failure,
                site=site,
                silent=silent,
                facts_rng=self.mismatch_rng,
                ledger=self.supplier_invoices,
            )
            # A failed step that is not retried ends its transaction: the events so far are what happened.
            with contextlib.suppress(Stalled):
                PROCESS_STEPS[process](txn)
            result = self.pressure(txn.finish())
            if result.events:
                yield result

    def silent_mismatch(self, process: str) -> str | None:
        """The silent mismatch that strikes the next transaction of `process`, if any (one draw per transaction)."""
        draw = self.mismatch_rng.random()
        for mismatch in SILENT_MISMATCHES:
            if mismatch.process != process:
                continue
            draw -= mismatch.rate * self.scenario.mismatch_scale
            if draw < 0:
                return mismatch.name
        return None

    def pressure(self, txn: BusinessTransaction) -> BusinessTransaction:
        """Hold back the silent system's deliveries, and lose the evidence of some controls."""
        s = self.scenario
        silent_from = s.silence_start
        if silent_from is not None:
            kept = [e for e in txn.events if not (e.system == s.silent_system and e.deliver_at >= silent_from)]
            txn.withheld, txn.events = len(txn.events) - len(kept), kept
        # Drawn from a generator of its own, so that the estate's other choices stay the same with or without it.
        has_evidence = any(e.record["kind"] in EVIDENCE_KINDS for e in txn.events)
        if s.evidence_loss > 0 and has_evidence and self.evidence_rng.random() < s.evidence_loss:
            txn.events = [e for e in txn.events if e.record["kind"] not in EVIDENCE_KINDS]
            txn.evidence_lost = True
        return txn
