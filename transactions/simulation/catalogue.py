"""The simulated estate's catalogue: systems, master data, business processes and the failure kinds they suffer.

Pure data (no Django, no ORM). How the systems report, as in real estates:
- OTLP spans: salesforce-crm and mulesoft-ipaas (OpenTelemetry-instrumented; the iPaaS continues the CRM's trace).
- CloudEvents: sap-s4 business events from SAP Event Mesh, and stripe-payments webhooks bridged to CloudEvents.
  Business events only announce what happened, so SAP's failures (credit block, closed period, duplicate invoice...)
  arrive as native error events from its interface monitor, in the trace of the iPaaS call that caused them.
- The native API: conga-clm, avalara-tax, zuora-billing, compliance-vault, and SAP's monitor and payment release.
"""

import math
from dataclasses import dataclass
from decimal import Decimal

# Channel names, equal to transactions.choices.Channel values (this module stays free of Django imports).
OTLP = "otlp_traces"
NATIVE = "native"
CLOUDEVENTS = "cloudevents"


# ---- Systems --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    name: str
    role: str
    product: str
    channel: str  # how its business events travel
    span_kind: str = "internal"  # OTLP systems: server, client or internal
    cloudevents_source: str = ""  # CloudEvents systems: the `source` URI they send
    alias_pattern: str = ""  # CloudEvents systems: the alias pattern that maps `source` back to the system name


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("salesforce-crm", "CRM", "Salesforce Sales Cloud", OTLP, span_kind="server"),
        System("conga-clm", "contract management (CLM/CPQ)", "Conga CLM", NATIVE),
        System("mulesoft-ipaas", "iPaaS middleware", "MuleSoft Anypoint Platform", OTLP, span_kind="client"),
        System(
            "sap-s4",
            "ERP",
            "SAP S/4HANA",
            CLOUDEVENTS,
            cloudevents_source="/default/sap.s4.beh/0MYS4HANA",
            alias_pattern="/default/sap.s4.beh/*",
        ),
        System("zuora-billing", "billing", "Zuora Billing", NATIVE),
        System("avalara-tax", "tax engine", "Avalara AvaTax", NATIVE),
        System(
            "stripe-payments",
            "payment gateway",
            "Stripe",
            CLOUDEVENTS,
            cloudevents_source="/stripe/accounts/acct_1NyUe2Kx7mPq9Rz3",
            alias_pattern="/stripe/*",
        ),
        System("compliance-vault", "compliance evidence store", "Compliance evidence vault", NATIVE),
    )
}

SAP_SALES_ORDER_CREATED = "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1"
SAP_BILLING_DOCUMENT_CREATED = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"
SAP_BUSINESS_PARTNER_CREATED = "sap.s4.beh.businesspartner.v1.BusinessPartner.Created.v1"
SAP_PURCHASE_ORDER_CREATED = "sap.s4.beh.purchaseorder.v1.PurchaseOrder.Created.v1"
# The nightly camt.053 statement imported into SAP (Manage Bank Statements), announced by its business event.
SAP_BANK_STATEMENT_CREATED = "sap.s4.beh.bankstatement.v1.BankStatement.Created.v1"
SAP_GOODS_RECEIPT_CREATED = "sap.s4.beh.goodsreceipt.v1.GoodsReceipt.Created.v1"
SAP_SUPPLIER_INVOICE_CREATED = "sap.s4.beh.supplierinvoice.v1.SupplierInvoice.Created.v1"
SAP_JOURNAL_ENTRY_CREATED = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"


@dataclass(frozen=True)
class KeyPath:
    """Where a CloudEvents system's payload carries a business key: an extraction rule of its ingest source."""

    system: str
    kind_pattern: str
    path: str
    key_type: str


