"""Silent mismatches in the simulated estate: facts that disagree between systems while every system reports success.

The rates are checked against the published bands the catalogue cites, and each mismatch is found again by hand from
the facts the events carry (not from the simulator's own label), the way reconciliation rules will find them.
"""

import io
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import takewhile

import pytest
from django.core.management import CommandError, call_command

from transactions.models import Event
from transactions.simulation.builder import BusinessTransaction, SimEvent
from transactions.simulation.catalogue import (
    ENTITIES,
    ORDER_TO_CASH,
    PROCURE_TO_PAY,
    SAP_BILLING_DOCUMENT_CREATED,
    SAP_SALES_ORDER_CREATED,
    SAP_SUPPLIER_INVOICE_CREATED,
    SILENT_MISMATCH_KINDS,
)
from transactions.simulation.estate import BANK_STATEMENT_PROCESS, BILL_RUN_PROCESS, Scenario, generate

END = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
COMPANY_CODE = {e.code: e.company_code for e in ENTITIES.values()}  # the CRM legal entity -> SAP company code table


def scenario(*, seed: int = 7, days: float = 30, rate: float = 10, **kw) -> Scenario:
    return Scenario(seed=seed, start=END - timedelta(days=days), end=END, rate_per_hour=rate, **kw)


def business(plan: Scenario) -> list[BusinessTransaction]:
    """The scenario's business transactions; the bill runs and statements that follow them are not generated."""
    return list(takewhile(lambda t: t.process not in (BILL_RUN_PROCESS, BANK_STATEMENT_PROCESS), generate(plan)))


@pytest.fixture(scope="module")
def estate() -> list[BusinessTransaction]:
    # A month: procure-to-pay takes days to reach its supplier invoice, and enough of them to measure a 1% rate.
    return business(scenario())


def facts(event: SimEvent) -> dict:
    """What an event states: CloudEvents carry SAP's or Stripe's payload under `data`, the others flat attributes."""
    attributes = event.record["attributes"]
    return attributes.get("data", attributes) if event.channel == "cloudevents" else attributes


def delivered(txn: BusinessTransaction, kind: str) -> list[dict]:
    return [
        facts(e) | {"_entity": e.record["entity"]}
        for e in txn.events
        if e.record["kind"] == kind and e.record["status"] == "ok" and not e.malformed and not e.redelivery
    ]


def mismatches_from_facts(txns: list[BusinessTransaction]) -> dict[str, set[int]]:
    """Each silent mismatch found by comparing the facts of the delivered events, as a person would."""
    found: dict[str, set[int]] = defaultdict(set)
    supplier_invoices: Counter[tuple[str, str]] = Counter()
    first_seen: dict[tuple[str, str], int] = {}
    for txn in txns:
        if txn.process == ORDER_TO_CASH:
            quotes = delivered(txn, "contract.approved")
            if not quotes:
                continue
            quote = quotes[0]
            billed = delivered(txn, SAP_BILLING_DOCUMENT_CREATED) + [
                {"NETWR": z["amountWithoutTax"], "WAERK": z["currency"]} for z in delivered(txn, "invoice.posted")
            ]
            for bill in billed:
                if bill["WAERK"] != quote["CurrencyIsoCode"]:
                    found["currency_mismatch"].add(txn.number)
                elif Decimal(bill["NETWR"]) != Decimal(quote["SBQQ__NetAmount__c"]):
                    found["amount_mismatch"].add(txn.number)
            for tax in delivered(txn, "tax.calculated"):
                if tax["taxCode"] != quote["SBQQ__TaxCode__c"]:
                    found["tax_code_changed"].add(txn.number)
            expected = COMPANY_CODE.get(quote["_entity"])
            booked = [o["BUKRS_VF"] for o in delivered(txn, SAP_SALES_ORDER_CREATED)]
            booked += [b["BUKRS"] for b in delivered(txn, SAP_BILLING_DOCUMENT_CREATED)]
            if expected and any(code != expected for code in booked):
                found["entity_mismatch"].add(txn.number)
            milestones = Counter((b["FPLNR"], b["FPLTR"]) for b in delivered(txn, SAP_BILLING_DOCUMENT_CREATED))
            milestones += Counter(z["Milestone__c"] for z in delivered(txn, "invoice.posted"))
            if any(n > 1 for n in milestones.values()):
                found["duplicate_milestone_invoice"].add(txn.number)
        elif txn.process == PROCURE_TO_PAY:
            for invoice in delivered(txn, SAP_SUPPLIER_INVOICE_CREATED):
                key = (invoice["LIFNR"], invoice["XBLNR"])
                supplier_invoices[key] += 1
                if key in first_seen:
                    found["duplicate_supplier_invoice"].add(txn.number)
                first_seen.setdefault(key, txn.number)
    return found


