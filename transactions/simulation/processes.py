"""The business processes of the simulated estate, step by step, with the keys that tie their steps together
(order to cash, the largest, in its own module).

Pure module. Steps of one transaction share business keys (contract, order, invoice...) as each system writes them:
SAP pads document numbers with zeros (0000012345) where the CRM and billing write 12345.
"""

from collections.abc import Callable
from decimal import Decimal

from transactions.simulation.builder import DAY, HOUR, TxnBuilder
from transactions.simulation.catalogue import (
    AP_CLERKS,
    CLOSE_EVIDENCE,
    CONTROLLERS,
    CONTROLS,
    CUSTOMER_MASTER_SYNC,
    CUSTOMERS,
    ENTITIES,
    LEGAL_FORMS,
    NAME_STEMS,
    NAME_TRADES,
    NATIVE,
    ORDER_TO_CASH,
    PAYMENT_APPLICATION,
    PROCURE_TO_PAY,
    S4_API,
    SAP_BANK_STATEMENT_CREATED,
    SAP_BUSINESS_PARTNER_CREATED,
    SAP_GOODS_RECEIPT_CREATED,
    SAP_JOURNAL_ENTRY_CREATED,
    SAP_PURCHASE_ORDER_CREATED,
    SAP_SUPPLIER_INVOICE_CREATED,
    SUPPLIERS,
    TREASURY,
    Party,
)
from transactions.simulation.mismatches import duplicate_supplier_invoice
from transactions.simulation.order_to_cash import order_to_cash

# Supplier invoices a duplicate may repeat: the estate's most recent ones (a duplicate arrives weeks, not years, later).
LEDGER_SIZE = 500