# CloudEvents carry no business keys of their own; these rules are what an integration engineer configures for the
# simulated sources (some repeat the reference data's defaults, so that a database without them works too).
KEY_PATHS: tuple[KeyPath, ...] = (
    KeyPath("sap-s4", "sap.s4.beh.salesorder.*", "data.SalesOrder", "order"),
    KeyPath("sap-s4", "sap.s4.beh.salesorder.*", "data.PurchaseOrderByCustomer", "contract"),
    KeyPath("sap-s4", "sap.s4.beh.salesorder.*", "data.SoldToParty", "customer"),
    KeyPath("sap-s4", "sap.s4.beh.billingdocument.*", "data.BillingDocument", "invoice"),
    KeyPath("sap-s4", "sap.s4.beh.billingdocument.*", "data.SalesOrder", "order"),
    KeyPath("sap-s4", "sap.s4.beh.businesspartner.*", "data.BusinessPartner", "customer"),
    KeyPath("sap-s4", "sap.s4.beh.purchaseorder.*", "data.PurchaseOrder", "purchase_order"),
    KeyPath("sap-s4", "sap.s4.beh.purchaseorder.*", "data.Supplier", "supplier"),
    KeyPath("sap-s4", "sap.s4.beh.goodsreceipt.*", "data.MaterialDocument", "goods_receipt"),
    KeyPath("sap-s4", "sap.s4.beh.goodsreceipt.*", "data.PurchaseOrder", "purchase_order"),
    KeyPath("sap-s4", "sap.s4.beh.supplierinvoice.*", "data.SupplierInvoice", "supplier_invoice"),
    KeyPath("sap-s4", "sap.s4.beh.supplierinvoice.*", "data.PurchaseOrder", "purchase_order"),
    KeyPath("sap-s4", "sap.s4.beh.journalentry.*", "data.JournalEntry", "journal"),
    KeyPath("sap-s4", "sap.s4.beh.bankstatement.*", "data.BankStatement", "bank_statement"),
    KeyPath("stripe-payments", "invoice.*", "data.object.number", "invoice"),
    KeyPath("stripe-payments", "invoice.*", "data.object.payment_intent", "payment"),
    KeyPath("stripe-payments", "payment_intent.*", "data.object.id", "payment"),
    KeyPath("stripe-payments", "payment_intent.*", "data.object.metadata.invoice_number", "invoice"),
)


# ---- Master data ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegalEntity:
    code: str
    company_code: str  # SAP company code
    currency: str
    region: str
    tax_rate: Decimal
    tax_code: str  # Avalara tax code of the subscription product in this entity
    sap_tax_code: str  # SAP output tax code (MWSKZ) its billing documents post with


ENTITIES: dict[str, LegalEntity] = {
    e.code: e
    for e in (
        # US sales tax runs through SAP's jurisdiction procedure (TAXUSJ, code O1); the others post output VAT (A1).
        LegalEntity("DE01", "1010", "EUR", "EMEA", Decimal("0.19"), "SW054000", "A1"),
        LegalEntity("US01", "1710", "USD", "AMER", Decimal("0.0725"), "SW054003", "O1"),
        LegalEntity("GB01", "1510", "GBP", "EMEA", Decimal("0.20"), "SW054000", "A1"),
        LegalEntity("FR01", "1210", "EUR", "EMEA", Decimal("0.20"), "SW054000", "A1"),
        LegalEntity("NL01", "1310", "EUR", "EMEA", Decimal("0.21"), "SW054000", "A1"),
        LegalEntity("SG01", "1610", "SGD", "APAC", Decimal("0.09"), "SW054100", "A1"),
    )
}
# Entities that sales sells from but nobody added to the iPaaS cross-reference: the missing-mapping failure.
UNMAPPED_ENTITIES = ("AT01", "CH01", "PL01")


@dataclass(frozen=True)
class Party:
    number: int  # CRM writes it bare (104711), SAP as a 10-digit business partner number (0000104711)
    name: str
    entity: str

    @property
    def crm(self) -> str:
        return str(self.number)

    @property
    def erp(self) -> str:
        return f"{self.number:010d}"


