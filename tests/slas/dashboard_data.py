"""A small, hand-countable store behind the dashboard tests: clocks, transactions, exceptions, cases and replays.

Rows are written directly (the dashboards read whatever the SLA evaluator, correlation and triage stored), at fixed
offsets before an anchor time so that every expected figure below can be counted by hand.
"""

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from exceptions.choices import CaseStatus, ReplayStatus
from exceptions.models import Case, Category, ExceptionRecord, Queue, Replay
from exceptions.reference import exceptions_reference_data_load
from slas.choices import ClockStatus
from slas.models import BusinessCalendar, SlaClock, SlaDefinition
from transactions.choices import TransactionStatus
from transactions.models import ProcessDefinition, Transaction
from transactions.reference import process_reference_data_load

OFFICE = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
_ids = itertools.count(1)


@dataclass
class Store:
    anchor: datetime
    invoice: SlaDefinition
    payment: SlaDefinition
    txns: dict[str, Transaction] = field(default_factory=dict)
    clocks: dict[str, SlaClock] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def make_txn(
    *,
    process: ProcessDefinition,
    started_at: datetime,
    last_event_at: datetime,
    status: str = TransactionStatus.COMPLETED,
    systems: list[str] | None = None,
    facts: dict[str, datetime] | None = None,
) -> Transaction:
    step_facts = {
        key: {"status": "ok", "first_at": _iso(at), "last_at": _iso(at), "count": 1}
        for key, at in (facts or {}).items()
    }
    return Transaction.objects.create(
        process=process,
        status=status,
        started_at=started_at,
        last_event_at=last_event_at,
        systems=systems or ["salesforce-crm"],
        step_facts=step_facts,
        event_count=len(step_facts) or 1,
    )


def make_clock(
    *,
    definition: SlaDefinition,
    txn: Transaction,
    status: str,
    started_at: datetime,
    closed_at: datetime | None = None,
    elapsed: int = 0,
    entity: str = "DE01",
    step: str = "",
) -> SlaClock:
    return SlaClock.objects.create(
        definition=definition,
        txn=txn,
        status=status,
        entity=entity,
        started_at=started_at,
        start_event_id=next(_ids),
        met_at=closed_at if status == ClockStatus.MET else None,
        breached_at=closed_at if status == ClockStatus.BREACHED else None,
        elapsed_seconds=elapsed,
        remaining_seconds=int(definition.target.total_seconds()) - elapsed,
        waiting_for_step=step,
        due_at=started_at + definition.target,
    )


def make_case(
    *,
    category: str,
    queue: str,
    system: str,
    first_seen: datetime,
    resolved_at: datetime | None = None,
    title: str = "",
) -> Case:
    return Case.objects.create(
        fingerprint=f"fp-{next(_ids)}",
        title=title or f"{category} on {system}",
        category=Category.objects.get(slug=category),
        system=system,
        kind="invoice.post",
        queue=Queue.objects.get(slug=queue),
        status=CaseStatus.RESOLVED if resolved_at else CaseStatus.OPEN,
        first_seen=first_seen,
        last_seen=first_seen,
        resolved_at=resolved_at,
        occurrence_count=1,
    )


def make_occurrence(*, case: Case, occurred_at: datetime, txn: Transaction | None, classified: bool = True):
    return ExceptionRecord.objects.create(
        event_id=next(_ids),
        event_received_at=occurred_at,
        txn=txn,
        case=case,
        category=case.category,
        rule=case.category.rules.first() if classified else None,
        explanation="test",
        fingerprint=case.fingerprint,
        system=case.system,
        kind=case.kind,
        occurred_at=occurred_at,
    )