def _procure_to_pay(t: TxnBuilder) -> None:
    ids = t.ids
    supplier = t.rng.choice(SUPPLIERS)
    amount = t.money(400, 150_000)
    po = ids.next_number("purchase_order", 4_500_000_000)
    receipt = ids.next_number("material_document", 5_000_000_000)
    invoice = ids.next_number("supplier_invoice", 5_105_600_000)
    payment = ids.next_number("payment", 1_500_000_000)
    # A supplier numbers its invoices in sequence: a random number per invoice repeated one now and then (a birthday
    # collision), which reconciliation rightly reported as a duplicate. Still drawn, so that the stream stays as it was.
    t.rng.randint(10_000, 99_999)
    reference = f"INV-{ids.next_number(f'supplier_invoice_reference:{supplier.erp}', 10_000)}"
    clerk = t.rng.choice(AP_CLERKS)
    approver = clerk if t.failure is not None and t.failure.name == "sod_violation" else t.rng.choice(TREASURY)
    duplicate = None
    earlier = duplicate_supplier_invoice(t.silent, t.ledger, t.facts_rng)
    if earlier is not None:
        supplier, reference, amount = earlier
        duplicate = "duplicate_supplier_invoice"
    entity = ENTITIES[supplier.entity]
    t.message_context(
        entity,
        amount,
        supplier_erp=supplier.erp,
        supplier_ref=reference,
        duplicate_of=str(invoice - t.rng.randint(5, 900)),
        user=clerk,
        sod_rule="AP-02",
        sod_rule_name="enter supplier invoice / release payment",
    )
    money = {"entity": entity.code, "amount": amount, "currency": entity.currency}
    t.step(
        "purchase_order.create",
        "sap-s4",
        SAP_PURCHASE_ORDER_CREATED,
        keys={"purchase_order": str(po), "supplier": supplier.erp},
        # EKKO/EKPO as SAP names them: company code, supplier, currency, net order value.
        data={
            "PurchaseOrder": str(po),
            "PurchaseOrderType": "NB",
            "Supplier": supplier.erp,
            "BUKRS": entity.company_code,
            "LIFNR": supplier.erp,
            "WAERS": entity.currency,
            "NETWR": f"{amount:.2f}",
        },
    )
    t.step(
        "goods_receipt.post",
        "sap-s4",
        SAP_GOODS_RECEIPT_CREATED,
        keys={"goods_receipt": str(receipt), "purchase_order": str(po)},
        after=(DAY, 5 * DAY),
        data={
            "MaterialDocument": str(receipt),
            "MaterialDocumentYear": str(t.clock.year),
            "GoodsMovementType": "101",
            "PurchaseOrder": str(po),
        },
    )
    sync = t.step(
        "supplier_invoice.sync",
        "mulesoft-ipaas",
        "supplier_invoice.sync",
        keys={"purchase_order": str(po), "supplier": supplier.crm},
        after=(2 * HOUR, 3 * DAY),
        attributes={"mule.app": "p2p-einvoice-papi", "einvoice.network": "Peppol", "einvoice.reference": reference},
        duration=(200, 3000),
        document=f"supplier invoice {reference} for PO {po}",
        method="POST",
        endpoint=f"{S4_API}/API_SUPPLIERINVOICE_PROCESS_SRV/A_SupplierInvoice",
        field="SupplierInvoice.DocumentCurrency",
        script="p2p-einvoice-papi/ubl-to-s4.dwl",
        **money,
    )
    t.step(
        "supplier_invoice.post",
        "sap-s4",
        SAP_SUPPLIER_INVOICE_CREATED,
        keys={"supplier_invoice": str(invoice), "purchase_order": str(po)},
        after=(1, 30),
        parent=sync,
        traced=True,
        # RBKP as SAP names it: company code, invoicing party (supplier), its invoice number (reference), gross
        # amount, currency and the input tax code.
        data={
            "SupplierInvoice": str(invoice),
            "FiscalYear": str(t.clock.year),
            "PurchaseOrder": str(po),
            "BUKRS": entity.company_code,
            "LIFNR": supplier.erp,
            "XBLNR": reference,
            "RMWWR": f"{amount:.2f}",
            "WAERS": entity.currency,
            "MWSKZ": "V1",
        },
        mismatch=duplicate,
        **money,
    )
    if duplicate is None:
        t.ledger.append({"supplier": supplier, "reference": reference, "amount": amount})
        del t.ledger[:-LEDGER_SIZE]
    t.step(
        "payment.release",
        "sap-s4",
        "payment.released",
        channel=NATIVE,
        keys={"supplier_invoice": str(invoice), "payment": str(payment)},
        after=(DAY, 4 * DAY),
        approval={"actor": approver, "decision": "approved", "step": "ap-payment-release"},
        attributes={"sap.payment_run": f"F110-{t.clock:%Y%m%d}-01", "prepared_by": clerk},
        reviewers=TREASURY,
        document=f"payment of supplier invoice {invoice}",
        **money,
    )
    t.step(
        "payment.execute",
        "sap-s4",
        "payment.executed",
        channel=NATIVE,
        keys={"supplier_invoice": str(invoice), "payment": str(payment)},
        after=(60, 3 * HOUR),
        attributes={"sap.payment_run": f"F110-{t.clock:%Y%m%d}-01", "sap.payment_method": "T"},
        **money,
    )


