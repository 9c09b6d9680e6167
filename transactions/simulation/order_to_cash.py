"""Order to cash, step by step: the estate's main process, and the one most silent mismatches live in.

Pure module, as the other processes (`transactions.simulation.processes`).
"""

from dataclasses import replace
from decimal import Decimal

from transactions.simulation.builder import DAY, HOUR, TxnBuilder
from transactions.simulation.catalogue import (
    DEAL_DESK,
    S4_API,
    SAP_BILLING_DOCUMENT_CREATED,
    SAP_SALES_ORDER_CREATED,
    UNMAPPED_ENTITIES,
    LegalEntity,
    Party,
)
from transactions.simulation.mismatches import billed_facts


def order_to_cash(t: TxnBuilder) -> None:
    """Contract approved in the CRM, sales order in SAP, one milestone of its billing plan billed, tax calculated,
    invoice posted, paid through Stripe, evidence of the approval captured."""
    ids = t.ids
    party, entity = t.customer()
    if t.failure is not None and t.failure.name == "missing_legal_entity_mapping":
        entity = replace(entity, code=t.rng.choice(UNMAPPED_ENTITIES))
    amount = (t.money(4_000, 600_000) / 100).quantize(Decimal(1)) * 100  # deals are priced in hundreds
    unapproved = t.failure is not None and t.failure.name == "missing_approval"
    if unapproved:
        # Only deals above the deal-desk threshold need its approval; the sales manager approved this one alone.
        amount = max(amount, Decimal("150000.00"))
    contract = f"C-{ids.next_number('contract', 10_000)}"
    order = ids.next_number("order", 100_000)
    invoice = ids.next_number("invoice", 90_000_000)
    evidence = f"EV-{t.start.year}-{ids.next_number('evidence', 100_000)}"
    payment = ids.token("pi_3")
    # The facts every system of the chain states, and where a silent mismatch makes one of them disagree. The contract
    # is billed by milestones (an SAP billing plan, FPLNR/FPLTR): this transaction bills one of them.
    facts = t.facts_rng
    quote = t.salesforce_id("a0q")
    billing_plan = f"{ids.next_number('billing_plan', 300_000):010d}"
    milestone = facts.randint(1, 4)
    silent = t.silent
    billed = billed_facts(silent, amount=amount, entity=entity, rng=facts)
    billed_amount, billed_currency, posted_tax_code = billed.amount, billed.currency, billed.tax_code
    booked, amount_mismatch = billed.booked, billed.amount_mismatch
    tax = (billed_amount * entity.tax_rate).quantize(Decimal("0.01"))
    gross = billed_amount + tax
    t.message_context(
        entity,
        amount,
        customer_name=party.name,
        customer_erp=party.erp,
        tenant="10023",
        retry_after=str(t.rng.choice((5, 15, 30, 60))),
        exposure=f"{amount * Decimal('1.35'):,.2f}",
        credit_limit=f"{(amount * Decimal('0.35')).quantize(Decimal('1000')):,.2f}",
        tax_code=t.rng.choice(("P0000000", "SW050000", "DC010500")),
        expected_tax_code=entity.tax_code,
        threshold="100,000.00",
        control="SOX-OTC-04",
        checksum=ids.hex_id(64),
    )
    money = {"entity": entity.code, "amount": amount, "currency": entity.currency}
    approved_by = t.rng.choice(DEAL_DESK)
    crm = t.step(
        "contract.approve",
        "salesforce-crm",
        "contract.approved",
        keys={"contract": contract, "customer": party.crm},
        approval={"actor": approved_by, "decision": "approved", "step": "sales-manager" if unapproved else "deal-desk"},
        # Salesforce CPQ's quote as the CRM sends it: its net total, currency and the product's tax code.
        attributes={
            "sf.opportunity_stage": "Closed Won",
            "region": entity.region,
            "SBQQ__Quote__c": quote,
            "SBQQ__NetAmount__c": f"{amount:.2f}",
            "CurrencyIsoCode": entity.currency,
            "SBQQ__TaxCode__c": entity.tax_code,
        },
        **money,
    )
    t.step(
        "contract.activate",
        "conga-clm",
        "contract.activated",
        keys={"contract": contract, "customer": party.crm},
        after=(5 * 60, 2 * HOUR),
        attributes={"clm.agreement": f"AGR-{contract[2:]}", "clm.template": "MSA-SaaS-2024"},
        document=f"contract {contract}",
        approval_step="deal-desk",
        blocked="activation blocked",
        **money,
    )
    sync = t.step(
        "order.sync",
        "mulesoft-ipaas",
        "order.sync",
        keys={"contract": contract, "customer": party.crm},
        after=(60, 15 * 60),
        parent=crm,
        attributes={"mule.app": "o2c-order-papi", "http.request.method": "POST", "http.response.status_code": 201},
        duration=(150, 2500),
        document=f"contract {contract}",
        method="POST",
        endpoint=f"{S4_API}/API_SALES_ORDER_SRV/A_SalesOrder",
        **money,
    )
    t.step(
        "order.create",
        "sap-s4",
        SAP_SALES_ORDER_CREATED,
        keys={"order": f"{order:010d}", "contract": contract, "customer": party.erp},
        after=(1, 20),
        parent=sync,
        traced=True,
        # SAP's own field names for the facts (VBAK: billing company code, net value, document currency).
        data={
            "SalesOrder": f"{order:010d}",
            "SalesOrderType": "OR",
            "SalesOrganization": booked.company_code,
            "SoldToParty": party.erp,
            "PurchaseOrderByCustomer": contract,
            "BUKRS_VF": booked.company_code,
            "NETWR": f"{amount:.2f}",
            "WAERK": entity.currency,
        },
        document=f"sales order {order:010d} for contract {contract}",
        mismatch="entity_mismatch" if booked is not entity else None,
        **money,
    )
    t.step(
        "tax.calculate",
        "avalara-tax",
        "tax.calculated",
        keys={"order": str(order), "invoice": str(invoice)},
        after=(5 * 60, 3 * HOUR),
        # AvaTax's committed transaction: company, document code, currency, totals and the line's tax code.
        attributes={
            "companyCode": booked.company_code,
            "code": str(invoice),
            "currencyCode": billed_currency,
            "totalAmount": f"{billed_amount:.2f}",
            "totalTax": f"{tax:.2f}",
            "taxCode": posted_tax_code,
            "tax.rate": str(entity.tax_rate),
        },
        document=f"order {order}",
        mismatch="tax_code_changed" if posted_tax_code != entity.tax_code else None,
        entity=entity.code,
        amount=tax,
        currency=billed_currency,
    )
    invoice_fields = {
        "gross": gross,
        "net": billed_amount,
        "tax": tax,
        "currency": billed_currency,
        "tax_code": posted_tax_code,
    }
    _invoice(
        t,
        entity=entity,
        booked=booked,
        party=party,
        order=order,
        invoice=invoice,
        billing_plan=billing_plan,
        milestone=milestone,
        mismatch=amount_mismatch,
        **invoice_fields,
    )
    if silent == "duplicate_milestone_invoice":
        # Billing runs the milestone again (a retried bill run, a manual invoice on top of the scheduled one): a new
        # invoice number for a milestone already invoiced, that nobody rejects.
        with t.side_stream():
            _invoice(
                t,
                entity=entity,
                booked=booked,
                party=party,
                order=order,
                invoice=ids.next_number("invoice", 90_000_000),
                billing_plan=billing_plan,
                milestone=milestone,
                after=(2 * HOUR, 2 * DAY),
                mismatch=silent,
                **invoice_fields,
            )
    t.step(
        "payment.receive",
        "stripe-payments",
        "invoice.paid",
        keys={"invoice": str(invoice), "payment": payment},
        after=(DAY, 6 * DAY),
        data={
            "object": {
                "id": ids.token("in_1"),
                "object": "invoice",
                "number": str(invoice),
                "payment_intent": payment,
                "amount_paid": int(gross * 100),
                "currency": billed_currency.lower(),
                "status": "paid",
            }
        },
    )
    t.step(
        "evidence.capture",
        "compliance-vault",
        "evidence.captured",
        keys={"contract": contract, "order": str(order), "invoice": str(invoice), "evidence": evidence},
        after=(HOUR, 12 * HOUR),
        attributes={"control": "SOX-OTC-04", "evidence.type": "invoice-and-payment", "retention.years": 10},
        document=f"invoice {invoice}",
        **money,
    )