CUSTOMERS: tuple[Party, ...] = tuple(
    Party(104711 + 22 * i, name, entity)
    for i, (name, entity) in enumerate(
        (
            ("Acme Industrial GmbH", "DE01"),
            ("Nordwind Logistik AG", "DE01"),
            ("Elbtal Maschinenbau GmbH", "DE01"),
            ("Bergmann Pharma GmbH", "DE01"),
            ("Brightline Retail Inc.", "US01"),
            ("Cascade Health Systems", "US01"),
            ("Summit Freight LLC", "US01"),
            ("Pioneer Analytics Corp.", "US01"),
            ("Thames Valley Foods Ltd", "GB01"),
            ("Albion Insurance Services plc", "GB01"),
            ("Kestrel Energy Ltd", "GB01"),
            ("Lumiere Cosmetiques SAS", "FR01"),
            ("Atelier Garonne SA", "FR01"),
            ("Delta Haven Logistics B.V.", "NL01"),
            ("Oranje Agritech B.V.", "NL01"),
            ("Straits Marine Pte Ltd", "SG01"),
            ("Lion City Fintech Pte Ltd", "SG01"),
        )
    )
)
SUPPLIERS: tuple[Party, ...] = tuple(
    Party(300123 + 17 * i, name, entity)
    for i, (name, entity) in enumerate(
        (
            ("Schwarzwald Komponenten GmbH", "DE01"),
            ("Hanse Packaging GmbH", "DE01"),
            ("Great Lakes Steel Supply Inc.", "US01"),
            ("Bluebird Office Solutions LLC", "US01"),
            ("Pennine Facilities Ltd", "GB01"),
            ("Provence Emballages SARL", "FR01"),
            ("Maas Electronics B.V.", "NL01"),
            ("Sentosa IT Services Pte Ltd", "SG01"),
        )
    )
)
# New customer accounts (customer master sync) are named from these.
NAME_STEMS = ("Aurora", "Vertex", "Halcyon", "Meridian", "Northgate", "Bluewater", "Copperleaf", "Ironbridge")
NAME_TRADES = ("Logistics", "Foods", "Medical", "Robotics", "Textiles", "Energy", "Software", "Packaging", "Retail")
LEGAL_FORMS = {"DE01": "GmbH", "US01": "Inc.", "GB01": "Ltd", "FR01": "SAS", "NL01": "B.V.", "SG01": "Pte Ltd"}
DEAL_DESK = ("a.meyer", "j.doe", "s.patel")
AP_CLERKS = ("l.fischer", "m.garcia", "p.kowalski")
TREASURY = ("t.nguyen", "e.dubois")
CONTROLLERS = ("c.rossi", "h.tanaka", "b.okafor")
CONTROLS = (("SOX-R2R-07", "Manual journal review"), ("SOX-R2R-11", "Accrual reconciliation"))

S4_API = "https://s4hana.corp.example/sap/opu/odata/sap"
HTTP_REASONS = {401: "unauthorized", 429: "too many requests", 502: "bad gateway", 503: "service unavailable"}


# ---- Processes and failures -----------------------------------------------------------------------------------------

ORDER_TO_CASH = "order-to-cash"
PROCURE_TO_PAY = "procure-to-pay"
CUSTOMER_MASTER_SYNC = "customer-master-sync"
PAYMENT_APPLICATION = "payment-application"
CLOSE_EVIDENCE = "close-evidence"
PROCESS_WEIGHTS: dict[str, float] = {
    ORDER_TO_CASH: 42,
    PROCURE_TO_PAY: 20,
    CUSTOMER_MASTER_SYNC: 15,
    PAYMENT_APPLICATION: 15,
    CLOSE_EVIDENCE: 8,
}


@dataclass(frozen=True)
class FailureKind:
    """A real finance integration failure: where it strikes, what the failing system reports, how often it heals."""

    name: str
    weight: float
    summary: str
    sites: tuple[tuple[str, str], ...] = ()  # (process, step); none for delivery anomalies, which strike anywhere
    variants: tuple[tuple[str, int | None], ...] = ()  # (error code, HTTP status)
    error_type: str = ""
    message: str = ""
    # Other ways real systems report the same failure, as (error code as sent, message template): an SAP message id in
    # another notation (F5201, "Message no. F5201", the class and number as BAPI RETURN fields), another message of
    # the same message class. Classification must cope with each, so the demo shows them all.
    phrasings: tuple[tuple[str, str], ...] = ()
    retry_chance: float = 0.0
    retry_after: tuple[float, float] = (60.0, 3600.0)  # seconds until the retry that succeeds (history time)

    @property
    def delivery(self) -> bool:
        """A delivery anomaly: nothing fails, but records arrive twice, late or out of order."""
        return not self.sites


_MULE_HTTP_ERROR = "org.mule.extension.http.api.request.validator.ResponseValidatorTypedException"

