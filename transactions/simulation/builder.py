"""Builds one business transaction step by step: its canonical events, their channels and delivery times.

Pure module (no Django, no ORM); `processes` describes the steps, `estate` decides which transactions happen.
"""

import contextlib
import math
import random
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from transactions.simulation.catalogue import (
    CLOUDEVENTS,
    CUSTOMERS,
    ENTITIES,
    HTTP_REASONS,
    NATIVE,
    OTLP,
    SYSTEMS,
    FailureKind,
    LegalEntity,
    Party,
)

JsonDict = dict[str, Any]

# Seconds, for the delays between steps.
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class SimEvent:
    """One delivery of one canonical event: what it says, which channel carries it, and when it arrives."""

    record: JsonDict  # canonical event (native API shape), as Closeloop should store it
    channel: str
    occurred_at: datetime
    deliver_at: datetime
    cloudevent: JsonDict | None = None  # the CloudEvents envelope, for events that travel as CloudEvents
    failure: str | None = None  # the failure kind this error event reports
    anomaly: str | None = None  # the delivery anomaly that moved this delivery
    redelivery: bool = False  # a second delivery of a record delivered before
    malformed: bool = False  # a record ingest cannot read: it goes to the dead-letter store
    mismatch: str | None = None  # the silent mismatch whose diverging fact this event carries (nothing in the record)

    @property
    def system(self) -> str:
        return self.record["system"]


@dataclass
class BusinessTransaction:
    """One run of a business process across the estate, as it happened and as it was delivered."""

    number: int
    process: str
    started_at: datetime
    failure: str | None  # the failure kind or delivery anomaly drawn for it, if any
    events: list[SimEvent]  # in business order; a redelivery follows the delivery it repeats
    retried: bool = False  # its failed step succeeded on a later attempt
    stalled: bool = False  # its failed step ended it
    evidence_lost: bool = False  # its control evidence was never captured (Scenario.evidence_loss)
    withheld: int = 0  # deliveries the silent system held back (Scenario.silent_system)

    @property
    def mismatch(self) -> str | None:
        """The silent mismatch its delivered facts show, if a step showing one reached Closeloop."""
        return next((e.mismatch for e in self.events if e.mismatch and not e.malformed), None)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z, the way senders write timestamps."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Stalled(Exception):
    """The failed step was not retried: the transaction ends there."""


