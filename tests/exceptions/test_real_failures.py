"""The default classification rules against failures as real systems phrase them (two phrasings or more each), not
as the simulator writes them."""

import pytest

from exceptions.classification import FailureFacts, classify, sap_message_ids
from exceptions.models import ClassificationRule
from exceptions.reference import exceptions_reference_data_load
from exceptions.selectors import classification_specs


@pytest.fixture
def rules(db):
    exceptions_reference_data_load()
    assert ClassificationRule.objects.exists()
    return classification_specs()


def facts(system="sap-s4", kind="journalentry.post", *, code="", type_="", message="", status=None, **attributes):
    if status is not None:
        attributes["http.response.status_code"] = status
    return FailureFacts(
        system=system, kind=kind, error_code=code, error_type=type_, message=message, attributes=attributes
    )


REAL_FAILURES = [
    # SAP S/4HANA F5 201 "Posting period & & is not open", in each notation systems send it.
    ("business_rule", facts(code="F5/201", message="Posting period 012 2026 is not open")),  # OData V2 error code
    ("business_rule", facts(code="F5201")),
    ("business_rule", facts(code="F5 201")),
    ("business_rule", facts(message="Posting period 012 2026 is not open (Message no. F5201)")),
    ("business_rule", facts(code="E", message="Error in document", ID="F5", NUMBER="201")),  # BAPI RETURN
    ("business_rule", facts(type_="com.sap.BapiException", message="Posting period 001 2027 is not open")),
    # SAP MM M8 108: duplicate invoice.
    ("business_rule", facts(code="M8/108", message="Check if invoice already entered under accounting doc. no.")),
    ("business_rule", facts(message="Message no. M8108: check invoice for duplicate entry")),
    # Middleware lookup: no ERP business partner for the CRM account.
    ("data_quality", facts("mulesoft-ipaas", "customer.sync", message="Business partner 0010004711 does not exist")),
    ("data_quality", facts("mulesoft-ipaas", "order.sync", message="No customer found for Salesforce account 001Ab")),
    # MuleSoft error types (docs.mulesoft.com Mule Errors, APIkit).
    ("data_quality", facts("mulesoft-ipaas", "order.sync", code="APIKIT:BAD_REQUEST", message="payment terms 'Z999'")),
    ("data_quality", facts("mulesoft-ipaas", "order.sync", code="VALIDATION:INVALID_INPUT")),
    ("platform", facts("mulesoft-ipaas", "order.sync", code="HTTP:CONNECTIVITY", message="Connection refused")),
    ("platform", facts("mulesoft-ipaas", "order.sync", code="HTTP:TIMEOUT")),
    ("mapping", facts("mulesoft-ipaas", "order.sync", code="MULE:TRANSFORMATION")),
    ("mapping", facts("mulesoft-ipaas", "order.sync", code="JSON:SCHEMA_NOT_HONOURED")),
    ("security", facts("mulesoft-ipaas", "order.sync", code="HTTP:UNAUTHORIZED")),
    # Salesforce API status codes.
    ("data_quality", facts("salesforce-crm", "account.update", code="REQUIRED_FIELD_MISSING")),
    ("data_quality", facts("salesforce-crm", "contract.update", code="INVALID_CROSS_REFERENCE_KEY")),
    ("business_rule", facts("salesforce-crm", "opportunity.update", code="FIELD_CUSTOM_VALIDATION_EXCEPTION")),
    ("business_rule", facts("salesforce-crm", "account.create", code="DUPLICATE_VALUE")),
    ("platform", facts("salesforce-crm", "account.update", code="UNABLE_TO_LOCK_ROW")),
    ("platform", facts("salesforce-crm", "account.query", code="REQUEST_LIMIT_EXCEEDED")),
    ("security", facts("salesforce-crm", "account.query", code="INVALID_SESSION_ID", status=401)),
    # Stripe error types.
    ("business_rule", facts("stripe-payments", "charge.failed", code="card_declined", type_="card_error")),
    ("business_rule", facts("stripe-payments", "charge.failed", code="insufficient_funds", type_="card_error")),
    ("data_quality", facts("stripe-payments", "invoice.pay", code="resource_missing", type_="invalid_request_error")),
    ("platform", facts("stripe-payments", "invoice.pay", type_="rate_limit_error", status=429)),
    ("security", facts("stripe-payments", "invoice.pay", type_="authentication_error")),
    # SAP SD credit management (message class V1).
    (
        "business_rule",
        facts(
            kind="salesorder.create",
            code="V1/154",
            message="Order receipt/delivery not possible, credit customer blocked",
        ),
    ),
    (
        "business_rule",
        facts(kind="salesorder.create", message="Static credit check: credit limit exceeded 4711 (Message no. V1150)"),
    ),
    (
        "business_rule",
        facts(
            kind="salesorder.create",
            code="V1156",
            message="Credit check: maximum document value exceeded (cannot be saved)",
        ),
    ),
    ("business_rule", facts(kind="salesorder.create", code="E", message="Error", ID="V1", NUMBER="164")),
    # Avalara AvaTax error codes, with the messages of its error reference.
    (
        "data_quality",
        facts("avalara-tax", "tax.calculate", code="InvalidAddress", message="The address value was incomplete."),
    ),
    (
        "data_quality",
        facts(
            "avalara-tax", "tax.calculate", code="AddressLocationNotFound", message="The location code was not found."
        ),
    ),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="JurisdictionNotFoundError")),
    (
        "data_quality",
        facts(
            "avalara-tax", "tax.commit", code="EntityNotFoundError", message="Transaction with ID '88213' not found."
        ),
    ),
    ("data_quality", facts("avalara-tax", "tax.commit", code="CompanyInvalidException")),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="ValueRequiredError")),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="RangeCompareError")),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="MaxStringLengthError")),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="GetTaxError", status=400)),
    ("data_quality", facts("avalara-tax", "tax.calculate", code="GetTaxError", message="-0-, -1-")),
    (
        "security",
        facts("avalara-tax", "tax.calculate", code="AuthenticationException", message="Authentication failed."),
    ),
    ("security", facts("avalara-tax", "tax.calculate", code="AuthorizationException")),
    # Zuora: SOAP/CRUD ErrorCode values and v1 REST eight-digit codes: a resource code (531003 the termType field of a
    # subscription; 500000 an unknown object, as GET and DELETE requests report) and the error category.
    (
        "data_quality",
        facts(
            "zuora-billing",
            "subscription.create",
            code="INVALID_VALUE",
            message="An invalid field value was specified.",
        ),
    ),
    ("data_quality", facts("zuora-billing", "account.create", code="MISSING_REQUIRED_VALUE")),
    (
        "data_quality",
        facts(
            "zuora-billing",
            "order.create",
            code="53100320",
            message="'termType' value should be one of: TERMED, EVERGREEN",
        ),
    ),
    ("data_quality", facts("zuora-billing", "order.create", code="53100322")),
    ("data_quality", facts("zuora-billing", "invoice.get", code="50000040")),
    ("data_quality", facts("zuora-billing", "invoice.get", code="50000023")),
    ("business_rule", facts("zuora-billing", "invoice.post", code="50000030")),
    ("business_rule", facts("zuora-billing", "subscription.cancel", code="53100330")),
    ("security", facts("zuora-billing", "invoice.post", code="90000011")),
    ("security", facts("zuora-billing", "invoice.post", code="50000010")),
    ("security", facts("zuora-billing", "account.query", code="INVALID_SESSION")),
    ("security", facts("zuora-billing", "account.query", code="INVALID_LOGIN")),
    ("platform", facts("zuora-billing", "invoice.post", code="LOCK_COMPETITION")),
    ("platform", facts("zuora-billing", "account.update", code="LOCK_COMPETITION", message="Retry later.")),
    (
        "business_rule",
        facts("zuora-billing", "payment.create", code="TRANSACTION_FAILED", message="The transaction has failed."),
    ),
    ("business_rule", facts("zuora-billing", "payment.create", code="CREDIT_CARD_PROCESSING_FAILURE")),
    (
        "business_rule",
        facts("zuora-billing", "payment.create", code="transaction_declined", message="Your transaction was declined."),
    ),
    # Credit checks, phrased by SD and by billing systems.
    ("business_rule", facts(kind="salesorder.create", message="Credit limit exceeded for customer 4711")),
    ("business_rule", facts("zuora-billing", "invoice.post", message="Account is on credit block")),
]