def test_every_transaction_carries_the_facts_under_the_names_its_systems_use(estate):
    o2c = [t for t in estate if t.process == ORDER_TO_CASH]
    p2p = [t for t in estate if t.process == PROCURE_TO_PAY]
    expected_fields = {
        "contract.approved": {"SBQQ__Quote__c", "SBQQ__NetAmount__c", "CurrencyIsoCode", "SBQQ__TaxCode__c"},
        SAP_SALES_ORDER_CREATED: {"BUKRS_VF", "NETWR", "WAERK"},
        "tax.calculated": {"companyCode", "code", "currencyCode", "totalAmount", "totalTax", "taxCode"},
        "invoice.posted": {"invoiceNumber", "amountWithoutTax", "taxAmount", "currency", "taxCode", "Milestone__c"},
        SAP_BILLING_DOCUMENT_CREATED: {"BUKRS", "NETWR", "WAERK", "MWSKZ", "FPLNR", "FPLTR"},
        SAP_SUPPLIER_INVOICE_CREATED: {"BUKRS", "LIFNR", "XBLNR", "RMWWR", "WAERS", "MWSKZ"},
    }
    seen: Counter[str] = Counter()
    for txn in o2c + p2p:
        for event in txn.events:
            kind = event.record["kind"]
            if kind in expected_fields and event.record["status"] == "ok" and not event.malformed:
                assert expected_fields[kind] <= set(facts(event)), (kind, facts(event))
                seen[kind] += 1
    assert set(seen) == set(expected_fields)
    # Every quote states its legal entity and amount in the canonical fields too (what OTLP's finance.* carry).
    quotes = [e for t in o2c for e in t.events if e.record["kind"] == "contract.approved"]
    assert quotes and all(e.record["entity"] and e.record["amount"] and e.record["currency"] for e in quotes)
    # Most transactions agree: the facts are there on every one, not only on the mismatching ones.
    assert sum(1 for t in o2c if t.mismatch is None) > 0.9 * len(o2c)


def test_mismatch_rates_sit_in_the_published_bands(estate):
    invoiced = [t for t in estate if t.process == ORDER_TO_CASH and delivered(t, "invoice.posted")]
    posted = [t for t in estate if t.process == PROCURE_TO_PAY and delivered(t, SAP_SUPPLIER_INVOICE_CREATED)]
    assert len(invoiced) > 2000 and len(posted) > 1000, (len(invoiced), len(posted))
    counts = Counter(t.mismatch for t in invoiced + posted if t.mismatch)
    assert set(counts) == set(SILENT_MISMATCH_KINDS)
    # Amount and currency together: contract vs invoice disagree on 1-3% of invoices.
    amount_share = (counts["amount_mismatch"] + counts["currency_mismatch"]) / len(invoiced)
    assert 0.01 <= amount_share <= 0.03, amount_share
    # Duplicate supplier invoices: 0.1-2% of invoices.
    duplicate_share = counts["duplicate_supplier_invoice"] / len(posted)
    assert 0.001 <= duplicate_share <= 0.02, duplicate_share
    for name in ("tax_code_changed", "entity_mismatch", "duplicate_milestone_invoice"):
        share = counts[name] / len(invoiced)
        assert 0.001 <= share <= 0.02, (name, share)
    # Each kind close to its configured rate (a seeded run, so this cannot flake; within four standard deviations).
    for name, count in counts.items():
        mismatch = SILENT_MISMATCH_KINDS[name]
        base = len(invoiced) if mismatch.process == ORDER_TO_CASH else len(posted)
        expected = mismatch.rate * base
        assert abs(count - expected) <= 4 * (expected**0.5) + 2, (name, count, expected)