class IdSource:
    """The seeded ids and document numbers of one run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        # Document numbers start at a seed-dependent offset so that runs with other seeds rarely reuse a number.
        self.offset = rng.randrange(0, 400) * 2000
        self.counters: dict[str, int] = {}

    def hex_id(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits) or 1:0{bits // 4}x}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, prefix: str, length: int = 24) -> str:
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))

    def next_number(self, series: str, base: int) -> int:
        self.counters[series] = self.counters.get(series, 0) + 1
        return base + self.offset + self.counters[series]


class TxnBuilder:
    """Builds one business transaction step by step, advancing its own clock."""

    def __init__(
        self,
        *,
        ids: IdSource,
        live: bool,
        end: datetime,
        number: int,
        process: str,
        start: datetime,
        failure: FailureKind | None,
        site: tuple[str, str] | None,
        silent: str | None = None,
        facts_rng: random.Random | None = None,
        ledger: list[JsonDict] | None = None,
    ) -> None:
        self.ids = ids
        self.rng = ids.rng
        self.live = live
        self.end = end
        self.number = number
        self.process = process
        self.start = start
        self.clock = start
        self.failure = failure
        self.site = site
        self.events: list[SimEvent] = []
        self.trace_id: str | None = None
        self.retried = False
        self.stalled = False
        self.ctx: dict[str, str] = {}
        # Silent mismatches: the one drawn for this transaction, the stream its facts and extra steps draw from (so
        # that the main stream, and with it the rest of the estate, stays as it was), and the estate's supplier
        # invoices so far (a duplicate repeats one of them).
        self.silent = silent
        self.facts_rng = facts_rng or ids.rng
        self.ledger = ledger if ledger is not None else []
        # A late event in a live run cannot wait hours to be sent: its first step is back-dated instead.
        self.backdate = timedelta(0)
        if self.live and failure is not None and failure.name == "late_event":
            self.backdate = timedelta(seconds=self.rng.uniform(2 * 3600, 30 * 3600))

    # -- master data and money --

    def customer(self) -> tuple[Party, LegalEntity]:
        party = self.rng.choice(CUSTOMERS)
        return party, ENTITIES[party.entity]

    def money(self, low: float, high: float) -> Decimal:
        """Log-uniform between low and high: many small documents, a few large ones."""
        value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return Decimal(str(round(value, 2))).quantize(Decimal("0.01"))

    def message_context(self, entity: LegalEntity, amount: Decimal, **values: str) -> None:
        """What a failure message may name: the transaction's entity, money and period, and `values`."""
        occurred = self.start
        self.ctx = {
            "entity": entity.code,
            "company_code": entity.company_code,
            "currency": entity.currency,
            "amount": f"{amount:,.2f}",
            "fiscal_year": str(occurred.year),
            "period": f"{occurred.month:03d}",
            **values,
        }

    def salesforce_id(self, prefix: str) -> str:
        """An 18-character Salesforce record id with the object's key prefix (a0q: an SBQQ__Quote__c record)."""
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return prefix + "5J0000" + "".join(self.facts_rng.choice(alphabet) for _ in range(18 - len(prefix) - 6))

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        """Steps that only a silent mismatch adds draw from the facts stream, not the estate's."""
        main = self.rng
        self.rng = self.ids.rng = self.facts_rng
        try:
            yield
        finally:
            self.rng = self.ids.rng = main

    # -- steps --

    def step(
        self,
        name: str,
        system: str,
        kind: str,
        *,
        keys: dict[str, str],
        after: tuple[float, float] = (0.0, 0.0),
        parent: SimEvent | None = None,
        traced: bool = False,
        channel: str | None = None,
        data: JsonDict | None = None,
        entity: str | None = None,
        amount: Decimal | None = None,
        currency: str | None = None,
        approval: dict[str, str] | None = None,
        attributes: JsonDict | None = None,
        duration: tuple[int, int] = (40, 900),
        reviewers: tuple[str, ...] = (),
        mismatch: str | None = None,
        **context: str,
    ) -> SimEvent:
        """Emit the step's event after a gap of `after` seconds; a failure planned here is emitted first.

        `context` fills the failure message's placeholders; `reviewers` approve instead when a retry follows a
        segregation-of-duties violation; `mismatch` names the silent mismatch whose diverging fact the step carries.
        """
        if after[1] > 0:
            gap = self.rng.uniform(0.2, 1.2) if self.live else self.rng.uniform(*after)
            self.clock += timedelta(seconds=gap)
        channel = channel or SYSTEMS[system].channel
        traced = traced or channel == OTLP
        attributes = dict(attributes or {})
        links: list[dict[str, str]] = []
        fields = {"entity": entity, "amount": amount, "currency": currency}
        if self.failure is not None and self.site == (self.process, name):
            failed = self.fail(name, system, keys, parent, traced, fields, approval, {**self.ctx, **context})
            if self.rng.random() >= self.failure.retry_chance:
                self.stalled = True
                raise Stalled
            self.retried = True
            low, high = (0.5, 2.0) if self.live else self.failure.retry_after
            self.clock += timedelta(seconds=self.rng.uniform(low, high))
            attributes["retry.attempt"] = 2
            attributes["retry.of"] = failed.record["event_id"] or failed.record["span_id"]
            if approval is not None and reviewers:
                approval = {**approval, "actor": self.rng.choice([r for r in reviewers if r != approval["actor"]])}
            if failed.record["span_id"] and channel == OTLP:
                # A retry is a new span; the link ties it to the attempt that failed, as OpenTelemetry suggests.
                links = [{"trace_id": failed.record["trace_id"], "span_id": failed.record["span_id"]}]
        return self.emit(
            system=system,
            kind=kind,
            channel=channel,
            keys=keys,
            parent=parent,
            traced=traced,
            data=data,
            fields=fields,
            approval=approval,
            attributes=attributes,
            links=links,
            duration_ms=self.rng.randint(*duration),
            mismatch=mismatch,
        )

    def fail(
        self,
        name: str,
        system: str,
        keys: dict[str, str],
        parent: SimEvent | None,
        traced: bool,
        fields: dict[str, Any],
        approval: dict[str, str] | None,
        context: dict[str, str],
    ) -> SimEvent:
        failure = self.failure
        assert failure is not None
        code, status = self.rng.choice(failure.variants)
        template = failure.message
        if failure.phrasings:
            # Chosen from the transaction's keys, not the seeded random stream: adding a phrasing moves no other draw.
            pick = zlib.crc32("|".join([failure.name, *sorted(keys.values())]).encode()) % (len(failure.phrasings) + 1)
            if pick:
                code, template = failure.phrasings[pick - 1]
        expired = self.clock - timedelta(minutes=self.rng.randint(3, 240))
        context = {
            "http_status": str(status),
            "reason": HTTP_REASONS.get(status or 0, ""),
            "expired_at": iso(expired.replace(microsecond=0)),
            **context,
        }
        attributes: JsonDict = {}
        if status is not None:
            attributes["http.response.status_code"] = status
        # SAP's business events announce only what happened; its errors come from its interface monitor instead.
        channel = NATIVE if SYSTEMS[system].channel == CLOUDEVENTS else SYSTEMS[system].channel
        timeout = failure.name == "erp_timeout"
        return self.emit(
            system=system,
            kind=name,
            channel=channel,
            keys=keys,
            parent=parent,
            traced=traced,
            data=None,
            fields=fields,
            # The conflicting approval is the evidence of a SoD violation; a missing one is the failure itself.
            approval=approval if failure.name == "sod_violation" else None,
            attributes=attributes,
            links=[],
            duration_ms=30000 if timeout else self.rng.randint(20, 400),
            error={"code": code or None, "message": template.format_map(context), "type": failure.error_type},
            failure=failure.name,
        )

    def emit(
        self,
        *,
        system: str,
        kind: str,
        channel: str,
        keys: dict[str, str],
        parent: SimEvent | None,
        traced: bool,
        data: JsonDict | None,
        fields: dict[str, Any],
        approval: dict[str, str] | None,
        attributes: JsonDict,
        links: list[dict[str, str]],
        duration_ms: int,
        error: dict[str, str] | None = None,
        failure: str | None = None,
        mismatch: str | None = None,
    ) -> SimEvent:
        occurred = self.clock
        if not self.events:
            occurred -= self.backdate
        if self.live:
            # A live run lasts seconds; a 30 s timeout span would otherwise arrive after the run has ended.
            duration_ms = min(duration_ms, 1500)
        trace_id = span_id = parent_span_id = None
        if traced:
            self.trace_id = self.trace_id or self.ids.hex_id(128)
            trace_id, span_id = self.trace_id, self.ids.hex_id(64)
            parent_span_id = parent.record["span_id"] if parent is not None else None
        envelope = None
        if channel == CLOUDEVENTS:
            envelope = self.cloudevent(system, kind, occurred, data or {}, trace_id, span_id)
            record: JsonDict = {
                "event_id": None,
                "occurred_at": iso(occurred),
                "system": system,
                "kind": kind,
                "status": "ok",
                "duration_ms": None,
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": None,
                "links": [],
                "business_keys": dict(keys),
                "entity": None,
                "amount": None,
                "currency": None,
                "approval": None,
                "error": None,
                "attributes": {"data": data or {}},
            }
        else:
            amount = fields.get("amount")
            record = {
                "event_id": self.ids.uuid() if channel == NATIVE else None,
                "occurred_at": iso(occurred),
                "system": system,
                "kind": kind,
                "status": "error" if error else "ok",
                "duration_ms": duration_ms,
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": parent_span_id,
                "links": links,
                "business_keys": dict(keys),
                "entity": fields.get("entity"),
                "amount": f"{amount:.2f}" if amount is not None else None,
                "currency": fields.get("currency"),
                "approval": approval,
                "error": error,
                "attributes": attributes,
            }
        finished = occurred + timedelta(milliseconds=duration_ms if channel != CLOUDEVENTS else 0)
        latency = self.rng.uniform(0.05, 0.3) if self.live else self.rng.uniform(0.3, 6.0)
        event = SimEvent(
            record=record,
            channel=channel,
            occurred_at=occurred,
            deliver_at=finished + timedelta(seconds=latency),
            cloudevent=envelope,
            failure=failure,
            mismatch=mismatch,
        )
        self.events.append(event)
        self.clock = max(self.clock, finished)
        return event

    def cloudevent(
        self, system: str, kind: str, occurred: datetime, data: JsonDict, trace_id: str | None, span_id: str | None
    ) -> JsonDict:
        is_sap = system == "sap-s4"
        envelope: JsonDict = {
            "specversion": "1.0",
            "id": self.ids.uuid() if is_sap else self.ids.token("evt_1"),
            "source": SYSTEMS[system].cloudevents_source,
            "type": kind,
            "time": iso(occurred),
            "datacontenttype": "application/json",
            "data": data,
        }
        if trace_id and span_id:
            envelope["traceparent"] = f"00-{trace_id}-{span_id}-01"
        return envelope

    # -- delivery anomalies and the end of the window --

    def _malform(self, originals: list[SimEvent]) -> None:
        """One JSON record of the transaction as a sender mangles it; OTLP spans are typed by their protocol."""
        candidates = [i for i, e in enumerate(originals) if e.channel in ("native", "cloudevents")]
        if not candidates:
            return
        index = self.rng.choice(candidates)
        event = originals[index]
        if event.cloudevent is not None:
            # A bridge that lost the envelope's required `id` (CloudEvents 1.0: id, source, specversion, type).
            broken = {k: v for k, v in event.cloudevent.items() if k != "id"}
            self.events[index] = replace(event, cloudevent=broken, anomaly="malformed_record", malformed=True)
        else:
            # An amount formatted for people, with the German decimal comma, where a number is expected.
            amount = f"{self.rng.uniform(100, 99_999):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
            record = {**event.record, "amount": amount}
            self.events[index] = replace(event, record=record, anomaly="malformed_record", malformed=True)

    def finish(self) -> BusinessTransaction:
        kind = self.failure.name if self.failure is not None else None
        originals = list(self.events)
        if kind == "duplicate_delivery" and originals:
            # A sender that lost the acknowledgement delivers everything it sent for this transaction again.
            system = self.rng.choice(sorted({e.system for e in originals}))
            for event in (e for e in originals if e.system == system):
                later = self.rng.uniform(0.3, 1.5) if self.live else self.rng.uniform(120, 2400)
                copy = replace(
                    event,
                    deliver_at=event.deliver_at + timedelta(seconds=later),
                    anomaly=kind,
                    redelivery=True,
                )
                self.events.insert(self.events.index(event) + 1, copy)
        elif kind == "late_event" and originals and not self.live:
            index = self.rng.randrange(len(originals))
            event = originals[index]
            late = timedelta(seconds=self.rng.uniform(12 * 3600, 3 * 86400))
            room = self.end - event.deliver_at - timedelta(minutes=1)
            late = max(min(late, room), timedelta(0))
            self.events[index] = replace(event, deliver_at=event.deliver_at + late, anomaly=kind)
        elif kind == "late_event" and originals:
            self.events[0] = replace(originals[0], anomaly=kind)
        elif kind == "out_of_order" and len(originals) >= 2:
            # Overtaken by the step that follows soonest: a successor days later would make the event late as well.
            gaps = [originals[i + 1].deliver_at - originals[i].deliver_at for i in range(len(originals) - 1)]
            index = gaps.index(min(gaps))
            event, successor = originals[index], originals[index + 1]
            later = self.rng.uniform(0.3, 1.5) if self.live else self.rng.uniform(60, 2700)
            moved = replace(event, deliver_at=successor.deliver_at + timedelta(seconds=later), anomaly=kind)
            self.events[index] = moved
        elif kind == "malformed_record":
            self._malform(originals)
        end = self.end
        kept = [e for e in self.events if e.occurred_at < end and e.deliver_at <= end]
        return BusinessTransaction(
            number=self.number,
            process=self.process,
            started_at=self.start,
            failure=kind,
            events=kept,
            retried=self.retried,
            stalled=self.stalled,
        )
