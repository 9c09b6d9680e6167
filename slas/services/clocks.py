"""SLA clocks: start, stop, pause and forecast them as transactions change, re-evaluate the live ones every minute,
and turn a breach into a case.

Two entry points share one pure evaluator (slas.evaluation):
- after correlation, `clocks_evaluate_transactions` reads the transactions' events and (re)derives their clocks;
- every minute, `clocks_evaluate_live` moves the live clocks on in time without reading any event: its cost follows
  the number of live clocks (bulk reads in id order, one COPY and one UPDATE ... FROM per chunk on PostgreSQL), never
  the size of the history.
Both write a clock only when its state changed, guarded by its version, so that the two never overwrite each other:
the minute pass skips a clock the correlation path changed in between, and catches up a minute later.

A breach is final only together with its case: if opening the case fails, the clock stays live (with `breached_at`
and the reason in `at_risk_reason`) and the next pass tries again.
"""

import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter

from django.db import connection, connections, transaction
from django.utils import timezone

from console.lib.bulk import rows_create, values_rows
from exceptions import services as case_services
from exceptions.selectors import open_case_categories_by_txn
from slas.calendars import CalendarClock
from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus
from slas.evaluation import (
    EVALUATED_FIELDS,
    CasePause,
    ClockState,
    EventFact,
    ForecastParts,
    Matcher,
    PauseRule,
    StepInfo,
    Target,
    duration_text,
    evaluate_clock,
    forecast_parts,
    parse_pause_conditions,
    scan_events,
)
from slas.models import SlaClock, SlaDefinition
from slas.selectors import (
    BREACH_SYSTEM,
    breach_kind,
    process_step_p90,
    process_steps,
    sla_definitions_active,
    work_calendars,
)
from transactions.choices import TransactionStatus
from transactions.selectors import transaction_events_brief, transaction_facts_list, transaction_ids_active_since

logger = logging.getLogger(__name__)

READ_FIELDS = ("id", "version", "definition_id", "txn_id", *EVALUATED_FIELDS)
LIVE_CHUNK = 5000
BREACH_ACTOR = "system:slas"


@dataclass(frozen=True)
class Runtime:
    """An active definition, ready to evaluate: matchers, pause rules, target and its calendar's business time."""

    definition: SlaDefinition
    start: Matcher
    stop: Matcher
    pause_rules: tuple[PauseRule, ...]
    case_categories: frozenset[str]
    target: Target
    business: CalendarClock

    def may_start(self, step_facts: dict) -> bool:
        """Cheap test on the transaction's step facts before its events are read (keys are checked on events)."""
        for key, fact in step_facts.items():
            system, _, kind = key.partition("|")
            if self.start.matches_fact(system, kind, fact.get("status", "")):
                return True
        return False


def _runtimes(definitions: list[SlaDefinition]) -> dict[int, Runtime]:
    calendars = work_calendars(calendar_ids={d.calendar_id for d in definitions})
    business = {calendar_id: CalendarClock(cal) for calendar_id, cal in calendars.items()}
    runtimes = {}
    for definition in definitions:
        try:
            rules = parse_pause_conditions(definition.pause_conditions)
        except ValueError:
            # Saved before validation existed (or loaded as data): run without pauses rather than not at all.
            logger.warning("slas.bad_pause_conditions", extra={"definition": definition.slug})
            rules = ()
        runtimes[definition.pk] = Runtime(
            definition=definition,
            start=definition.start_matcher,
            stop=definition.stop_matcher,
            pause_rules=rules,
            case_categories=frozenset(r.case_category for r in rules if r.on_case),
            target=Target(int(definition.target.total_seconds()), definition.at_risk_percent),
            business=business[definition.calendar_id],
        )
    return runtimes


def _case_pause(runtime: Runtime, open_cases: dict[int, dict[str, datetime]], txn_id: int) -> CasePause | None:
    if not runtime.case_categories:
        return None
    found = {slug: since for slug, since in open_cases.get(txn_id, {}).items() if slug in runtime.case_categories}
    if not found:
        return None
    return CasePause(since=min(found.values()), reason=f"open {', '.join(sorted(found))} case")


# The minute pass rewrites a clock whose only change is time passing (elapsed, remaining and paused seconds, the
# deadline of a paused clock, an overdue forecast) once that drift reaches this; a change of state is written at once.
# Pages and the API show exact figures anyway (selectors.sla_clocks_with_times), and the steady state writes a tenth
# of the running clocks per minute instead of all of them.
DRIFT_SECONDS = 600
_DRIFTING = tuple(
    EVALUATED_FIELDS.index(name)
    for name in ("elapsed_seconds", "remaining_seconds", "paused_seconds", "due_at", "expected_finish_at")
)
# itemgetters run in C: the minute pass compares 100,000 pairs of rows.
_steady = itemgetter(*(i for i in range(len(EVALUATED_FIELDS)) if i not in _DRIFTING))
_drifting = itemgetter(*_DRIFTING)


