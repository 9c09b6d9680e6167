"""Default ingest configuration loaded by `load_reference_data`: key-extraction and redaction rules."""

from datetime import timedelta

from django.db import transaction

from console.lib.audit import audit_record
from transactions.choices import RedactionAction, RuleAction
from transactions.models import ExtractionRule, ProcessDefinition, RedactionRule
from transactions.services import ProcessStepInput, process_definition_create

SAP_EVENTS = "sap.s4.beh.*"
# (kind pattern, JSON path, key type, description)
DEFAULT_KEY_RULES: list[tuple[str, str, str, str]] = [
    # SAP S/4HANA business events (Event Mesh): the document number sits at the top of `data`.
    (SAP_EVENTS, "data.SalesOrder", "order", "SAP sales order"),
    (SAP_EVENTS, "data.BillingDocument", "invoice", "SAP billing document"),
    (SAP_EVENTS, "data.BusinessPartner", "customer", "SAP business partner"),
    (SAP_EVENTS, "data.PurchaseOrder", "purchase_order", "SAP purchase order"),
    (SAP_EVENTS, "data.SupplierInvoice", "supplier_invoice", "SAP supplier invoice"),
    (SAP_EVENTS, "data.JournalEntry", "journal", "SAP journal entry"),
    (SAP_EVENTS, "data.AccountingDocument", "journal", "SAP accounting document"),
    # Stripe-style webhook events: the object is under data.object.
    ("invoice.*", "data.object.id", "invoice", "Stripe-style invoice event"),
    ("invoice.*", "data.object.customer", "customer", "Stripe-style invoice event"),
    ("invoice.*", "data.object.payment_intent", "payment", "Stripe-style invoice event"),
    ("customer.*", "data.object.id", "customer", "Stripe-style customer event"),
    ("payment_intent.*", "data.object.id", "payment", "Stripe-style payment intent event"),
    ("payment_intent.*", "data.object.invoice", "invoice", "Stripe-style payment intent event"),
    ("payment_intent.*", "data.object.customer", "customer", "Stripe-style payment intent event"),
    ("charge.*", "data.object.payment_intent", "payment", "Stripe-style charge event"),
    ("charge.*", "data.object.invoice", "invoice", "Stripe-style charge event"),
    # OpenTelemetry: finance.key.<type> is mapped by the decoder; these catch common attribute names besides it.
    ("*", 'attributes["order.id"]', "order", "OTLP attribute order.id"),
    ("*", 'attributes["invoice.id"]', "invoice", "OTLP attribute invoice.id"),
    ("*", 'attributes["payment.id"]', "payment", "OTLP attribute payment.id"),
    ("*", 'attributes["contract.id"]', "contract", "OTLP attribute contract.id"),
    ("*", 'attributes["customer.id"]', "customer", "OTLP attribute customer.id"),
]
DEFAULT_FAILURE_PATTERNS: list[tuple[str, str]] = [
    ("*.failed", "event type reports a failure"),
    ("*.failed.v*", "event type reports a failure"),
    ("*.payment_failed", "payment failed"),
]
DEFAULT_REDACTION: list[tuple[str, str]] = [
    ("*email*", RedactionAction.HASH),
    ("*phone*", RedactionAction.MASK),
    ("*iban*", RedactionAction.MASK),
    ("*card_number*", RedactionAction.DROP),
    ("*password*", RedactionAction.DROP),
    ("*secret*", RedactionAction.DROP),
    ("authorization", RedactionAction.DROP),
    ("*date_of_birth*", RedactionAction.DROP),
]


