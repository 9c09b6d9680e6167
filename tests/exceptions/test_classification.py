from decimal import Decimal

import pytest

from exceptions.classification import (
    CaseFacts,
    ClassificationSpec,
    FailureFacts,
    RoutingSpec,
    classify,
    fingerprint,
    http_status_matches,
    normalise_error,
    priority_for,
    route,
)

RULES = [
    ClassificationSpec(1, "Auth", "security", http_status="401,403"),
    ClassificationSpec(2, "Tax", "data_quality", error_code="TaxCode*", message_pattern=r"tax code \w+"),
    ClassificationSpec(3, "Region", "mapping", system="mulesoft-*", attributes={"region": "EMEA|APAC"}),
]


def test_first_matching_rule_wins_and_explains_itself():
    facts = FailureFacts("avalara-tax", "tax.calculate", "TaxCodeMismatch", message="Tax code SW054 differs")
    result = classify(facts, RULES)
    assert result.category == "data_quality" and result.rule_id == 2
    assert "error code 'TaxCodeMismatch'" in result.explanation and "Tax code SW054" in result.explanation


def test_http_status_and_attributes():
    assert classify(FailureFacts("x", "y", http_status=401), RULES).category == "security"
    assert classify(FailureFacts("mulesoft-ipaas", "y", attributes={"region": "apac"}), RULES).category == "mapping"
    gap = classify(FailureFacts("mulesoft-ipaas", "y", attributes={"region": "AMER"}), RULES)
    assert gap.category == "unclassified" and gap.rule_id is None and "taxonomy gap" in gap.explanation


@pytest.mark.parametrize(
    ("pattern", "status", "expected"),
    [("5xx", 503, True), ("5xx", 429, False), ("500-504", 504, True), ("429", 429, True), ("401,403", 403, True)],
)
def test_http_status_patterns(pattern, status, expected):
    assert http_status_matches(pattern, status) is expected


def test_fingerprint_ignores_ids_numbers_and_amounts():
    a = normalise_error("Credit check failed for SO 4711: exposure EUR 125,000.00 exceeds limit of BP 0000104711")
    b = normalise_error("Credit check failed for SO 4712: exposure EUR 99.50 exceeds limit of BP 0000104733")
    assert a == b
    assert fingerprint(category="c", system="s", kind="k", error_signature=a) == fingerprint(
        category="c", system="S", kind="K", error_signature=b
    )
    assert normalise_error("Period 04 closed") != normalise_error("Customer 12 not found")


def test_routing_and_priority():
    rules = [
        RoutingSpec(1, "big AR", queue_id=10, categories=("business_rule",), min_amount=Decimal("1000")),
        RoutingSpec(2, "tax", queue_id=20, system="avalara-*"),
    ]
    assert route(CaseFacts("business_rule", "sap-s4", "order.create", amount=Decimal("5000")), rules).queue_id == 10
    assert route(CaseFacts("business_rule", "sap-s4", "order.create", amount=Decimal("5")), rules) is None
    assert route(CaseFacts("data_quality", "avalara-tax", "tax.calculate"), rules).queue_id == 20
    assert priority_for("medium", Decimal(0)) == 3
    assert priority_for("medium", Decimal("250000")) == 2
    assert priority_for("critical", Decimal("5000000"), escalation_level=2) == 1
    assert priority_for("low", Decimal(0)) == 4