FAILURES: tuple[FailureKind, ...] = (
    FailureKind(
        "tax_code_mismatch",
        8,
        "Avalara rejects a line whose tax code differs from the entity's configured code",
        sites=((ORDER_TO_CASH, "tax.calculate"),),
        variants=(("TaxCodeMismatch", 400),),
        error_type="Avalara.AvaTax.TaxCalculationError",
        message="Tax code {tax_code} on line 1 of {document} does not match tax code {expected_tax_code} configured "
        "for company {entity}; {currency} {amount} not committed",
        retry_chance=0.3,
        retry_after=(3600, 2 * 86400),
    ),
    FailureKind(
        "missing_legal_entity_mapping",
        5,
        "the iPaaS finds no SAP company code for the CRM's legal entity",
        sites=((ORDER_TO_CASH, "order.sync"),),
        variants=(("APP:LEGAL_ENTITY_NOT_MAPPED", None),),
        error_type="LegalEntityMappingError",
        message="No SAP company code is mapped for legal entity {entity} in the entity cross-reference; {document} "
        "of {customer_name} not transferred",
        retry_chance=0.35,
        retry_after=(2 * 3600, 2 * 86400),
    ),
    FailureKind(
        "customer_not_found_in_erp",
        7,
        "the sold-to party of a CRM order does not exist in SAP yet",
        sites=((ORDER_TO_CASH, "order.create"),),
        variants=(("V1/382", None),),
        error_type="SAP.SD.MasterDataNotFound",
        message="Sold-to party {customer_erp} does not exist in sales area {company_code}/10/00; {document} not "
        "created",
        phrasings=(("", "Business partner {customer_erp} does not exist; {document} not created"),),
        retry_chance=0.5,
        retry_after=(1800, 86400),
    ),
    FailureKind(
        "credit_block",
        8,
        "SAP credit management blocks the sales order",
        sites=((ORDER_TO_CASH, "order.create"),),
        variants=(("V1/154", None),),
        error_type="SAP.SD.CreditCheckFailed",
        message="Credit check failed for {document}: exposure {currency} {exposure} exceeds credit limit {currency} "
        "{credit_limit} of business partner {customer_erp}; order blocked for delivery and billing",
        phrasings=(
            ("V1154", "Order receipt/delivery not possible, credit customer blocked"),
            ("", "Static credit check: credit limit exceeded {customer_erp} {document} (Message no. V1150)"),
        ),
        retry_chance=0.55,
        retry_after=(3600, 3 * 86400),
    ),
    FailureKind(
        "period_closed",
        5,
        "posting into a closed FI period",
        sites=(
            (ORDER_TO_CASH, "billing_document.post"),
            (PAYMENT_APPLICATION, "payment.apply"),
            (CLOSE_EVIDENCE, "journal.post"),
        ),
        variants=(("F5/201", None),),
        error_type="SAP.FI.PostingPeriodClosed",
        message="Posting period {period} {fiscal_year} is not open for company code {company_code}; {document} "
        "({currency} {amount}) not posted",
        phrasings=(
            ("F5201", "Posting period {period} {fiscal_year} is not open"),
            ("F5 201", "Posting period {period} {fiscal_year} is not open"),
            ("", "Posting period {period} {fiscal_year} is not open (Message no. F5201)"),
        ),
        retry_chance=0.5,
        retry_after=(3600, 86400),
    ),
    FailureKind(
        "duplicate_invoice",
        6,
        "SAP's duplicate invoice check stops a supplier invoice entered twice",
        sites=((PROCURE_TO_PAY, "supplier_invoice.post"),),
        variants=(("M8/108", None),),
        error_type="SAP.MM.DuplicateInvoice",
        message="Check if invoice already entered under accounting document {duplicate_of} {fiscal_year}: supplier "
        "{supplier_erp}, reference {supplier_ref}, {currency} {amount}",
        phrasings=(
            ("", "Check if invoice already entered under accounting doc. no. {duplicate_of} (Message no. M8108)"),
        ),
    ),
    FailureKind(
        "erp_timeout",
        9,
        "the ERP does not answer the iPaaS in time (HTTP 504)",
        sites=((ORDER_TO_CASH, "order.sync"), (PAYMENT_APPLICATION, "payment.sync")),
        variants=(("HTTP:TIMEOUT", 504),),
        error_type="java.util.concurrent.TimeoutException",
        message="HTTP {method} on resource '{endpoint}' failed: gateway timeout (504) after 30000 ms; {document} "
        "not transferred",
        retry_chance=0.75,
        retry_after=(30, 1200),
    ),
    FailureKind(
        "erp_5xx",
        7,
        "the ERP's gateway answers 502 or 503",
        sites=((PROCURE_TO_PAY, "supplier_invoice.sync"), (PAYMENT_APPLICATION, "payment.sync")),
        variants=(("HTTP:SERVICE_UNAVAILABLE", 503), ("HTTP:BAD_GATEWAY", 502)),
        error_type=_MULE_HTTP_ERROR,
        message="HTTP {method} on resource '{endpoint}' failed: {reason} ({http_status}); {document} not transferred",
        retry_chance=0.75,
        retry_after=(30, 1800),
    ),
    FailureKind(
        "rate_limited",
        7,
        "the billing API throttles its caller (HTTP 429)",
        sites=((ORDER_TO_CASH, "invoice.post"), (PAYMENT_APPLICATION, "invoice.clear")),
        variants=(("LIMIT_EXCEEDED", 429),),
        error_type="ZuoraRateLimitError",
        message="Too many requests (429): tenant {tenant} exceeded 1,000 API calls per minute, retry after "
        "{retry_after} s; {document} not processed",
        retry_chance=0.85,
        retry_after=(30, 900),
    ),
    FailureKind(
        "expired_credentials",
        3,
        "the iPaaS's OAuth token for the ERP expired (HTTP 401)",
        sites=((CUSTOMER_MASTER_SYNC, "customer.replicate"),),
        variants=(("HTTP:UNAUTHORIZED", 401),),
        error_type=_MULE_HTTP_ERROR,
        message="HTTP {method} on resource '{endpoint}' failed: unauthorized (401); OAuth token of client "
        "{oauth_client} expired at {expired_at}",
        retry_chance=0.6,
        retry_after=(1800, 8 * 3600),
    ),
    FailureKind(
        "schema_mapping_error",
        6,
        "a DataWeave mapping meets a field the target schema requires but the source left empty",
        sites=((CUSTOMER_MASTER_SYNC, "customer.replicate"), (PROCURE_TO_PAY, "supplier_invoice.sync")),
        variants=(("MULE:EXPRESSION", None),),
        error_type="org.mule.runtime.core.api.expression.ExpressionRuntimeException",
        message='"Cannot coerce Null (null) to String" writing {field} of {document}, while evaluating DataWeave '
        "script {script}",
        retry_chance=0.3,
        retry_after=(3600, 2 * 86400),
    ),
    FailureKind(
        "missing_approval",
        4,
        "a document above its approval threshold has no recorded approval",
        sites=((ORDER_TO_CASH, "contract.activate"), (CLOSE_EVIDENCE, "evidence.approve")),
        variants=(("APPROVAL_MISSING", None),),
        error_type="ApprovalPolicyViolation",
        message="Approval missing: {document} ({currency} {amount}) needs {approval_step} approval above {currency} "
        "{threshold}; none recorded, {blocked}",
        retry_chance=0.45,
        retry_after=(3600, 2 * 86400),
    ),
    FailureKind(
        "sod_violation",
        2,
        "the same person prepared and approved (segregation of duties)",
        sites=((PROCURE_TO_PAY, "payment.release"), (CLOSE_EVIDENCE, "evidence.approve")),
        variants=(("SOD_CONFLICT", None),),
        error_type="SegregationOfDutiesViolation",
        message="User {user} prepared and approved {document} ({currency} {amount}); SoD rule {sod_rule} "
        "({sod_rule_name}) violated",
        retry_chance=0.35,
        retry_after=(3600, 86400),
    ),
    FailureKind(
        "evidence_capture_failure",
        4,
        "the evidence store cannot capture a control's evidence",
        sites=((ORDER_TO_CASH, "evidence.capture"), (CLOSE_EVIDENCE, "evidence.capture")),
        variants=(("EVIDENCE_CAPTURE_FAILED", 500),),
        error_type="EvidenceStoreError",
        message="Evidence for control {control} on {document} not captured: object store rejected the write "
        "(checksum mismatch sha256:{checksum}); retention lock not applied",
        retry_chance=0.6,
        retry_after=(600, 6 * 3600),
    ),
    FailureKind("duplicate_delivery", 8, "a sender delivers the same records twice"),
    FailureKind("late_event", 6, "an event arrives hours or days after it occurred"),
    FailureKind("out_of_order", 5, "a later step is delivered before an earlier one"),
    # Ingest rejects the record alone and keeps it in the dead-letter store; the step it carried never arrives.
    FailureKind("malformed_record", 4, "a sender delivers a record that cannot be read (e.g. a decimal comma)"),
)
FAILURE_KINDS: dict[str, FailureKind] = {f.name: f for f in FAILURES}
DEFAULT_FAILURE_WEIGHTS: dict[str, float] = {f.name: f.weight for f in FAILURES}
DEFAULT_FAILURE_RATE = 0.12
# Each kind is dealt at least once per deck of about this many failures, so even a short run shows every kind.
DECK_SIZE = 100


