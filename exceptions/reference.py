"""Default taxonomy, classification and routing rules, queues and reconciliation rules, loaded by
`load_reference_data`."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction

from console.lib.audit import audit_record
from exceptions.choices import UNCLASSIFIED, Comparison, ReconciliationKind, Severity
from exceptions.models import Category, ClassificationRule, Queue, ReconciliationRule, RoutingRule, ValueMapping
from exceptions.services.reconciliation_rules import reconciliation_rule_apply
from transactions.selectors import process_definition_list

# (slug, name, severity, retryable, suggested action)
CATEGORIES = [
    (
        "data_quality",
        "Data quality",
        Severity.MEDIUM,
        True,
        "Correct the master or transactional data in the source system, then replay the failed step.",
    ),
    (
        "mapping",
        "Mapping",
        Severity.HIGH,
        True,
        "Fix the value mapping or transformation in the middleware, then replay the failed step.",
    ),
    (
        "business_rule",
        "Business rule",
        Severity.MEDIUM,
        False,
        "Resolve the business condition (credit, period, duplicate) with its owner in finance; replay is not a fix.",
    ),
    (
        "platform",
        "Platform failure",
        Severity.HIGH,
        True,
        "Check the target system's availability and limits; replay once it answers again.",
    ),
    (
        "security",
        "Security",
        Severity.CRITICAL,
        True,
        "Renew or correct the integration's credentials, then replay the failed step.",
    ),
    (
        "control",
        "Control exception",
        Severity.HIGH,
        False,
        "Obtain the missing approval or evidence, or document the exception for the auditors.",
    ),
    (
        "notice",
        "Notice",
        Severity.LOW,
        False,
        "Nothing failed: confirm the change is expected (for a new interface, who connected the systems) and record "
        "it (catalogue the interface: owner, criticality, expected frequency), then resolve.",
    ),
    (
        UNCLASSIFIED,
        "Unclassified",
        Severity.MEDIUM,
        False,
        "No rule classifies this failure yet: add a classification rule (taxonomy gap).",
    ),
]

# (name, category, fields) in evaluation order; the fields are ClassificationRule conditions. Written from how the
# systems report failures: HTTP statuses; MuleSoft error types (docs.mulesoft.com, "Mule Errors", APIkit error
# types); Salesforce API status codes (StatusCode in the SOAP/REST API reference); Stripe error types; SAP message
# ids (message class/number, matched in every notation: F5/201, F5 201, F5201, "Message no. F5201", BAPI ID and
# NUMBER; see exceptions.classification.sap_message_ids). A source's own category attribute applies when no rule does.
CLASSIFICATION_RULES = [
    ("Expired or invalid credentials", "security", {"http_status": "401,403"}),
    (
        "Credentials refused (error type)",
        "security",
        {"error_code": "HTTP:UNAUTHORIZED|HTTP:FORBIDDEN|MULE:SECURITY|INVALID_SESSION_ID|INVALID_AUTH_HEADER"},
    ),
    ("Stripe authentication error", "security", {"error_type": "authentication_error"}),
    ("Rate limited by the target", "platform", {"http_status": "429"}),
    (
        "Rate or request limit (error type)",
        "platform",
        {"error_code": "HTTP:TOO_MANY_REQUESTS|REQUEST_LIMIT_EXCEEDED|rate_limit|TOO_MANY_REQUESTS"},
    ),
    ("Stripe rate limit", "platform", {"error_type": "rate_limit_error"}),
    ("Target timed out", "platform", {"error_code": "HTTP:TIMEOUT|*TIMEOUT*", "http_status": ""}),
    (
        "Target unreachable or busy",
        "platform",
        {
            "error_code": "HTTP:CONNECTIVITY|MULE:CONNECTIVITY|HTTP:SERVICE_UNAVAILABLE|*:CONNECTIVITY"
            "|UNABLE_TO_LOCK_ROW"
        },
    ),
    ("Target unavailable (5xx)", "platform", {"http_status": "500-504", "system": "mulesoft-ipaas|sap-*"}),
    ("Legal entity not mapped", "mapping", {"error_code": "APP:LEGAL_ENTITY_NOT_MAPPED"}),
    ("Schema mapping error", "mapping", {"error_code": "MULE:EXPRESSION", "message_pattern": "coerce|mapping|schema"}),
    ("Transformation failed", "mapping", {"error_code": "MULE:TRANSFORMATION|*:INVALID_SCHEMA|*:SCHEMA_NOT_HONOURED"}),
    ("Tax code mismatch", "data_quality", {"error_code": "TaxCodeMismatch"}),
    ("Customer missing in ERP", "data_quality", {"error_code": "V1/382"}),
    (
        "Business partner or customer not found",
        "data_quality",
        {
            "message_pattern": r"(business partner|customer|sold-to party|debtor)\b[^.]{0,80}?"
            r"(does not exist|not found|not defined|unknown)"
            r"|\bno (business partner|customer|sold-to party|debtor)s? (found|exists?)\b"
        },
    ),
    (
        "Required or invalid field (Salesforce)",
        "data_quality",
        {"error_code": "REQUIRED_FIELD_MISSING|INVALID_FIELD|INVALID_CROSS_REFERENCE_KEY|STRING_TOO_LONG"},
    ),
    (
        "Malformed value (Salesforce)",
        "data_quality",
        {"error_code": "INVALID_EMAIL_ADDRESS|INVALID_TYPE_ON_FIELD_IN_RECORD|MALFORMED_ID"},
    ),
    (
        "Request rejected by validation",
        "data_quality",
        {"error_code": "APIKIT:BAD_REQUEST|VALIDATION:*|HTTP:BAD_REQUEST"},
    ),
    ("Stripe invalid request", "data_quality", {"error_type": "invalid_request_error"}),
    # Avalara AvaTax error codes (developer.avalara.com/avatax/errors): the `code` of its error envelope.
    (
        "Address not resolvable (Avalara)",
        "data_quality",
        {"error_code": "InvalidAddress|AddressIncomplete|AddressLocationNotFound|JurisdictionNotFoundError"},
    ),
    (
        "Object not found (Avalara)",
        "data_quality",
        {"error_code": "EntityNotFoundError|CompanyInvalidException|AccountInvalidException"},
    ),
    (
        "Required or out-of-range value (Avalara)",
        "data_quality",
        {"error_code": "ValueRequiredError|Range*Error|*StringLengthError"},
    ),
    ("Tax calculation error (Avalara)", "data_quality", {"error_code": "GetTaxError"}),
    # Zuora: the SOAP/CRUD ErrorCode enumeration, and the v1 REST API's eight-digit codes whose last two digits are the
    # error category (20-23 invalid or missing value, 30 rule restriction, 40 not found, 10/11 permission and
    # authentication; 90000011 an invalid credential). Eight-digit numbers mean nothing elsewhere: Zuora systems only.
    (
        "Invalid or missing value (Zuora)",
        "data_quality",
        {"error_code": "INVALID_VALUE|MISSING_REQUIRED_VALUE|INVALID_ID|INVALID_TYPE|MALFORMED_QUERY"},
    ),
    (
        "Invalid request (Zuora REST)",
        "data_quality",
        {"system": "*zuora*", "error_code": "[56]?????2[0-3]|[56]?????40"},
    ),
    ("Business rule restriction (Zuora REST)", "business_rule", {"system": "*zuora*", "error_code": "[56]?????30"}),
    ("Permission or credentials (Zuora REST)", "security", {"system": "*zuora*", "error_code": "[569]?????1[01]"}),
    (
        "Credentials refused (Zuora, Avalara)",
        "security",
        {"error_code": "INVALID_LOGIN|INVALID_SESSION|Authentication*|AuthorizationException"},
    ),
    ("Lock competition (Zuora)", "platform", {"error_code": "LOCK_COMPETITION"}),
    (
        "Payment declined by the gateway (Zuora)",
        "business_rule",
        {"error_code": "TRANSACTION_FAILED|CREDIT_CARD_PROCESSING_FAILURE|transaction_declined"},
    ),
    # SAP SD credit management (message class V1): V1 150/151 static credit check, V1 154 "Order receipt/delivery not
    # possible, credit customer blocked", V1 155/156 maximum document value, V1 164 open items share.
    ("Credit block", "business_rule", {"error_code": "V1/150|V1/151|V1/154|V1/155|V1/156|V1/164"}),
    ("Credit limit exceeded", "business_rule", {"message_pattern": r"credit (limit|check|block)"}),
    ("Posting period closed", "business_rule", {"error_code": "F5/201"}),
    ("Posting period closed (text)", "business_rule", {"message_pattern": r"posting period\b.{0,30}\bnot open"}),
    ("Duplicate invoice", "business_rule", {"error_code": "M8/108"}),
    (
        "Validation rule or duplicate (Salesforce)",
        "business_rule",
        {"error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION|DUPLICATE_VALUE|DUPLICATES_DETECTED"},
    ),
    ("Card declined (Stripe)", "business_rule", {"error_type": "card_error"}),
    ("Missing approval", "control", {"error_code": "APPROVAL_MISSING"}),
    ("Segregation of duties violation", "control", {"error_code": "SOD_CONFLICT"}),
    ("Evidence capture failed", "control", {"error_code": "EVIDENCE_CAPTURE_FAILED"}),
    ("Other 5xx from any system", "platform", {"http_status": "5xx"}),
]

# (slug, name, triage target, resolve target, default)
QUEUES = [
    ("accounts-receivable", "Accounts receivable", timedelta(hours=4), timedelta(days=2), False),
    ("accounts-payable", "Accounts payable", timedelta(hours=4), timedelta(days=2), False),
    ("billing", "Billing", timedelta(hours=4), timedelta(days=1), False),
    ("tax", "Tax", timedelta(hours=8), timedelta(days=3), False),
    ("master-data", "Master data", timedelta(hours=4), timedelta(days=1), False),
    ("compliance", "Compliance", timedelta(hours=8), timedelta(days=5), False),
    ("integration-platform", "Integration platform", timedelta(hours=1), timedelta(hours=8), False),
    ("triage", "Triage", timedelta(hours=2), timedelta(days=2), True),
]

# (name, queue, fields) in evaluation order.
ROUTING_RULES = [
    ("Controls to compliance", "compliance", {"categories": ["control"]}),
    (
        "Security, platform and mapping to integration",
        "integration-platform",
        {"categories": ["security", "platform", "mapping"]},
    ),
    ("Tax engine data to tax", "tax", {"categories": ["data_quality"], "system": "avalara-tax", "kind": "tax.*"}),
    ("ERP master data", "master-data", {"categories": ["data_quality"], "system": "sap-*"}),
    (
        "Supplier side to payables",
        "accounts-payable",
        {"categories": ["business_rule"], "kind": "supplier_invoice.*|payment.release|payment.post"},
    ),
    (
        "Billing documents to billing",
        "billing",
        {"categories": ["business_rule"], "kind": "billing_document.*|invoice.*"},
    ),
    ("Other business rules to receivables", "accounts-receivable", {"categories": ["business_rule"]}),
    # A notice nobody's catalogue claims (a new interface, a wave of them): the integration team keeps the inventory.
    ("Notices to integration", "integration-platform", {"categories": ["notice"]}),
]


@transaction.atomic
def exceptions_reference_data_load(*, actor: str = "system:reference-data") -> dict[str, int]:
    """Create what is missing; categories, rules and queues that users edited are left as they are."""
    created = {"categories": 0, "classification_rules": 0, "queues": 0, "routing_rules": 0}
    categories = {}
    for slug, name, severity, retryable, action in CATEGORIES:
        category, new = Category.objects.get_or_create(
            slug=slug, defaults={"name": name, "severity": severity, "retryable": retryable, "suggested_action": action}
        )
        categories[slug] = category
        created["categories"] += new
    if not ClassificationRule.objects.exists():
        for position, (name, slug, fields) in enumerate(CLASSIFICATION_RULES, start=1):
            ClassificationRule.objects.create(
                name=name, category=categories[slug], position=position * 10, **{k: v for k, v in fields.items() if v}
            )
            created["classification_rules"] += 1
    queues = {}
    for slug, name, triage, resolve, default in QUEUES:
        queue, new = Queue.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "triage_target": triage,
                "resolve_target": resolve,
                "is_default": default and not Queue.objects.filter(is_default=True).exists(),
            },
        )
        queues[slug] = queue
        created["queues"] += new
    if not RoutingRule.objects.exists():
        for position, (name, slug, fields) in enumerate(ROUTING_RULES, start=1):
            RoutingRule.objects.create(name=name, queue=queues[slug], position=position * 10, **fields)
            created["routing_rules"] += 1
    created.update(reconciliation_reference_data_load())
    if any(created.values()):
        audit_record(actor=actor, action="reference_data.exceptions_loaded", after=created)
    return created


# ---- Reconciliation -------------------------------------------------------------------------------------------------
# Paths list the names real systems give a fact, first present wins: SAP S/4HANA's APIs (CompanyCode, TotalNetAmount,
# TransactionCurrency, TaxCode, SupplierInvoiceIDByInvcgParty, InvoicingParty) and its table fields (BUKRS, NETWR,
# WAERK, MWSKZ, XBLNR, LIFNR) inside an Event Mesh event's `data`; Salesforce (Amount, CurrencyIsoCode, CPQ's
# SBQQ__NetAmount__c); Zuora (amountWithoutTax); AvaTax (taxCode); Coupa (invoice-number, supplier.number); and
# Closeloop's own conventions (`tax.code`, canonical amount/currency/entity), which the simulator writes.
SAP_BILLING = "*billingdocument*.created*"
CONTRACT = "contract.approved|quote.approved|quote.accepted"
NET_AMOUNT = (
    'attributes.amountWithoutTax|attributes["Invoice.AmountWithoutTax"]|attributes.data.TotalNetAmount'
    "|attributes.data.NETWR"
)
ENTITY_MAPPING = "crm-legal-entity-to-company-code"
# Example entries (SAP's best-practice company codes); each installation edits them on the console.
ENTITY_MAPPING_ENTRIES = {
    "DE01": "1010",
    "FR01": "1210",
    "NL01": "1310",
    "GB01": "1510",
    "SG01": "1610",
    "US01": "1710",
}
# The quote's tax code: Salesforce CPQ's quote line field (an AvaTax tax code), or a contract's own.
QUOTE_TAX_CODE = 'attributes.SBQQ__TaxCode__c|attributes["tax.code"]|attributes.taxCode|attributes.TaxCode'
TAX_CODE_MAPPING = "avatax-tax-code-to-sap-tax-code"
# Example entries: AvaTax's SaaS codes and the SAP output tax code each is posted with (A1 output VAT; O1 US sales tax
# through the jurisdiction procedure TAXUSJ). Tax codes are configuration of each SAP system: installations edit them.
TAX_CODE_MAPPING_ENTRIES = {"SW054000": "A1", "SW054003": "O1", "SW054100": "A1"}
RECONCILIATION_RULES: list[tuple[str, str, dict]] = [
    (
        "order-to-cash",
        "Contract amount vs invoice net amount",
        {
            "kind": ReconciliationKind.COMPARE,
            "description": "The contract's (or CPQ quote's) net amount and currency against the invoice's net amount, "
            "converted with the FX rate table when the currencies differ; a cent of rounding is tolerated. Invoice "
            "totals include tax, so the net amount is compared.",
            "left_kind": CONTRACT,
            "left_path": "amount|attributes.SBQQ__NetAmount__c|attributes.Amount",
            "left_currency_path": "currency|attributes.CurrencyIsoCode",
            "right_kind": f"invoice.posted|{SAP_BILLING}",
            "right_path": NET_AMOUNT,
            "right_currency_path": "attributes.data.TransactionCurrency|attributes.data.WAERK|currency"
            "|attributes.currency",
            "comparison": Comparison.CURRENCY,
            "tolerance": Decimal("0.01"),
            "severity": Severity.HIGH,
        },
    ),
    (
        "order-to-cash",
        "Tax code at quote vs tax engine",
        {
            "kind": ReconciliationKind.COMPARE,
            "description": "The tax code the CPQ quote line carries (SBQQ__TaxCode__c, an AvaTax code such as "
            "SW054000) against the one the tax engine or the billing system used: a product taxed under AvaTax's "
            "P0000000 fallback is taxed as goods.",
            "left_kind": CONTRACT,
            "left_path": QUOTE_TAX_CODE,
            "right_kind": "tax.calculated|tax.committed|invoice.posted",
            "right_path": 'attributes["tax.code"]|attributes.taxCode|attributes.lines[0].taxCode',
            "comparison": Comparison.NORMALISED,
            "severity": Severity.HIGH,
        },
    ),
    (
        "order-to-cash",
        "Tax code at quote vs ERP tax code posted",
        {
            "kind": ReconciliationKind.COMPARE,
            "description": "The quote's tax code, translated through the tax code mapping (AvaTax codes and SAP "
            "output tax codes are different code lists), against the tax code (MWSKZ) the ERP billing document "
            "posted with. A code the mapping lacks is an error to configure, never a mismatch.",
            "left_kind": CONTRACT,
            "left_path": QUOTE_TAX_CODE,
            "right_kind": SAP_BILLING,
            "right_path": "attributes.data.TaxCode|attributes.data.MWSKZ",
            "mapping": TAX_CODE_MAPPING,
            "comparison": Comparison.NORMALISED,
            "severity": Severity.HIGH,
        },
    ),
    (
        "order-to-cash",
        "CRM legal entity vs ERP company code",
        {
            "kind": ReconciliationKind.COMPARE,
            "description": "The legal entity on the CRM contract, translated through the mapping table, against the "
            "company code of the ERP billing document (BUKRS) or sales order (BUKRS_VF, the company code to be "
            "billed).",
            "left_kind": CONTRACT,
            "left_path": "entity|attributes.Legal_Entity__c|attributes.legal_entity",
            "right_kind": f"{SAP_BILLING}|*salesorder*.created*",
            "right_path": "attributes.data.CompanyCode|attributes.data.BUKRS|attributes.data.BUKRS_VF",
            "mapping": ENTITY_MAPPING,
            "comparison": Comparison.NORMALISED,
            "severity": Severity.MEDIUM,
        },
    ),
    (
        "order-to-cash",
        "One invoice per contract milestone",
        {
            "kind": ReconciliationKind.UNIQUE,
            "description": "At most one invoice from the billing system per contract milestone (Zuora's custom "
            "field Milestone__c, or a milestone attribute). Without one the contract counts as a single milestone "
            "(billed once).",
            "left_kind": "invoice.posted|invoice.finalized",
            "left_path": 'attributes.Milestone__c|attributes.milestone|attributes["billing.milestone"]'
            "|txn_keys.contract[0]",
            "scope_path": "business_keys.contract|txn_keys.contract[0]",
            "severity": Severity.HIGH,
        },
    ),
    (
        "procure-to-pay",
        "Duplicate supplier invoice",
        {
            "kind": ReconciliationKind.UNIQUE,
            "description": "No two supplier invoices with the same reference (XBLNR) from the same supplier (LIFNR), "
            "across all transactions: the classic duplicate payment.",
            "left_kind": "*supplierinvoice*.created*|supplier_invoice.posted|supplier_invoice.created",
            "left_path": "attributes.data.SupplierInvoiceIDByInvcgParty|attributes.data.XBLNR"
            '|attributes["invoice-number"]|attributes.invoiceNumber',
            "scope_path": "attributes.data.InvoicingParty|attributes.data.LIFNR|attributes.supplier.number"
            "|attributes.supplierNumber|txn_keys.supplier[0]",
            "severity": Severity.HIGH,
        },
    ),
]


@transaction.atomic
def reconciliation_reference_data_load() -> dict[str, int]:
    """The entity mapping and the default rules for order-to-cash and procure-to-pay; rules are created only when
    there are none (like classification and routing rules), so edited or deleted ones are never brought back."""
    created = {"value_mappings": 0, "reconciliation_rules": 0}
    mapping, new = ValueMapping.objects.get_or_create(
        slug=ENTITY_MAPPING,
        defaults={
            "name": "CRM legal entity -> ERP company code",
            "description": "Salesforce legal entity codes and the SAP company code (BUKRS) each is booked in.",
            "entries": ENTITY_MAPPING_ENTRIES,
        },
    )
    created["value_mappings"] += new
    tax_mapping, new = ValueMapping.objects.get_or_create(
        slug=TAX_CODE_MAPPING,
        defaults={
            "name": "AvaTax tax code -> SAP tax code",
            "description": "The tax code on the quote (AvaTax) and the SAP output tax code (MWSKZ) it posts with.",
            "entries": TAX_CODE_MAPPING_ENTRIES,
        },
    )
    created["value_mappings"] += new
    mappings = {ENTITY_MAPPING: mapping, TAX_CODE_MAPPING: tax_mapping}
    if ReconciliationRule.objects.exists():
        return created
    processes = {p.slug: p for p in process_definition_list()}
    for position, (process, name, fields) in enumerate(RECONCILIATION_RULES, start=1):
        rule = ReconciliationRule()
        reconciliation_rule_apply(
            rule,
            name=name,
            position=position * 10,
            process=processes.get(process),
            **{**fields, "mapping": mappings.get(fields.get("mapping", ""))},
        )
        rule.save()
        created["reconciliation_rules"] += 1
    return created