def build_store(anchor: datetime) -> Store:
    """Everything happens on local days anchor-3d .. anchor; see the expected figures in the tests."""
    process_reference_data_load()
    exceptions_reference_data_load()
    o2c = ProcessDefinition.objects.get(slug="order-to-cash")
    payments = ProcessDefinition.objects.get(slug="payment-application")
    calendar = BusinessCalendar.objects.create(
        slug="de", name="Germany", time_zone="Europe/Berlin", working_hours=OFFICE
    )
    compliance = Queue.objects.get(slug="compliance")
    invoice = SlaDefinition.objects.create(
        slug="invoice-after-contract",
        name="Invoice after contract",
        process=o2c,
        start_kind="contract.approved",
        stop_kind="invoice.posted",
        target=timedelta(hours=10),
        calendar=calendar,
        breach_queue=compliance,
    )
    payment = SlaDefinition.objects.create(
        slug="payment-synced",
        name="Payment synced to ERP",
        process=payments,
        start_kind="payment.received",
        stop_kind="payment.applied",
        target=timedelta(hours=4),
        calendar=calendar,
    )
    store = Store(anchor=anchor, invoice=invoice, payment=payment)
    day = timedelta(days=1)
    a = anchor

    # Order to cash: t1 touchless, across two systems, with every milestone; t2 completed with a case; t3 in flight.
    store.txns["t1"] = make_txn(
        process=o2c,
        started_at=a - 3 * day,
        last_event_at=a - 1 * day,
        systems=["salesforce-crm", "sap-s4"],
        facts={
            "salesforce-crm|contract.approved": a - 3 * day,
            "sap-s4|invoice.posted": a - 3 * day + timedelta(hours=6),
            "bank|payment.received": a - 1 * day,
            "grc|evidence.captured": a - 3 * day + timedelta(hours=30),
        },
    )
    store.txns["t2"] = make_txn(
        process=o2c,
        started_at=a - 2 * day,
        last_event_at=a - 1 * day,
        systems=["salesforce-crm", "sap-s4"],
        facts={
            "salesforce-crm|contract.approved": a - 2 * day,
            "sap-s4|invoice.posted": a - 2 * day + timedelta(hours=12),
            "grc|evidence.captured": a - 2 * day + timedelta(hours=14),
        },
    )
    store.txns["t3"] = make_txn(
        process=o2c, started_at=a - 1 * day, last_event_at=a - 1 * day, status=TransactionStatus.IN_FLIGHT
    )
    store.txns["p1"] = make_txn(
        process=payments,
        started_at=a - 1 * day,
        last_event_at=a - 1 * day + timedelta(hours=2),
        systems=["bank"],
        facts={"bank|payment.received": a - 1 * day, "sap-s4|payment.applied": a - 1 * day + timedelta(hours=2)},
    )

    # Clocks: invoice SLA met on t1 (6 h of 10), breached on t2 and t3; payment SLA met on p1 (2 h of 4).
    store.clocks["t1"] = make_clock(
        definition=invoice,
        txn=store.txns["t1"],
        status=ClockStatus.MET,
        started_at=a - 3 * day,
        closed_at=a - 3 * day + timedelta(hours=6),
        elapsed=6 * 3600,
    )
    store.clocks["t2"] = make_clock(
        definition=invoice,
        txn=store.txns["t2"],
        status=ClockStatus.BREACHED,
        started_at=a - 2 * day,
        closed_at=a - 2 * day + timedelta(hours=10),
        elapsed=10 * 3600,
        step="Invoice posted",
    )
    store.clocks["t3"] = make_clock(
        definition=invoice,
        txn=store.txns["t3"],
        status=ClockStatus.BREACHED,
        started_at=a - 1 * day,
        closed_at=a - 1 * day + timedelta(hours=1),
        elapsed=10 * 3600,
        entity="FR01",
        step="Invoice posted",
    )
    store.clocks["p1"] = make_clock(
        definition=payment,
        txn=store.txns["p1"],
        status=ClockStatus.MET,
        started_at=a - 1 * day,
        closed_at=a - 1 * day + timedelta(hours=2),
        elapsed=2 * 3600,
    )
    store.clocks["risk"] = make_clock(
        definition=payment,
        txn=store.txns["t3"],
        status=ClockStatus.AT_RISK,
        started_at=a - timedelta(hours=3),
        elapsed=3 * 3600 + 1800,
        step="Payment applied in ERP",
    )

    # Cases: a billing case on t2 resolved after 6 h, a control case still open, one unclassified occurrence.
    store.cases["billing"] = make_case(
        category="business_rule",
        queue="billing",
        system="sap-s4",
        first_seen=a - 2 * day + timedelta(hours=2),
        resolved_at=a - 2 * day + timedelta(hours=8),
    )
    make_occurrence(case=store.cases["billing"], occurred_at=a - 2 * day + timedelta(hours=2), txn=store.txns["t2"])
    store.cases["control"] = make_case(
        category="control", queue="compliance", system="grc", first_seen=a - 1 * day, title="=HYPERLINK(1)"
    )
    make_occurrence(case=store.cases["control"], occurred_at=a - 1 * day, txn=None)
    make_occurrence(
        case=store.cases["control"], occurred_at=a - 1 * day + timedelta(hours=1), txn=None, classified=False
    )

    # Replays on the billing case: one succeeded, one failed, one still pending (not counted).
    for status in (ReplayStatus.SUCCEEDED, ReplayStatus.FAILED, ReplayStatus.PENDING):
        occurrence = make_occurrence(
            case=store.cases["billing"], occurred_at=a - 2 * day + timedelta(hours=3), txn=store.txns["t2"]
        )
        replay = Replay.objects.create(
            case=store.cases["billing"],
            occurrence=occurrence,
            status=status,
            payload={},
            target_url="https://erp.example/replay",
            requested_by="user:m",
        )
        Replay.objects.filter(pk=replay.pk).update(created_at=a - 2 * day + timedelta(hours=4))
    return store