def _customer_master_sync(t: TxnBuilder) -> None:
    entity = ENTITIES[t.rng.choice(sorted(ENTITIES))]
    name = f"{t.rng.choice(NAME_STEMS)} {t.rng.choice(NAME_TRADES)} {LEGAL_FORMS[entity.code]}"
    party = Party(t.ids.next_number("customer", 200_000), name, entity.code)
    t.message_context(entity, Decimal(0), customer_name=party.name, customer_erp=party.erp, oauth_client="MULE_S4_CMS")
    crm = t.step(
        "account.create",
        "salesforce-crm",
        "account.created",
        keys={"customer": party.crm},
        entity=entity.code,
        attributes={"sf.account_type": "Customer", "region": entity.region},
    )
    sync = t.step(
        "customer.replicate",
        "mulesoft-ipaas",
        "customer.replicated",
        keys={"customer": party.crm},
        after=(2, 120),
        parent=crm,
        entity=entity.code,
        attributes={"mule.app": "cms-customer-sapi", "http.request.method": "POST"},
        duration=(100, 1500),
        document=f"business partner {party.erp} ({party.name})",
        method="POST",
        endpoint=f"{S4_API}/API_BUSINESS_PARTNER/A_BusinessPartner",
        field="BusinessPartner.to_BusinessPartnerTax.BPTaxNumber",
        script="cms-customer-sapi/account-to-bp.dwl",
    )
    t.step(
        "business_partner.create",
        "sap-s4",
        SAP_BUSINESS_PARTNER_CREATED,
        keys={"customer": party.erp},
        after=(1, 20),
        parent=sync,
        traced=True,
        data={"BusinessPartner": party.erp, "BusinessPartnerCategory": "2"},
    )


def _payment_application(t: TxnBuilder) -> None:
    ids = t.ids
    party, entity = t.customer()
    amount = t.money(500, 250_000)
    invoice = ids.next_number("open_invoice", 95_000_000)
    journal = ids.next_number("incoming_payment", 1_400_000_000)
    payment = ids.token("pi_3")
    retry_after = str(t.rng.choice((5, 30, 60)))
    t.message_context(entity, amount, customer_name=party.name, tenant="10023", retry_after=retry_after)
    money = {"entity": entity.code, "amount": amount, "currency": entity.currency}
    t.step(
        "payment.capture",
        "stripe-payments",
        "payment_intent.succeeded",
        keys={"payment": payment, "invoice": str(invoice)},
        data={
            "object": {
                "id": payment,
                "object": "payment_intent",
                "amount": int(amount * 100),
                "currency": entity.currency.lower(),
                "status": "succeeded",
                "metadata": {"invoice_number": str(invoice), "sap_company_code": entity.company_code},
            }
        },
    )
    sync = t.step(
        "payment.sync",
        "mulesoft-ipaas",
        "payment.sync",
        keys={"payment": payment, "invoice": str(invoice)},
        after=(30, 30 * 60),
        attributes={"mule.app": "cash-app-papi", "http.request.method": "POST", "http.response.status_code": 201},
        duration=(150, 2500),
        document=f"payment {payment} for invoice {invoice}",
        method="POST",
        endpoint=f"{S4_API}/API_JOURNALENTRY_SRV/JournalEntryBulkCreateRequest",
        **money,
    )
    # SAP announces no business event for a cleared item; its cash application reports through the native API.
    t.step(
        "payment.apply",
        "sap-s4",
        "payment.applied",
        channel=NATIVE,
        keys={"journal": str(journal), "invoice": f"{invoice:010d}", "payment": payment},
        after=(1, 30),
        parent=sync,
        traced=True,
        attributes={"sap.document_type": "DZ", "sap.company_code": entity.company_code},
        document=f"incoming payment for invoice {invoice:010d}",
        **money,
    )
    t.step(
        "invoice.clear",
        "zuora-billing",
        "invoice.cleared",
        keys={"invoice": str(invoice), "payment": payment},
        after=(60, 2 * HOUR),
        document=f"invoice {invoice}",
        **money,
    )