def _must_write(old: tuple, new: tuple) -> bool:
    """Whether the minute pass stores `new` over `old` (both in EVALUATED_FIELDS order)."""
    if old == new:
        return False
    if _steady(old) != _steady(new):
        return True
    for before, after in zip(_drifting(old), _drifting(new), strict=True):
        if before == after:
            continue
        if before is None or after is None:
            return True
        drift = after - before
        if abs(drift.total_seconds() if isinstance(drift, timedelta) else drift) >= DRIFT_SECONDS:
            return True
    return False


def _state(row: tuple) -> ClockState:
    return ClockState(*row[4:])


_values = attrgetter(*EVALUATED_FIELDS)  # a state's values in EVALUATED_FIELDS order


@dataclass
class _Write:
    clock_id: int
    version: int
    state: ClockState
    was_live: bool
    previous_status: str


# ---- Writing --------------------------------------------------------------------------------------------------------

_PG_TYPES = {
    "status": "text",
    "started_at": "timestamptz",
    "start_event_id": "bigint",
    "entity": "text",
    "stop_event_id": "bigint",
    "stopped_at": "timestamptz",
    "pauses": "jsonb",
    "pause_event_id": "bigint",
    "paused_since": "timestamptz",
    "pause_reason": "text",
    "paused_seconds": "bigint",
    "elapsed_seconds": "bigint",
    "remaining_seconds": "bigint",
    "due_at": "timestamptz",
    "waiting_for_step": "text",
    "forecast": "jsonb",
    "expected_finish_at": "timestamptz",
    "at_risk_reason": "text",
    "at_risk_at": "timestamptz",
    "breached_at": "timestamptz",
    "met_at": "timestamptz",
}
assert set(_PG_TYPES) == set(EVALUATED_FIELDS), "every evaluated field needs its PostgreSQL type"


# What the minute pass can change (it reads no events: start, stop, event pauses and the forecast's parts stand).
LIVE_FIELDS = (
    "status",
    "pauses",
    "paused_since",
    "pause_reason",
    "paused_seconds",
    "elapsed_seconds",
    "remaining_seconds",
    "due_at",
    "expected_finish_at",
    "at_risk_reason",
    "at_risk_at",
    "breached_at",
)


def _write(writes: list[_Write], now: datetime, fields: tuple[str, ...] = EVALUATED_FIELDS) -> set[int]:
    """Store `fields` of the new states of clocks still at the version they were read at; the ids written."""
    if not writes:
        return set()
    if connection.vendor == "postgresql":
        return _write_postgresql(writes, now, fields)
    written = set()
    for write in writes:
        values = {name: getattr(write.state, name) for name in fields}
        count = SlaClock.objects.filter(pk=write.clock_id, version=write.version).update(
            **values, evaluated_at=now, version=write.version + 1
        )
        if count:
            written.add(write.clock_id)
    return written


_STAGING = "slas_clock_staging"


def _write_postgresql(writes: list[_Write], now: datetime, fields: tuple[str, ...]) -> set[int]:
    # The new states go into a session-private staging table by binary COPY (encoded in C: building the rows as one
    # JSON document cost as much Python time as evaluating them), then one UPDATE joins them on id and version, so
    # that a row changed since it was read is skipped.
    table = SlaClock._meta.db_table
    columns = ", ".join(("id", "version", *fields))
    assignments = ", ".join(f"{name} = v.{name}" for name in fields)
    values = attrgetter(*fields)
    written: set[int] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        staging = ", ".join(["id bigint", "version integer", *(f"{n} {t}" for n, t in _PG_TYPES.items())])
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ({staging})")
        for start in range(0, len(writes), LIVE_CHUNK):
            cursor.execute(f"TRUNCATE {_STAGING}")
            with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", *(_PG_TYPES[name] for name in fields)])
                for w in writes[start : start + LIVE_CHUNK]:
                    copy.write_row((w.clock_id, w.version, *values(w.state)))
            cursor.execute(
                f"UPDATE {table} AS c SET {assignments}, evaluated_at = %s, version = c.version + 1 "
                f"FROM {_STAGING} AS v WHERE c.id = v.id AND c.version = v.version RETURNING c.id",
                [now],
            )
            written.update(row[0] for row in cursor.fetchall())
    return written