@transaction.atomic
def ingest_reference_data_load(*, actor: str = "system:reference-data") -> dict[str, int]:
    """Create the default rules that do not exist yet; rules edited or deactivated by users are left alone."""
    created = {"extraction_rules": 0, "redaction_rules": 0}
    for position, (kind_pattern, path, key_type, description) in enumerate(DEFAULT_KEY_RULES, start=1):
        _, new = ExtractionRule.objects.get_or_create(
            source=None,
            kind_pattern=kind_pattern,
            action=RuleAction.BUSINESS_KEY,
            path=path,
            key_type=key_type,
            defaults={"description": description, "position": position * 10},
        )
        created["extraction_rules"] += new
    for offset, (kind_pattern, description) in enumerate(DEFAULT_FAILURE_PATTERNS, start=1):
        _, new = ExtractionRule.objects.get_or_create(
            source=None,
            kind_pattern=kind_pattern,
            action=RuleAction.MARK_FAILED,
            defaults={"description": description, "position": 1000 + offset},
        )
        created["extraction_rules"] += new
    for pattern, action in DEFAULT_REDACTION:
        _, new = RedactionRule.objects.get_or_create(source=None, pattern=pattern, defaults={"action": action})
        created["redaction_rules"] += new
    if any(created.values()):
        audit_record(actor=actor, action="reference_data.ingest_loaded", after=created)
    return created


H = timedelta(hours=1)
D = timedelta(days=1)
# (slug, name, correlating key types, [(step name, system or "", kind pattern, allowance after previous step)])
DEFAULT_PROCESSES: list[tuple[str, str, list[str], list[tuple[str, str, str, timedelta]]]] = [
    (
        "order-to-cash",
        "Order to cash",
        ["contract", "order", "invoice", "payment"],
        [
            ("Contract approved", "", "contract.approved", D),
            ("Sales order created", "", "order.created|*salesorder*.created*", 4 * H),
            ("Invoice posted", "", "invoice.posted|*billingdocument*.created*", 2 * D),
            ("Payment received", "", "payment.received|invoice.paid|payment_intent.succeeded", 30 * D),
            ("Evidence captured", "", "evidence.captured", 2 * D),
        ],
    ),
    (
        "procure-to-pay",
        "Procure to pay",
        ["purchase_order", "supplier_invoice", "payment"],
        [
            ("Purchase order created", "", "purchase_order.created|*purchaseorder*.created*", D),
            ("Goods received", "", "goods.received|*goodsreceipt*", 14 * D),
            ("Supplier invoice posted", "", "supplier_invoice.posted|*supplierinvoice*.created*", 5 * D),
            ("Supplier paid", "", "payment.executed|*paymentrun*", 30 * D),
        ],
    ),
    (
        "customer-master-sync",
        "Customer master sync",
        ["customer_sync"],
        [
            ("Account created in CRM", "", "account.created|customer.created", D),
            ("Customer replicated by middleware", "", "customer.replicated", H),
            ("Business partner created in ERP", "", "business_partner.created|*businesspartner*.created*", 4 * H),
        ],
    ),
    (
        "payment-application",
        "Payment application",
        ["payment", "invoice"],
        [
            ("Payment received", "", "payment.received|payment_intent.succeeded|charge.succeeded", D),
            ("Payment applied in ERP", "", "payment.applied", 4 * H),
            ("Invoice cleared", "", "invoice.cleared", D),
        ],
    ),
    (
        "close-evidence",
        "Close evidence",
        ["evidence", "journal"],
        [
            ("Control evidence captured", "", "evidence.captured|control.evidence_captured", D),
            ("Evidence approved", "", "evidence.approved", 2 * D),
        ],
    ),
]


@transaction.atomic
def process_reference_data_load(*, actor: str = "system:reference-data") -> int:
    """Create the default process definitions that do not exist yet (existing ones, maybe edited, are kept)."""
    created = 0
    for slug, name, keys, steps in DEFAULT_PROCESSES:
        if ProcessDefinition.objects.filter(slug=slug).exists():
            continue
        process_definition_create(
            actor=actor,
            slug=slug,
            name=name,
            correlation_keys=keys,
            steps=[
                ProcessStepInput(position=i, name=n, system=system, kind_pattern=kinds, allowance=allow)
                for i, (n, system, kinds, allow) in enumerate(steps, start=1)
            ],
        )
        created += 1
    return created