def _close_evidence(t: TxnBuilder) -> None:
    ids = t.ids
    entity = ENTITIES[t.rng.choice(sorted(ENTITIES))]
    amount = t.money(2_000, 900_000)
    journal = ids.next_number("journal", 100_000_000)
    evidence = f"EV-{t.start.year}-{ids.next_number('evidence', 100_000)}"
    control, control_name = t.rng.choice(CONTROLS)
    preparer = t.rng.choice(CONTROLLERS)
    sod = t.failure is not None and t.failure.name == "sod_violation"
    approver = preparer if sod else t.rng.choice([c for c in CONTROLLERS if c != preparer])
    t.message_context(
        entity,
        amount,
        control=control,
        checksum=ids.hex_id(64),
        user=preparer,
        sod_rule="R2R-05",
        sod_rule_name="prepare / approve control evidence",
        approval_step="controller-review",
        threshold="250,000.00",
        blocked="control evidence stays unreviewed",
    )
    money = {"entity": entity.code, "amount": amount, "currency": entity.currency}
    t.step(
        "journal.post",
        "sap-s4",
        SAP_JOURNAL_ENTRY_CREATED,
        keys={"journal": f"{journal:010d}"},
        data={
            "JournalEntry": f"{journal:010d}",
            "AccountingDocumentType": "SA",
            "CompanyCode": entity.company_code,
            "FiscalYear": str(t.clock.year),
        },
        document=f"accrual journal entry {journal:010d}",
        **money,
    )
    t.step(
        "evidence.capture",
        "compliance-vault",
        "evidence.captured",
        keys={"journal": str(journal), "evidence": evidence},
        after=(10 * 60, 8 * HOUR),
        attributes={"control": control, "control.name": control_name, "prepared_by": preparer},
        document=f"journal entry {journal}",
        **money,
    )
    t.step(
        "evidence.approve",
        "compliance-vault",
        "evidence.approved",
        keys={"journal": str(journal), "evidence": evidence},
        after=(HOUR, 36 * HOUR),
        approval={"actor": approver, "decision": "approved", "step": "controller-review"},
        attributes={"control": control, "prepared_by": preparer},
        reviewers=CONTROLLERS,
        document=f"evidence {evidence} of journal entry {journal}",
        **money,
    )


# ---- Scheduled traffic: what arrives by the clock rather than per business transaction -------------------------------


def bill_run_invoice(t: TxnBuilder, *, bill_run: str) -> None:
    """One invoice of Zuora's morning bill run for the German entity's subscriptions (renewals and usage)."""
    entity = ENTITIES["DE01"]
    party = t.rng.choice([c for c in CUSTOMERS if c.entity == entity.code])
    invoice = t.ids.next_number("bill_run_invoice", 70_000_000)
    gross = t.money(40, 9_000)
    net = (gross / (1 + entity.tax_rate)).quantize(Decimal("0.01"))
    t.step(
        "invoice.post",
        "zuora-billing",
        "invoice.posted",
        keys={"invoice": str(invoice), "customer": party.crm},
        after=(1, 25),
        attributes={
            "zuora.bill_run": bill_run,
            "zuora.invoice_date": t.clock.date().isoformat(),
            "invoiceNumber": str(invoice),
            "amountWithoutTax": f"{net:.2f}",
            "taxAmount": f"{gross - net:.2f}",
            "currency": entity.currency,
            "taxCode": entity.tax_code,
        },
        document=f"invoice {invoice}",
        entity=entity.code,
        amount=gross,
        currency=entity.currency,
    )


def bank_statement(t: TxnBuilder) -> None:
    """The house bank's nightly camt.053 statement for the German entity, imported into SAP."""
    entity = ENTITIES["DE01"]
    statement = f"{t.start:%Y%m%d}-{t.ids.next_number('bank_statement', 100)}"
    t.step(
        "bank_statement.import",
        "sap-s4",
        SAP_BANK_STATEMENT_CREATED,
        keys={"bank_statement": statement},
        data={"BankStatement": statement, "CompanyCode": entity.company_code, "StatementFormat": "camt.053"},
        document=f"bank statement {statement}",
        entity=entity.code,
    )


PROCESS_STEPS: dict[str, Callable[[TxnBuilder], None]] = {
    ORDER_TO_CASH: order_to_cash,
    PROCURE_TO_PAY: _procure_to_pay,
    CUSTOMER_MASTER_SYNC: _customer_master_sync,
    PAYMENT_APPLICATION: _payment_application,
    CLOSE_EVIDENCE: _close_evidence,
}