# ---- Breach -> case -------------------------------------------------------------------------------------------------


def _breach_signal(clock_id: int, txn_id: int, runtime: Runtime, state: ClockState) -> case_services.Signal:
    """The occurrence a breach adds to its case: one case per definition and awaited step, in the definition's breach
    queue when it names one (else where the routing rules send it)."""
    definition = runtime.definition
    step = state.waiting_for_step or runtime.stop.describe()
    return case_services.Signal(
        signal_key=f"sla-breach:{clock_id}",
        category_slug=definition.breach_category_slug,
        system=BREACH_SYSTEM,
        kind=breach_kind(definition),
        title=f"SLA breached: {definition.name}, waiting for {step}",
        message=(
            f"Transaction {txn_id}: {definition.name} used {duration_text(state.elapsed_seconds)} of business time "
            f"against a target of {duration_text(runtime.target.seconds)}; it was waiting for {step}."
        ),
        occurred_at=state.breached_at or timezone.now(),
        txn_id=txn_id,
        entity=state.entity,
        fingerprint_parts=(definition.slug, step),
        queue_id=definition.breach_queue_id,
    )


def _record_breaches(breaches: list[tuple[_Write, int, Runtime]], now: datetime) -> int:
    """Open the case of each newly breached clock (one grouping pass for all of them); a clock whose case cannot be
    opened goes back to live and is tried again on the next pass."""
    signals = {
        write.clock_id: _breach_signal(write.clock_id, txn_id, runtime, write.state)
        for write, txn_id, runtime in breaches
    }
    cases = case_services.signals_record_isolated(
        list(signals.values()), actor=BREACH_ACTOR, log_event="slas.breach_case_failed"
    )
    clocks_by_case: dict[int, list[int]] = {}
    for clock_id, signal in signals.items():
        case = cases.get(signal.signal_key)
        if case is not None:
            clocks_by_case.setdefault(case.pk, []).append(clock_id)
    for case_id, clock_ids in clocks_by_case.items():
        SlaClock.objects.filter(pk__in=clock_ids).update(breach_case_id=case_id)
    for write, _, _ in breaches:
        if signals[write.clock_id].signal_key not in cases:
            live = write.previous_status if write.previous_status in LIVE_CLOCK_STATUSES else ClockStatus.AT_RISK
            SlaClock.objects.filter(pk=write.clock_id).update(
                status=live, at_risk_reason="breached; its case could not be opened yet (see the worker's log)"
            )
    return sum(len(ids) for ids in clocks_by_case.values())


# ---- After correlation ----------------------------------------------------------------------------------------------


def _event_facts(rows: Iterable[dict]) -> list[EventFact]:
    return [
        EventFact(
            event_id=r["event_id"],
            occurred_at=r["occurred_at"],
            system=r["system"],
            kind=r["kind"],
            status=r["status"],
            key_types=frozenset(r["key_types"]),
            entity=r["entity"],
        )
        for r in rows
    ]