# ---- Silent mismatches ----------------------------------------------------------------------------------------------
#
# Facts that disagree between systems while every system reports success: no error event, nothing for classification
# to see; only a comparison of the facts each step carries (reconciliation) finds them. Each strikes a share of its
# process's transactions, drawn from a random stream of its own (so the rest of the estate does not move with it).
# The rates sit inside what published studies find:
# - duplicate supplier invoices: SAP Concur's invoice data puts the duplication rate of small and mid-sized companies at
#   1.29% of invoices; Capgemini ("Duplicate payments recovery") estimates 0.1-0.5% of payments are made twice, i.e.
#   after the checks that stop most of them. We post 1.0% of supplier invoices twice.
# - amounts: 2-3% of invoices carry prices that differ from the agreed ones (Outcome Driven Solutions, "Duplicate
#   Payments: The Hidden Drain on your AP Budget", on price variances against the PO); we bill 1.5% of contracts at
#   another amount and 0.5% in another currency (a billing account set up in the wrong currency), 2% in all.
# - tax codes and legal entities: master-data mismatches of the same kind, set lower (1.0% and 0.5%), as they come
#   from one wrong product or cross-reference entry rather than from each invoice.
# - a second invoice for a milestone already billed: 0.5%, the low end of the duplicate-invoice band above.


