"""Reconciliation on stored transactions: results, data_quality cases, late events, idempotency, unique rules within
and across transactions, and the default rules read with the field names of two systems each."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from console.lib.audit import AuditEntry
from exceptions.choices import CaseStatus
from exceptions.models import Case, ExceptionRecord, ReconciliationKey, ReconciliationResult, ReconciliationRule
from exceptions.services import (
    fx_rate_create,
    reconcile_transactions,
    reconciliation_rule_create,
    reconciliation_sweep,
)
from tests.factories import T0, at, ingest, ingest_and_correlate
from transactions.models import Transaction, TransactionEvent
from transactions.services import batch_correlate

ACTOR = "u:test"
SAP_BILLING = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"
SAP_SUPPLIER_INVOICE = "sap.s4.beh.supplierinvoice.v1.SupplierInvoice.Created.v1"


def record(event_id, kind, hours=0.0, *, system="salesforce-crm", keys=None, **fields):
    base = {
        "event_id": event_id,
        "occurred_at": at(hours),
        "system": system,
        "kind": kind,
        "status": "ok",
        "business_keys": keys or {"contract": "C-1"},
        "attributes": {},
    }
    base.update(fields)
    return base


def txn_of(event_id: str) -> Transaction:
    from transactions.models import Event

    event = Event.objects.get(event_id=event_id)
    return Transaction.objects.get(pk=TransactionEvent.objects.get(event_id=event.pk).txn_id)


def amount_rule(**overrides):
    fields = {
        "name": "Contract amount vs invoice",
        "kind": "compare",
        "left_kind": "contract.approved",
        "left_path": "amount",
        "right_kind": "invoice.posted",
        "right_path": "amount",
        "comparison": "absolute",
        "tolerance": Decimal("0.01"),
        "severity": "high",
    }
    return reconciliation_rule_create(actor=ACTOR, **{**fields, **overrides})


@pytest.fixture
def o2c(source, reference):
    ReconciliationRule.objects.all().delete()  # the defaults are tested on their own below

    def run(*records):
        ingest_and_correlate(source, *records)
        txn = txn_of(records[0]["event_id"])
        return txn

    return run


def test_a_mismatch_opens_a_data_quality_case_with_both_values(o2c):
    rule = amount_rule()
    txn = o2c(
        record("c1", "contract.approved", amount="1000.00", currency="EUR", entity="DE01"),
        record("i1", "invoice.posted", 1, system="zuora-billing", amount="1000.05", currency="EUR", entity="DE01"),
    )
    counts = reconcile_transactions([txn.pk])
    assert counts["mismatched"] == 1 and counts["cases_signalled"] == 1
    result = ReconciliationResult.objects.get(rule=rule, txn=txn)
    assert (result.status, result.left_value, result.right_value) == ("mismatched", "1000", "1000.05")
    assert (result.left_system, result.right_system, result.entity) == ("salesforce-crm", "zuora-billing", "DE01")
    # |1000.00 - 1000.05| = 0.05 > 0.01: the difference is what is at stake.
    assert (result.amount_at_stake, result.currency) == (Decimal("0.05"), "EUR")
    assert result.reason == "differ by 0.05, over the tolerance 0.01"
    case = result.case
    assert case.category.slug == "data_quality" and case.status == CaseStatus.OPEN
    assert case.amount_at_stake == Decimal("0.05")
    message = ExceptionRecord.objects.get(case=case).error_message
    assert "Contract amount vs invoice (within an absolute tolerance, tolerance 0.01)" in message
    assert f"on transaction {txn.pk}" in message
    assert "salesforce-crm contract.approved amount = 1000 | zuora-billing invoice.posted amount = 1000.05" in message
    assert case.queue is not None  # routed like any case


def test_reconciling_again_changes_nothing(o2c):
    amount_rule()
    txn = o2c(
        record("c1", "contract.approved", amount="1000.00", currency="EUR"),
        record("i1", "invoice.posted", 1, amount="900.00", currency="EUR"),
    )
    reconcile_transactions([txn.pk])
    before = (
        list(ReconciliationResult.objects.values()),
        AuditEntry.objects.count(),
        list(Case.objects.values("id", "occurrence_count", "status", "version")),
    )
    counts = reconcile_transactions([txn.pk, txn.pk])
    assert counts["changed"] == 0 and counts["cases_signalled"] == 0
    after = (
        list(ReconciliationResult.objects.values()),
        AuditEntry.objects.count(),
        list(Case.objects.values("id", "occurrence_count", "status", "version")),
    )
    assert after == before


def test_a_late_correction_resolves_the_mismatch_and_its_case(o2c, source):
    amount_rule()
    txn = o2c(
        record("c1", "contract.approved", amount="1000.00", currency="EUR"),
        record("i1", "invoice.posted", 1, amount="900.00", currency="EUR"),
    )
    reconcile_transactions([txn.pk])
    case = ReconciliationResult.objects.get(txn=txn).case
    assert case.status == CaseStatus.OPEN
    # The billing system re-posts the corrected invoice a day later.
    ingest_and_correlate(source, record("i2", "invoice.posted", 25, amount="1000.00", currency="EUR"))
    counts = reconcile_transactions([txn.pk])
    assert counts["cases_resolved"] == 1
    result = ReconciliationResult.objects.get(txn=txn)
    assert (result.status, result.right_value, result.amount_at_stake) == ("matched", "1000", None)
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert "the facts agree now" in case.activities.order_by("-id").first().body


def test_a_missing_side_is_incomplete_until_the_late_event_arrives_through_correlation(
    o2c, source, django_capture_on_commit_callbacks
):
    amount_rule()
    txn = o2c(record("c1", "contract.approved", amount="1000.00", currency="EUR"))
    reconcile_transactions([txn.pk])
    result = ReconciliationResult.objects.get(txn=txn)
    assert (result.status, result.reason) == ("incomplete", "no invoice.posted event yet (right side)")
    assert result.case is None
    # The late invoice: correlation announces the transaction and the receiver reconciles it.
    batch = ingest(source, record("i1", "invoice.posted", 30, amount="1200.00", currency="EUR"))
    with django_capture_on_commit_callbacks(execute=True):
        batch_correlate(batch_id=batch.pk, now=T0 + timedelta(hours=31))
    result.refresh_from_db()
    assert (result.status, result.amount_at_stake) == ("mismatched", Decimal("200.00"))
    assert result.case is not None


def test_currency_conversion_is_refused_without_a_rate_and_applied_once_one_is_configured(o2c):
    rule = amount_rule(comparison="currency", tolerance=Decimal("0.01"), right_currency_path="currency")
    txn = o2c(
        record("c1", "contract.approved", amount="100.00", currency="EUR"),
        record("i1", "invoice.posted", 1, amount="108.50", currency="USD"),
    )
    reconcile_transactions([txn.pk])
    result = ReconciliationResult.objects.get(rule=rule, txn=txn)
    assert (result.status, result.reason) == ("error", "no FX rate EUR->USD configured for 2026-05-18")
    assert result.case is None and not Case.objects.exists()
    # 100 EUR x 1.08505 = 108.505 -> 108.51 USD; 0.01 from 108.50: at the boundary, so it matches.
    fx_rate_create(
        actor=ACTOR, base_currency="eur", quote_currency="USD", rate=Decimal("1.08505"), valid_from=date(2026, 1, 1)
    )
    assert reconciliation_sweep(since=T0 - timedelta(days=1))["matched"] == 1
    result.refresh_from_db()
    assert (result.status, result.left_value) == ("matched", "100 EUR = 108.51 USD at 1.08505")
    assert AuditEntry.objects.filter(action="fx_rate.created").count() == 1


def test_rules_of_another_process_do_not_apply(o2c):
    from transactions.models import ProcessDefinition

    amount_rule(process=ProcessDefinition.objects.get(slug="procure-to-pay"))
    txn = o2c(
        record("c1", "contract.approved", amount="1000.00", currency="EUR"),
        record("i1", "invoice.posted", 1, amount="900.00", currency="EUR"),
    )
    assert txn.process.slug == "order-to-cash"
    assert reconcile_transactions([txn.pk])["mismatched"] == 0
    assert not ReconciliationResult.objects.exists()


# ---- Unique rules ---------------------------------------------------------------------------------------------------


def supplier_invoice(event_id, po, reference, supplier="0000100012", hours=0.0, amount="500.00"):
    return record(
        event_id,
        SAP_SUPPLIER_INVOICE,
        hours,
        system="sap-s4",
        keys={"purchase_order": po},
        amount=amount,
        currency="EUR",
        attributes={"data": {"SupplierInvoiceIDByInvcgParty": reference, "InvoicingParty": supplier}},
    )


@pytest.fixture
def duplicate_rule(source, reference):
    ReconciliationRule.objects.all().delete()
    return reconciliation_rule_create(
        actor=ACTOR,
        name="Duplicate supplier invoice",
        kind="unique",
        left_kind="*supplierinvoice*.created*",
        left_path="attributes.data.SupplierInvoiceIDByInvcgParty|attributes.data.XBLNR",
        scope_path="attributes.data.InvoicingParty|attributes.data.LIFNR",
        severity="high",
    )


def test_a_duplicate_across_transactions_is_found_through_the_key_index(source, duplicate_rule):
    ingest_and_correlate(source, supplier_invoice("s1", "4500000001", "INV-77"))
    first = txn_of("s1")
    assert reconcile_transactions([first.pk])["matched"] == 1
    # A second PO (another transaction) with the same supplier reference, typed with a space and lower case.
    ingest_and_correlate(source, supplier_invoice("s2", "4500000002", " inv-77", supplier="100012", hours=48))
    second = txn_of("s2")
    assert second.pk != first.pk
    counts = reconcile_transactions([second.pk])
    # Only the new transaction was given, but the one holding the first invoice is updated too.
    assert counts["mismatched"] == 2 and counts["cases_signalled"] == 1
    results = {r.txn_id: r for r in ReconciliationResult.objects.filter(rule=duplicate_rule)}
    assert set(results) == {first.pk, second.pk}
    assert {r.subject for r in results.values()} == {"100012 / inv-77"}
    assert all(r.status == "mismatched" for r in results.values())
    assert results[second.pk].amount_at_stake == Decimal("500.00")  # the duplicate is what would be paid twice
    assert results[first.pk].amount_at_stake is None
    assert results[first.pk].case_id == results[second.pk].case_id is not None
    case = results[second.pk].case
    assert case.title == "Duplicate: Duplicate supplier invoice (100012 / inv-77)"
    assert ReconciliationKey.objects.filter(rule=duplicate_rule).count() == 2
    # Idempotent.
    assert reconcile_transactions([first.pk, second.pk])["changed"] == 0


def test_a_duplicate_within_one_transaction_and_a_third_one_grows_the_same_case(source, duplicate_rule):
    ingest_and_correlate(
        source,
        supplier_invoice("s1", "4500000001", "INV-9"),
        supplier_invoice("s2", "4500000001", "INV-9", hours=1, amount="20.00"),
    )
    txn = txn_of("s1")
    reconcile_transactions([txn.pk])
    result = ReconciliationResult.objects.get(rule=duplicate_rule, txn=txn)
    assert (result.status, result.amount_at_stake) == ("mismatched", Decimal("20.00"))
    assert result.reason.startswith("2 events hold 0000100012 / inv-9") is False  # normalised: zeros stripped
    assert result.reason.startswith("2 events hold 100012 / inv-9")
    ingest_and_correlate(source, supplier_invoice("s3", "4500000003", "INV-9", hours=3, amount="30.00"))
    reconcile_transactions([txn_of("s3").pk])
    assert Case.objects.count() == 1
    assert Case.objects.get().occurrence_count == 2


def test_the_same_reference_from_another_supplier_is_no_duplicate(source, duplicate_rule):
    ingest_and_correlate(source, supplier_invoice("s1", "4500000001", "INV-9"))
    ingest_and_correlate(source, supplier_invoice("s2", "4500000002", "INV-9", supplier="0000100099"))
    counts = reconcile_transactions([txn_of("s1").pk, txn_of("s2").pk])
    assert (counts["matched"], counts["mismatched"]) == (2, 0)


# ---- The default rules, each read with two systems' field names ----------------------------------------------------


def default_rule(name: str) -> ReconciliationRule:
    return ReconciliationRule.objects.get(name=name)


def results_by_rule(txn: Transaction) -> dict[str, ReconciliationResult]:
    return {r.rule.name: r for r in ReconciliationResult.objects.filter(txn=txn).select_related("rule")}


def o2c_events(
    prefix: str, *, sap_tables: bool, net="1000.00", company="1010", tax="SW054000", posted_tax="A1", entity="DE01"
):
    """An order-to-cash transaction: a Salesforce contract (canonical fields and CPQ's quote-line tax code
    SBQQ__TaxCode__c, or CPQ's own names), AvaTax's tax calculation (its response's `lines[0].taxCode`, or a flat
    `taxCode`) and an SAP billing document (the S/4HANA API's names, or the table fields VBRK-NETWR/WAERK, BUKRS and
    the item's MWSKZ). `tax` is an AvaTax code, `posted_tax` the SAP output tax code."""
    if sap_tables:
        contract = record(
            f"{prefix}c",
            "contract.approved",
            entity=None,
            attributes={
                "SBQQ__NetAmount__c": float(net),
                "CurrencyIsoCode": "EUR",
                "Legal_Entity__c": entity,
                "TaxCode": tax,
            },
        )
        data = {"BillingDocument": "0090000001", "NETWR": net, "WAERK": "EUR", "BUKRS": company, "MWSKZ": posted_tax}
        calculated = {"taxCode": tax}
    else:
        contract = record(
            f"{prefix}c",
            "contract.approved",
            amount=net,
            currency="EUR",
            entity=entity,
            attributes={"SBQQ__TaxCode__c": tax},
        )
        data = {
            "BillingDocument": "0090000001",
            "TotalNetAmount": net,
            "TransactionCurrency": "EUR",
            "CompanyCode": company,
            "TaxCode": posted_tax,
        }
        calculated = {"code": "90000001", "lines": [{"lineNumber": "1", "taxCode": tax}]}
    billing = record(f"{prefix}b", SAP_BILLING, 2, system="sap-s4", attributes={"data": data})
    tax_event = record(f"{prefix}t", "tax.calculated", 1, system="avalara-tax", attributes=calculated)
    return [contract, tax_event, billing]


O2C_COMPARE_DEFAULTS = (
    "Contract amount vs invoice net amount",
    "Tax code at quote vs tax engine",
    "Tax code at quote vs ERP tax code posted",
    "CRM legal entity vs ERP company code",
)


@pytest.mark.parametrize("sap_tables", [False, True], ids=["api-names", "table-names"])
def test_the_order_to_cash_defaults_agree_on_a_clean_transaction(source, reference, sap_tables):
    ingest_and_correlate(source, *o2c_events("a", sap_tables=sap_tables))
    txn = txn_of("ac")
    assert txn.process.slug == "order-to-cash"
    reconcile_transactions([txn.pk])
    found = results_by_rule(txn)
    assert {name: r.status for name, r in found.items()} == dict.fromkeys(O2C_COMPARE_DEFAULTS, "matched")
    assert found["CRM legal entity vs ERP company code"].left_value == "DE01 -> 1010"
    # AvaTax's SaaS code and SAP's output VAT code are different lists: the mapping translates.
    assert found["Tax code at quote vs ERP tax code posted"].left_value == "SW054000 -> A1"
    assert not Case.objects.filter(category__slug="data_quality").exists()


@pytest.mark.parametrize("sap_tables", [False, True], ids=["api-names", "table-names"])
def test_the_order_to_cash_defaults_find_silent_mismatches(source, reference, sap_tables):
    # Net 1000.00 vs 1100.00, company code 1710 (US) for a German contract, AvaTax fell back to P0000000 and SAP
    # posted US sales tax (O1) where the quote's code maps to output VAT (A1).
    events = o2c_events("m", sap_tables=sap_tables, company="1710", tax="SW054000", posted_tax="O1")
    events[2]["attributes"]["data"]["NETWR" if sap_tables else "TotalNetAmount"] = "1100.00"
    if sap_tables:
        events[1]["attributes"]["taxCode"] = "P0000000"
    else:
        events[1]["attributes"]["lines"][0]["taxCode"] = "P0000000"
    ingest_and_correlate(source, *events)
    txn = txn_of("mc")
    reconcile_transactions([txn.pk])
    found = results_by_rule(txn)
    assert {name: r.status for name, r in found.items()} == dict.fromkeys(O2C_COMPARE_DEFAULTS, "mismatched")
    amount = found["Contract amount vs invoice net amount"]
    assert (amount.status, amount.amount_at_stake, amount.currency) == ("mismatched", Decimal("100.00"), "EUR")
    engine = found["Tax code at quote vs tax engine"]
    assert (engine.left_value, engine.right_value) == ("SW054000", "P0000000")
    posted = found["Tax code at quote vs ERP tax code posted"]
    assert (posted.left_value, posted.right_value) == ("SW054000 -> A1", "O1")
    entity = found["CRM legal entity vs ERP company code"]
    assert (entity.status, entity.left_value, entity.right_value) == ("mismatched", "DE01 -> 1010", "1710")
    assert Case.objects.filter(category__slug="data_quality", status=CaseStatus.OPEN).count() == 4


def test_an_unmapped_legal_entity_or_tax_code_is_an_error_to_configure_not_a_case(source, reference):
    ingest_and_correlate(source, *o2c_events("u", sap_tables=False, entity="AT01", tax="SW999999"))
    txn = txn_of("uc")
    reconcile_transactions([txn.pk])
    found = results_by_rule(txn)
    entity = found["CRM legal entity vs ERP company code"]
    assert (entity.status, entity.reason) == (
        "error",
        "'AT01' has no entry in the mapping 'CRM legal entity -> ERP company code'",
    )
    posted = found["Tax code at quote vs ERP tax code posted"]
    assert (posted.status, posted.reason) == (
        "error",
        "'SW999999' has no entry in the mapping 'AvaTax tax code -> SAP tax code'",
    )
    assert not Case.objects.filter(category__slug="data_quality").exists()


@pytest.mark.parametrize(
    ("field", "booked", "status"),
    [("BUKRS_VF", "1010", "matched"), ("BUKRS_VF", "1710", "mismatched"), ("CompanyCode", "1710", "mismatched")],
)
def test_the_entity_default_reads_the_sales_orders_company_code_to_be_billed(source, reference, field, booked, status):
    # Before any billing document: the S/4HANA sales order's business event carries VBAK-BUKRS_VF.
    contract = record("sc", "contract.approved", amount="10.00", currency="EUR", entity="DE01")
    order = record(
        "so",
        "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
        1,
        system="sap-s4",
        keys={"contract": "C-1", "order": "0000000001"},
        attributes={"data": {"SalesOrder": "0000000001", field: booked}},
    )
    ingest_and_correlate(source, contract, order)
    txn = txn_of("sc")
    reconcile_transactions([txn.pk])
    entity = results_by_rule(txn)["CRM legal entity vs ERP company code"]
    assert (entity.status, entity.right_value) == (status, booked)


@pytest.mark.parametrize(
    "attributes",
    [
        lambda ref, supplier: {"data": {"SupplierInvoiceIDByInvcgParty": ref, "InvoicingParty": supplier}},
        lambda ref, supplier: {"data": {"XBLNR": ref, "LIFNR": supplier}},
        lambda ref, supplier: {"invoice-number": ref, "supplier": {"number": supplier}},  # Coupa
    ],
    ids=["s4-api", "sap-tables", "coupa"],
)
def test_the_duplicate_supplier_invoice_default(source, reference, attributes):
    kind = "supplier_invoice.posted"
    for n, po in enumerate(("4500000001", "4500000002")):
        ingest_and_correlate(
            source,
            record(f"po{n}", "purchase_order.created", n, system="sap-s4", keys={"purchase_order": po}),
            record(
                f"si{n}",
                kind,
                n + 1,
                system="sap-s4",
                keys={"purchase_order": po, "supplier_invoice": f"51056{n}"},
                amount="700.00",
                currency="EUR",
                attributes=attributes("INV-2026-0042", "0000100012"),
            ),
        )
    first, second = txn_of("si0"), txn_of("si1")
    assert first.pk != second.pk and second.process.slug == "procure-to-pay"
    reconcile_transactions([first.pk, second.pk])
    rule = default_rule("Duplicate supplier invoice")
    results = ReconciliationResult.objects.filter(rule=rule)
    assert sorted(r.status for r in results) == ["mismatched", "mismatched"]
    assert {r.subject for r in results} == {"100012 / inv-2026-0042"}


@pytest.mark.parametrize(
    "milestone",
    [{"Milestone__c": "M2"}, {"Milestone__c": "M2", "milestone": "M9"}, {"billing.milestone": "M2"}],
    ids=["zuora-custom-field", "custom-field-first", "dotted"],
)
def test_one_invoice_per_contract_milestone_default(source, reference, milestone):
    contract = record("k1", "contract.approved", amount="1000.00", currency="EUR")
    invoices = [
        record(
            f"inv{n}",
            "invoice.posted",
            n + 1,
            system="zuora-billing",
            amount="500.00",
            currency="EUR",
            attributes=milestone,
        )
        for n in range(2)
    ]
    ingest_and_correlate(source, contract, *invoices)
    txn = txn_of("k1")
    reconcile_transactions([txn.pk])
    result = results_by_rule(txn)["One invoice per contract milestone"]
    assert (result.status, result.subject, result.amount_at_stake) == ("mismatched", "c-1 / m2", Decimal("500.00"))


def test_defaults_load_once_and_are_not_brought_back(reference):
    from exceptions.reference import reconciliation_reference_data_load

    assert ReconciliationRule.objects.count() == 6
    ReconciliationRule.objects.filter(name="Tax code at quote vs tax engine").delete()
    assert reconciliation_reference_data_load() == {"value_mappings": 0, "reconciliation_rules": 0}
    assert ReconciliationRule.objects.count() == 5


def test_a_merge_moves_the_verdict_to_the_survivor(o2c, source):
    amount_rule()
    first = o2c(record("c1", "contract.approved", amount="1000.00", currency="EUR"))
    ingest_and_correlate(
        source, record("i1", "invoice.posted", 1, keys={"invoice": "I-1"}, amount="900.00", currency="EUR")
    )
    second = txn_of("i1")
    assert first.pk != second.pk
    reconcile_transactions([first.pk, second.pk])
    assert set(ReconciliationResult.objects.values_list("status", flat=True)) == {"incomplete"}
    # The order links the contract and the invoice: the two transactions merge.
    ingest_and_correlate(source, record("o1", "order.created", 2, keys={"contract": "C-1", "invoice": "I-1"}))
    survivor = txn_of("o1")
    absorbed = ({first.pk, second.pk} - {survivor.pk}).pop()
    counts = reconcile_transactions([absorbed])  # announced with the absorbed id: the survivor is evaluated
    assert counts["transactions"] == 1
    assert not ReconciliationResult.objects.filter(txn_id=absorbed).exists()
    result = ReconciliationResult.objects.get(txn=survivor)
    assert (result.status, result.amount_at_stake) == ("mismatched", Decimal("100.00"))


def test_changing_what_a_unique_rule_reads_drops_its_keys(source, duplicate_rule):
    from exceptions.services import reconciliation_rule_update

    ingest_and_correlate(source, supplier_invoice("s1", "4500000001", "INV-1"))
    reconcile_transactions([txn_of("s1").pk])
    assert ReconciliationKey.objects.filter(rule=duplicate_rule).count() == 1
    fields = {
        name: getattr(duplicate_rule, name)
        for name in ("name", "kind", "left_kind", "left_path", "scope_path", "severity", "position")
    }
    reconciliation_rule_update(rule=duplicate_rule, actor=ACTOR, **{**fields, "severity": "low"})
    assert ReconciliationKey.objects.filter(rule=duplicate_rule).count() == 1  # the severity reads nothing
    reconciliation_rule_update(rule=duplicate_rule, actor=ACTOR, **{**fields, "scope_path": ""})
    assert not ReconciliationKey.objects.filter(rule=duplicate_rule).exists()
    reconcile_transactions([txn_of("s1").pk])
    assert list(ReconciliationKey.objects.values_list("value", flat=True)) == ["inv-1"]
    assert list(ReconciliationResult.objects.values_list("subject", flat=True)) == ["inv-1"]  # the old one is gone


def test_the_preview_of_a_unique_rule_finds_duplicates_among_recent_transactions(source, duplicate_rule):
    from django.utils import timezone

    from exceptions.selectors import reconciliation_rule_preview

    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    for n, po in enumerate(("4500000001", "4500000002", "4500000003")):
        invoice = supplier_invoice(f"s{n}", po, "INV-5" if n < 2 else "INV-6")
        ingest_and_correlate(source, {**invoice, "occurred_at": yesterday}, now=timezone.now())
    preview = reconciliation_rule_preview(rule=duplicate_rule, now=timezone.now())
    assert (preview.scanned, preview.counts["mismatched"], preview.counts["matched"]) == (3, 2, 1)
    assert {r.left_value for r in preview.rows if r.status == "mismatched"} == {"100012 / inv-5"}
    assert not ReconciliationResult.objects.exists() and not ReconciliationKey.objects.exists()


def test_the_figures_the_page_and_the_roi_read(o2c, source):
    from exceptions.selectors import (
        reconciled_transaction_count,
        reconciliation_match_rates,
        reconciliation_open_mismatches,
    )

    rule = amount_rule()
    good = o2c(
        record("c1", "contract.approved", amount="100.00", currency="EUR", entity="DE01"),
        record("i1", "invoice.posted", 1, system="zuora-billing", amount="100.00", currency="EUR", entity="DE01"),
    )
    ingest_and_correlate(
        source,
        record("c2", "contract.approved", 2, keys={"contract": "C-2"}, amount="100.00", currency="EUR", entity="US01"),
        record(
            "i2",
            "invoice.posted",
            3,
            system="zuora-billing",
            keys={"contract": "C-2"},
            amount="75.00",
            currency="EUR",
            entity="US01",
        ),
    )
    bad = txn_of("c2")
    reconcile_transactions([good.pk, bad.pk])
    (by_rule,) = reconciliation_match_rates(by="rule")
    assert (by_rule["rule_id"], by_rule["matched"], by_rule["mismatched"]) == (rule.pk, 1, 1)
    assert (by_rule["match_rate"], by_rule["amount_at_stake"]) == (0.5, Decimal("25.00"))
    (pair,) = reconciliation_match_rates(by="system_pair")
    assert (pair["left_system"], pair["right_system"], pair["total"]) == ("salesforce-crm", "zuora-billing", 2)
    entities = {row["entity"]: row["match_rate"] for row in reconciliation_match_rates(by="entity")}
    assert entities == {"DE01": 1.0, "US01": 0.0}
    assert sum(row["total"] for row in reconciliation_match_rates(by="week")) == 2
    assert [r.txn_id for r in reconciliation_open_mismatches()] == [bad.pk]
    assert reconciled_transaction_count() == 1
    assert reconciled_transaction_count(since=T0 + timedelta(hours=2)) == 0