class _Pace:
    """Process steps and their p90 durations, read once per process per evaluation."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.steps: dict[int, list[StepInfo]] = {}
        self.p90: dict[int, dict[int, float]] = {}

    def load(self, process_ids: set[int]) -> None:
        self.steps.update(process_steps(process_ids=process_ids - set(self.steps)))

    def forecast(self, process_id: int | None, txn: dict, runtime: Runtime, started_at: datetime) -> ForecastParts:
        steps = self.steps.get(process_id or 0)
        if not steps:
            return ForecastParts(waiting_for_step=runtime.stop.describe())
        if process_id not in self.p90:
            self.p90[process_id] = process_step_p90(process_id=process_id, steps=steps, now=self.now)
        return forecast_parts(steps, self.p90[process_id], txn["step_facts"], started_at=started_at, stop=runtime.stop)


def clocks_evaluate_transactions(*, txn_ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Start, move, pause, stop (and breach) the clocks of these transactions from their events; idempotent."""
    now = now or timezone.now()
    runtimes = _runtimes(sla_definitions_active())
    result = {"transactions": 0, "started": 0, "updated": 0, "breached": 0}
    if not runtimes or not txn_ids:
        return result
    with transaction.atomic():
        txns = [t for t in transaction_facts_list(txn_ids=txn_ids) if t["status"] != TransactionStatus.MERGED]
        by_id = {t["id"]: t for t in txns}
        existing = {
            (row[2], row[3]): row
            for row in values_rows(
                SlaClock.objects.select_for_update()
                .filter(txn_id__in=list(by_id), definition_id__in=list(runtimes))
                .order_by("id")
                .values_list(*READ_FIELDS)
            )
        }
        pairs = [
            (txn, runtime)
            for txn in txns
            for runtime in runtimes.values()
            if (runtime.definition.pk, txn["id"]) in existing
            or (
                runtime.definition.process_id in (None, txn["process_id"])
                and runtime.may_start(txn["step_facts"] or {})
            )
        ]
        result["transactions"] = len({txn["id"] for txn, _ in pairs})
        if not pairs:
            return result
        events = transaction_events_brief(txn_ids=sorted({txn["id"] for txn, _ in pairs}))
        categories = {c for r in runtimes.values() for c in r.case_categories}
        open_cases = open_case_categories_by_txn(categories=categories, txn_ids=list(by_id)) if categories else {}
        pace = _Pace(now)
        pace.load({txn["process_id"] for txn, _ in pairs if txn["process_id"]})

        created: list[tuple[SlaClock, ClockState, Runtime]] = []
        writes: list[tuple[_Write, int, Runtime]] = []
        for txn, runtime in pairs:
            facts = scan_events(
                start=runtime.start,
                stop=runtime.stop,
                pause_rules=runtime.pause_rules,
                events=_event_facts(events.get(txn["id"], [])),
            )
            if facts is None:
                continue
            row = existing.get((runtime.definition.pk, txn["id"]))
            state = _state(row) if row else ClockState.started(facts)
            new = evaluate_clock(
                state,
                target=runtime.target,
                business=runtime.business,
                now=now,
                facts=facts,
                case_pause=_case_pause(runtime, open_cases, txn["id"]),
                forecast=pace.forecast(txn["process_id"], txn, runtime, facts.start.occurred_at),
            )
            if row is None:
                clock = SlaClock(definition_id=runtime.definition.pk, txn_id=txn["id"], evaluated_at=now)
                for name, value in zip(EVALUATED_FIELDS, _values(new), strict=True):
                    setattr(clock, name, value)
                created.append((clock, new, runtime))
            elif _values(new) != row[4:]:
                writes.append((_Write(row[0], row[1], new, True, row[4]), txn["id"], runtime))
        rows_create([clock for clock, _, _ in created])
        written = _write([w for w, _, _ in writes], now)
        breaches = [
            (w, txn_id, runtime)
            for w, txn_id, runtime in writes
            if w.clock_id in written
            and w.state.status == ClockStatus.BREACHED
            and w.previous_status != ClockStatus.BREACHED
        ]
        for clock, new, runtime in created:
            if new.status == ClockStatus.BREACHED:
                # Inserted clocks carry version 1; the previous status of a clock born breached is "running".
                breaches.append((_Write(clock.pk, 1, new, False, ClockStatus.RUNNING), clock.txn_id, runtime))
        result["breached"] = _record_breaches(breaches, now)
        result["started"], result["updated"] = len(created), len(written)
    logger.info("slas.transactions_evaluated", extra=result)
    return result


# ---- Every minute ---------------------------------------------------------------------------------------------------


def clocks_evaluate_live(*, now: datetime | None = None, chunk: int = LIVE_CHUNK) -> dict[str, int]:
    """Move every live clock of an active definition on to `now`: elapsed, remaining, due, pauses from cases, at
    risk, breach. Reads the live clocks in id order (partial index), writes only the changed ones."""
    now = now or timezone.now()
    runtimes = _runtimes(sla_definitions_active())
    result = {"clocks": 0, "written": 0, "breached": 0}
    if not runtimes:
        return result
    categories = {c for r in runtimes.values() for c in r.case_categories}
    open_cases = open_case_categories_by_txn(categories=categories) if categories else {}
    last_id = 0
    with _LiveCommitter(now) as committer:
        while True:
            rows = values_rows(
                SlaClock.objects.filter(status__in=LIVE_CLOCK_STATUSES, id__gt=last_id)
                .order_by("id")
                .values_list(*READ_FIELDS)[:chunk]
            )
            if not rows:
                break
            last_id = rows[-1][0]
            writes: list[tuple[_Write, int, Runtime]] = []
            for row in rows:
                runtime = runtimes.get(row[2])
                if runtime is None:  # a deactivated definition's clocks stand still
                    continue
                new = evaluate_clock(
                    _state(row),
                    target=runtime.target,
                    business=runtime.business,
                    now=now,
                    case_pause=_case_pause(runtime, open_cases, row[3]),
                )
                if _must_write(row[4:], _values(new)):
                    writes.append((_Write(row[0], row[1], new, True, row[4]), row[3], runtime))
            result["clocks"] += len(rows)
            committer.submit(writes)
    result["written"], result["breached"] = committer.written, committer.breached
    logger.info("slas.live_clocks_evaluated", extra=result)
    return result