@pytest.mark.parametrize(("category", "failure"), REAL_FAILURES)
def test_real_phrasings_land_in_their_category(rules, category, failure):
    result = classify(failure, rules)
    assert result.category == category, result.explanation


@pytest.mark.parametrize(
    "attributes",
    [{"finance.exception.category": "data_quality"}, {"finance.exception.category": "Data Quality"}],
)
def test_a_sources_own_category_applies_when_no_rule_does(rules, attributes):
    result = classify(facts("acme-erp", "thing.do", message="something odd", **attributes), rules)
    assert result.category == "data_quality" and result.rule_id is None
    assert "finance.exception.category" in result.explanation


def test_error_type_names_a_category_only_when_it_is_one(rules):
    assert classify(facts("acme", "x", **{"error.type": "business-rule"}), rules).category == "business_rule"
    assert classify(facts("acme", "x", **{"error.type": "java.io.IOException"}), rules).category == "unclassified"


@pytest.mark.parametrize(
    ("code", "message", "attributes", "expected"),
    [
        ("F5/201", "", {}, ["F5/201"]),
        ("f5 201", "", {}, ["F5/201"]),
        ("", "Message no. M8108", {}, ["M8/108"]),
        ("", "Message number V1 154 raised", {}, ["V1/154"]),
        ("", "", {"sap.message.class": "F5", "sap.message.number": 201}, ["F5/201"]),
        ("", "Order PO 123 failed with 500", {}, []),
        ("500", "", {}, []),
    ],
)
def test_sap_message_ids_in_every_notation(code, message, attributes, expected):
    assert sap_message_ids(code, message, attributes) == expected


def test_eight_digit_numbers_mean_zuora_codes_only_from_zuora(rules):
    # 53100320 is a Zuora resource + category code; the same digits from another system are no such thing.
    assert classify(facts("acme-erp", "order.create", code="53100320"), rules).category == "unclassified"


def test_every_default_rule_fits_its_columns(rules):
    # SQLite does not enforce varchar lengths; PostgreSQL refuses the whole reference data load.
    for rule in ClassificationRule.objects.all():
        rule.full_clean()