@dataclass(frozen=True)
class SilentMismatch:
    """A fact that disagrees between two systems of one process while both report success."""

    name: str
    process: str
    rate: float  # share of the process's transactions it strikes
    summary: str


SILENT_MISMATCHES: tuple[SilentMismatch, ...] = (
    SilentMismatch("amount_mismatch", ORDER_TO_CASH, 0.015, "the invoice's net total differs from the contract amount"),
    SilentMismatch("currency_mismatch", ORDER_TO_CASH, 0.005, "the invoice is in another currency than the contract"),
    SilentMismatch(
        "tax_code_changed",
        ORDER_TO_CASH,
        0.010,
        "the tax engine posts another tax code than the quote's (e.g. AvaTax's P0000000 fallback)",
    ),
    SilentMismatch(
        "entity_mismatch",
        ORDER_TO_CASH,
        0.005,
        "a stale iPaaS cross-reference books the order in a sister company's code",
    ),
    SilentMismatch(
        "duplicate_milestone_invoice", ORDER_TO_CASH, 0.005, "a contract milestone already billed is invoiced again"
    ),
    SilentMismatch(
        "duplicate_supplier_invoice",
        PROCURE_TO_PAY,
        0.010,
        "a supplier invoice already posted (same supplier and number) is posted again on another PO",
    ),
)
SILENT_MISMATCH_KINDS: dict[str, SilentMismatch] = {m.name: m for m in SILENT_MISMATCHES}
# Scaled up for a demo, the mismatches of one process may at most strike every one of its transactions.
MAX_MISMATCH_SCALE = min(
    1 / sum(m.rate for m in SILENT_MISMATCHES if m.process == process)
    for process in {m.process for m in SILENT_MISMATCHES}
)


def parse_failure_weights(text: str) -> dict[str, float]:
    """`erp_timeout=5,credit_block=2` -> weights; only the kinds listed occur. ValueError names the known kinds."""
    weights: dict[str, float] = {}
    known = ", ".join(FAILURE_KINDS)
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if name not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {name!r}; known kinds: {known}")
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise ValueError(f"weight of {name} must be a number, got {value.strip()!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name} must be a number >= 0, got {value.strip()!r}")
        weights[name] = weight
    if not any(weights.values()):
        raise ValueError(f"give at least one failure kind a weight above 0, e.g. erp_timeout=3; known kinds: {known}")
    return weights