def test_each_labelled_mismatch_is_found_again_from_the_facts_and_no_other(estate):
    found = mismatches_from_facts(estate)
    labelled: dict[str, set[int]] = defaultdict(set)
    for txn in estate:
        if txn.mismatch:
            labelled[txn.mismatch].add(txn.number)
    for name in SILENT_MISMATCH_KINDS:
        assert found[name] == labelled[name], name
    # A duplicate supplier invoice repeats an earlier one of the same supplier: same number and same amount.
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for txn in estate:
        for invoice in delivered(txn, SAP_SUPPLIER_INVOICE_CREATED):
            by_key[(invoice["LIFNR"], invoice["XBLNR"])].append(invoice["RMWWR"])
    repeated = [amounts for amounts in by_key.values() if len(amounts) > 1]
    assert repeated and all(len(set(amounts)) == 1 for amounts in repeated)


def test_without_mismatches_the_estate_is_otherwise_the_same():
    plain = business(scenario(days=3, mismatch_scale=0))
    mixed = business(scenario(days=3, mismatch_scale=10))
    assert not any(t.mismatch for t in plain) and any(t.mismatch for t in mixed)

    def shape(txns):
        return [(t.number, t.process, t.failure, t.started_at) for t in txns]

    assert shape(plain) == shape(mixed)
    with pytest.raises(ValueError, match="mismatch scale must be between 0 and 25"):
        scenario(mismatch_scale=26)


@pytest.mark.django_db
def test_history_stores_the_facts_where_rules_read_them_and_the_summary_counts_mismatches():
    out = io.StringIO()
    call_command(
        "simulate",
        "--days",
        "2",
        "--rate",
        "6",
        "--seed",
        "3",
        "--mismatch-scale",
        "10",
        stdout=out,
        stderr=io.StringIO(),
    )
    summary = out.getvalue()
    assert "silent mismatches (every system reports success; reconciliation finds them):" in summary
    # The CRM quote travels as an OTLP span: the CPQ fields arrive as attributes, the legal entity as `entity`.
    quote = Event.objects.filter(system="salesforce-crm", kind="contract.approved").first()
    assert quote.entity and quote.attributes["SBQQ__NetAmount__c"] == f"{quote.amount:.2f}"
    assert quote.attributes["CurrencyIsoCode"] == quote.currency and quote.attributes["SBQQ__TaxCode__c"]
    billing = Event.objects.filter(kind=SAP_BILLING_DOCUMENT_CREATED).first()
    assert {"BUKRS", "NETWR", "WAERK", "MWSKZ", "FPLNR", "FPLTR"} <= set(billing.attributes["data"])
    assert Event.objects.filter(status="error").count() < Event.objects.count() / 5  # mismatches raise no error


@pytest.mark.parametrize("value", ["-1", "26", "lots"])
def test_a_bad_mismatch_scale_is_a_readable_command_error(value):
    with pytest.raises(CommandError, match="--mismatch-scale must be"):
        call_command("simulate", "--mismatch-scale", value, stdout=io.StringIO(), stderr=io.StringIO())


def test_supplier_duplicates_need_an_earlier_invoice_to_repeat():
    # The very first procure-to-pay transaction has nothing to duplicate, even if every one is drawn as a duplicate.
    txns = [t for t in business(scenario(days=4, mismatch_scale=25)) if t.process == PROCURE_TO_PAY]
    posted = [t for t in txns if delivered(t, SAP_SUPPLIER_INVOICE_CREATED)]
    assert posted and posted[0].mismatch is None