def _invoice(
    t: TxnBuilder,
    *,
    entity: LegalEntity,
    booked: LegalEntity,
    party: Party,
    order: int,
    invoice: int,
    billing_plan: str,
    milestone: int,
    gross: Decimal,
    net: Decimal,
    tax: Decimal,
    currency: str,
    tax_code: str,
    mismatch: str | None,
    after: tuple[float, float] = (60, 20 * 60),
) -> None:
    """The milestone's invoice in billing (Zuora) and as SAP's billing document, each with its own field names."""
    t.step(
        "invoice.post",
        "zuora-billing",
        "invoice.posted",
        keys={"order": str(order), "invoice": str(invoice), "customer": party.crm},
        after=after,
        # Zuora's invoice as its REST API names the fields; the milestone is a custom field (Zuora suffixes them __c).
        attributes={
            "zuora.subscription": f"A-S{order:08d}",
            "zuora.invoice_date": t.clock.date().isoformat(),
            "invoiceNumber": str(invoice),
            "amountWithoutTax": f"{net:.2f}",
            "taxAmount": f"{tax:.2f}",
            "currency": currency,
            "taxCode": tax_code,
            "Milestone__c": f"M{milestone}",
        },
        document=f"invoice {invoice}",
        mismatch=mismatch,
        entity=entity.code,
        amount=gross,
        currency=currency,
    )
    t.step(
        "billing_document.post",
        "sap-s4",
        SAP_BILLING_DOCUMENT_CREATED,
        keys={"invoice": f"{invoice:010d}", "order": f"{order:010d}"},
        after=(60, HOUR),
        # VBRK/VBRP as SAP names them: company code, net value, currency, output tax code, billing plan and its item.
        data={
            "BillingDocument": f"{invoice:010d}",
            "BillingDocumentType": "F2",
            "SalesOrder": f"{order:010d}",
            "BUKRS": booked.company_code,
            "NETWR": f"{net:.2f}",
            "WAERK": currency,
            "MWSKZ": entity.sap_tax_code,
            "FPLNR": billing_plan,
            "FPLTR": f"{milestone:06d}",
        },
        document=f"billing document {invoice:010d}",
        mismatch=mismatch,
        entity=entity.code,
        amount=net,
        currency=currency,
    )