def _commit_live_chunk(writes: list[tuple[_Write, int, Runtime]], now: datetime) -> tuple[int, int]:
    """Store one chunk of the minute pass and open the cases of its breaches, together; (written, breached)."""
    with transaction.atomic():
        written = _write([w for w, _, _ in writes], now, LIVE_FIELDS)
        breaches = [
            item for item in writes if item[0].clock_id in written and item[0].state.status == ClockStatus.BREACHED
        ]
        return len(written), _record_breaches(breaches, now)


class _LiveCommitter:
    """Commits the minute pass chunk by chunk. On PostgreSQL, outside any transaction (the beat task), a writer
    thread with its own connection stores one chunk while the next is read and evaluated: the database works on one
    core while Python evaluates on the other (a pass over 100,000 clocks spent about a third of its time waiting
    for its UPDATEs). Inside a transaction (tests, callers that hold one) the chunks are committed inline, so that
    they stay part of it."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.written = self.breached = 0
        self._pending: Future | None = None
        self._executor: ThreadPoolExecutor | None = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slas-live-writer")

    def submit(self, writes: list[tuple[_Write, int, Runtime]]) -> None:
        if self._executor is None:
            self._count(_commit_live_chunk(writes, self.now))
            return
        self._collect()  # one chunk in flight: a failure stops the pass at the next chunk
        self._pending = self._executor.submit(_commit_live_chunk, writes, self.now)

    def _collect(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._count(pending.result())

    def _count(self, counts: tuple[int, int]) -> None:
        self.written += counts[0]
        self.breached += counts[1]

    def __enter__(self) -> "_LiveCommitter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._executor is None:
            return
        try:
            if exc_type is None:
                self._collect()
        finally:
            # The thread's connection is its own (Django's connections are per thread): close it in that thread.
            self._executor.submit(connections.close_all)
            self._executor.shutdown(wait=True)


# ---- Merges ---------------------------------------------------------------------------------------------------------


@transaction.atomic
def clocks_follow_merge(*, survivor_id: int, absorbed_ids: list[int]) -> int:
    """The clocks of absorbed transactions move to the survivor (one per definition: the one with a breach case, else
    the survivor's, else the earliest); the survivor is then re-evaluated from all its events. Returns clocks moved."""
    clocks = list(SlaClock.objects.select_for_update().filter(txn_id__in=[survivor_id, *absorbed_ids]).order_by("id"))
    by_definition: dict[int, list[SlaClock]] = {}
    for clock in clocks:
        by_definition.setdefault(clock.definition_id, []).append(clock)
    moved, dropped = [], []
    for group in by_definition.values():
        keep = min(group, key=lambda c: (c.breach_case_id is None, c.txn_id != survivor_id, c.started_at, c.pk))
        dropped += [c.pk for c in group if c is not keep]
        if keep.txn_id != survivor_id:
            moved.append(keep.pk)
    SlaClock.objects.filter(pk__in=dropped).delete()
    SlaClock.objects.filter(pk__in=moved).update(txn_id=survivor_id)
    return len(moved)


# ---- The sweep ------------------------------------------------------------------------------------------------------

# Transactions active this recently are re-evaluated by the sweep, in case their evaluation task was lost.
SWEEP_WINDOW = timedelta(minutes=10)
SWEEP_LIMIT = 20000


def clocks_sweep_recent(*, now: datetime | None = None) -> dict[str, int]:
    """Re-evaluate the transactions that changed in the last minutes: the database, not the broker, is the record of
    what still needs evaluating (evaluation is idempotent, so a transaction evaluated twice is harmless)."""
    now = now or timezone.now()
    txn_ids = transaction_ids_active_since(since=now - SWEEP_WINDOW, limit=SWEEP_LIMIT)
    result = {"transactions": 0, "started": 0, "updated": 0, "breached": 0}
    for start in range(0, len(txn_ids), 1000):
        done = clocks_evaluate_transactions(txn_ids=txn_ids[start : start + 1000], now=now)
        result = {key: result[key] + done[key] for key in result}
    return result


__all__ = [
    "SWEEP_WINDOW",
    "clocks_evaluate_live",
    "clocks_evaluate_transactions",
    "clocks_follow_merge",
    "clocks_sweep_recent",
]
