"""A small reconciled estate for the reconciliation page's tests (HTTP and browser): two compare rules and a unique
rule over order-to-cash transactions of two entities, in the last weeks, with hand-counted verdicts."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from exceptions.models import ReconciliationRule
from exceptions.services import reconcile_transactions, reconciliation_rule_create
from tests.factories import ingest_and_correlate
from transactions.models import Event, TransactionEvent
from transactions.services import ingest_source_create

ACTOR = "u:test"
SAP_BILLING = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"


@dataclass
class Store:
    txns: dict[str, int]  # name -> transaction id
    amount_rule: ReconciliationRule
    entity_rule: ReconciliationRule
    duplicate_rule: ReconciliationRule


def _record(event_id: str, kind: str, moment: datetime, *, system: str, contract: str, **fields) -> dict:
    return {
        "event_id": event_id,
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        "system": system,
        "kind": kind,
        "status": "ok",
        "business_keys": {"contract": contract},
        "attributes": {},
        **fields,
    }


def build_store(*, days_ago: float = 10) -> Store:
    """Five contracts: a (DE01, agrees), b (DE01, invoiced 50.00 more), c (US01, agrees), d (US01, booked in the
    wrong company code and its invoice number repeats c's), e (no entity, invoice not arrived yet)."""
    ReconciliationRule.objects.all().delete()
    source = ingest_source_create(name="recon-page", actor=ACTOR)
    amount_rule = reconciliation_rule_create(
        actor=ACTOR,
        name="Contract amount vs invoice",
        kind="compare",
        position=10,
        left_system="salesforce-crm",
        left_kind="contract.approved",
        left_path="amount",
        right_system="zuora-billing",
        right_kind="invoice.posted",
        right_path="amount",
        comparison="absolute",
        tolerance=Decimal("0.01"),
        severity="high",
    )
    entity_rule = reconciliation_rule_create(
        actor=ACTOR,
        name="CRM entity vs company code",
        kind="compare",
        position=20,
        left_system="salesforce-crm",
        left_kind="contract.approved",
        left_path="entity",
        right_system="sap-s4",
        right_kind=SAP_BILLING,
        right_path="attributes.BUKRS",
        comparison="equal",
        severity="medium",
    )
    duplicate_rule = reconciliation_rule_create(
        actor=ACTOR,
        name="Invoice number once",
        kind="unique",
        position=30,
        left_system="zuora-billing",
        left_kind="invoice.posted",
        left_path="attributes.invoiceNumber",
        severity="high",
    )
    start = timezone.now() - timedelta(days=days_ago)
    plan = {
        # name: entity, contract amount, invoiced amount (None: not yet), SAP company code (as the entity: agrees)
        "a": ("DE01", "1000.00", "1000.00", "DE01", "INV-1"),
        "b": ("DE01", "2000.00", "2050.00", "DE01", "INV-2"),
        "c": ("US01", "500.00", "500.00", "US01", "INV-3"),
        "d": ("US01", "700.00", "700.00", "DE01", "INV-3"),
        "e": (None, "300.00", None, None, None),
    }
    txns: dict[str, int] = {}
    for n, (name, (entity, amount, invoiced, booked, number)) in enumerate(plan.items()):
        moment = start + timedelta(hours=n)
        contract = f"C-PAGE-{name}"
        records = [
            _record(
                f"{name}-c",
                "contract.approved",
                moment,
                system="salesforce-crm",
                contract=contract,
                amount=amount,
                currency="EUR",
                **({"entity": entity} if entity else {}),
            )
        ]
        if invoiced is not None:
            records.append(
                _record(
                    f"{name}-i",
                    "invoice.posted",
                    moment + timedelta(minutes=5),
                    system="zuora-billing",
                    contract=contract,
                    amount=invoiced,
                    currency="EUR",
                    attributes={"invoiceNumber": number},
                    **({"entity": entity} if entity else {}),
                )
            )
            records.append(
                _record(
                    f"{name}-b",
                    SAP_BILLING,
                    moment + timedelta(minutes=6),
                    system="sap-s4",
                    contract=contract,
                    attributes={"BUKRS": booked},
                )
            )
        ingest_and_correlate(source, *records, now=moment + timedelta(hours=1))
        event = Event.objects.get(event_id=f"{name}-c")
        txns[name] = TransactionEvent.objects.get(event_id=event.pk).txn_id
    reconcile_transactions(sorted(txns.values()))
    return Store(txns=txns, amount_rule=amount_rule, entity_rule=entity_rule, duplicate_rule=duplicate_rule)
