"""The pure part of reconciliation (exceptions/reconciliation.py): paths, normalisation and every comparison, with
expectations computed by hand in the comments."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from exceptions.reconciliation import (
    ERROR,
    INCOMPLETE,
    MATCHED,
    MISMATCHED,
    RuleSpec,
    SideSpec,
    evaluate_compare,
    normalise,
    path_alternatives,
    path_problem,
    path_value,
    rate_lookup,
    unique_keys,
)

NO_RATES = rate_lookup([])
DAY = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)


def ev(event_id, kind, *, system="crm", status="ok", hours=0, **fields):
    base = {
        "id": event_id,
        "occurred_at": DAY.replace(hour=10 + hours),
        "system": system,
        "kind": kind,
        "status": status,
        "entity": "",
        "amount": None,
        "currency": None,
        "business_keys": {},
        "approval": None,
        "attributes": {},
        "txn_keys": {},
    }
    base.update(fields)
    return base


def spec(comparison="equal", tolerance="0", left_path="amount", right_path="amount", mapping=(), **kw):
    return RuleSpec(
        id=1,
        name="r",
        kind="compare",
        left=SideSpec(kw.pop("left_system", ""), kw.pop("left_kind", "contract.approved"), left_path),
        right=SideSpec(kw.pop("right_system", ""), kw.pop("right_kind", "invoice.posted"), right_path),
        comparison=comparison,
        tolerance=Decimal(tolerance),
        mapping=mapping,
        mapping_name="m",
        **kw,
    )


def pair(left_value, right_value, *, left_currency="EUR", right_currency="EUR", path="amount"):
    return [
        ev(1, "contract.approved", **{path: left_value, "currency": left_currency}),
        ev(2, "invoice.posted", system="billing", hours=1, **{path: right_value, "currency": right_currency}),
    ]


# ---- Paths ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "amount",
        "$.amount",
        'attributes["tax.code"]',
        "attributes.data.CompanyCode|attributes.data.BUKRS",
        "txn_keys.contract[0]",
    ],
)
def test_paths_that_parse(text):
    assert path_problem(text) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("attributes..x", "cannot read path"),
        ('attributes["open', "cannot read path"),
        ("amunt", "starts with 'amunt'"),
        ("amount|", "alternative between | is empty"),
        ("[0]", "starts with 0"),
    ],
)
def test_paths_that_do_not_parse_say_why(text, why):
    assert why in path_problem(text)


def test_alternatives_keep_a_bar_inside_a_quoted_name():
    assert path_alternatives('attributes["a|b"]|amount') == ['attributes["a|b"]', "amount"]


def test_the_first_alternative_present_wins_and_empty_counts_as_absent():
    event = ev(1, "x", attributes={"data": {"CompanyCode": "", "BUKRS": "1010"}})
    assert path_value(event, "attributes.data.CompanyCode|attributes.data.BUKRS") == "1010"
    assert path_value(event, "attributes.data") is None  # an object is not a fact
    assert path_value(ev(1, "x", txn_keys={"contract": ["C-1", "C-2"]}), "txn_keys.contract[1]") == "C-2"


def test_normalise_ignores_case_whitespace_and_leading_zeros_of_numbers():
    assert normalise("  Inv  001 ") == "inv 001"
    assert normalise("0000012345") == normalise(12345) == "12345"
    assert normalise("000") == "0"
    assert normalise("A-0001") == "a-0001"  # zeros inside a reference are part of it


# ---- Comparisons ----------------------------------------------------------------------------------------------------


def test_equal_compares_numbers_as_numbers_and_text_exactly():
    assert evaluate_compare(spec(), pair(Decimal("100.00"), 100), NO_RATES).status == MATCHED
    assert evaluate_compare(spec(), pair(Decimal("100.00"), Decimal("100.01")), NO_RATES).status == MISMATCHED
    texts = pair("A1", "a1", path="entity")
    assert evaluate_compare(spec(left_path="entity", right_path="entity"), texts, NO_RATES).status == MISMATCHED


def test_normalised_comparison():
    events = pair("0000012345", " 12345 ", path="entity")
    verdict = evaluate_compare(spec("normalised", left_path="entity", right_path="entity"), events, NO_RATES)
    assert (verdict.status, verdict.left_shown, verdict.right_shown) == (MATCHED, "0000012345", " 12345 ")


def test_absolute_tolerance_holds_exactly_at_the_boundary():
    # |100.00 - 100.05| = 0.05: within 0.05, over 0.04.
    events = pair(Decimal("100.00"), Decimal("100.05"))
    assert evaluate_compare(spec("absolute", "0.05"), events, NO_RATES).status == MATCHED
    verdict = evaluate_compare(spec("absolute", "0.04"), events, NO_RATES)
    assert verdict.status == MISMATCHED
    assert verdict.difference == Decimal("0.05")
    assert verdict.reason == "differ by 0.05, over the tolerance 0.04"


def test_relative_tolerance_is_a_fraction_of_the_left_value():
    # 1% of 2000 = 20: 2020 is within, 2020.01 is not; the right side being larger or smaller is alike.
    assert evaluate_compare(spec("relative", "0.01"), pair(2000, 2020), NO_RATES).status == MATCHED
    assert evaluate_compare(spec("relative", "0.01"), pair(2000, 1980), NO_RATES).status == MATCHED
    verdict = evaluate_compare(spec("relative", "0.01"), pair(2000, Decimal("2020.01")), NO_RATES)
    assert verdict.status == MISMATCHED
    assert verdict.reason == "differ by 20.01, over 0.01 x 2000 = 20"
    # Zero on the left allows nothing but zero.
    assert evaluate_compare(spec("relative", "0.5"), pair(0, 1), NO_RATES).status == MISMATCHED


def test_currency_aware_converts_rounds_half_up_then_applies_the_tolerance():
    rates = rate_lookup([("EUR", "USD", date(2026, 1, 1), Decimal("1.08505"))])
    # 100 EUR x 1.08505 = 108.505 USD -> 108.51 (half up); the invoice says 108.50: 0.01 apart.
    events = pair(Decimal("100"), Decimal("108.50"), right_currency="USD")
    verdict = evaluate_compare(spec("currency", "0.01"), events, rates)
    assert verdict.status == MATCHED
    assert verdict.left_shown == "100 EUR = 108.51 USD at 1.08505"
    assert (verdict.difference, verdict.currency) == (Decimal("0.01"), "USD")
    assert evaluate_compare(spec("currency", "0.005"), events, rates).status == MISMATCHED


def test_currency_aware_uses_the_inverse_rate_and_the_rate_valid_on_the_day():
    rates = rate_lookup(
        [
            ("USD", "EUR", date(2026, 1, 1), Decimal("0.8")),  # 1 EUR = 1.25 USD
            ("USD", "EUR", date(2026, 6, 1), Decimal("0.5")),  # not valid yet on 18 May
        ]
    )
    events = pair(Decimal("100"), Decimal("125.00"), right_currency="USD")
    assert evaluate_compare(spec("currency", "0"), events, rates).status == MATCHED


def test_currency_aware_refuses_without_a_rate():
    verdict = evaluate_compare(spec("currency", "1"), pair(100, 108, right_currency="USD"), NO_RATES)
    assert verdict.status == ERROR
    assert verdict.reason == "no FX rate EUR->USD configured for 2026-05-18"


def test_currency_aware_in_one_currency_needs_no_rate():
    verdict = evaluate_compare(spec("currency", "0"), pair(Decimal("99.99"), Decimal("100.00")), NO_RATES)
    assert (verdict.status, verdict.difference) == (MISMATCHED, Decimal("0.01"))


def test_a_value_that_is_not_a_number_is_an_error_not_a_mismatch():
    verdict = evaluate_compare(spec("absolute", "1"), pair("n/a", 5), NO_RATES)
    assert (verdict.status, verdict.reason) == (ERROR, "the left value 'n/a' is not a number")


def test_the_mapping_translates_the_left_value_first():
    mapping = (("de01", "1010"), ("us01", "1710"))
    rule = spec("normalised", left_path="entity", right_path="attributes.data.BUKRS", mapping=mapping)
    events = [
        ev(1, "contract.approved", entity="DE01"),
        ev(2, "invoice.posted", attributes={"data": {"BUKRS": "1010"}}),
    ]
    verdict = evaluate_compare(rule, events, NO_RATES)
    assert (verdict.status, verdict.left_shown) == (MATCHED, "DE01 -> 1010")
    events[0]["entity"] = "US01"
    assert evaluate_compare(rule, events, NO_RATES).status == MISMATCHED
    events[0]["entity"] = "AT01"
    verdict = evaluate_compare(rule, events, NO_RATES)
    assert (verdict.status, verdict.reason) == (ERROR, "'AT01' has no entry in the mapping 'm'")


def test_a_missing_side_is_incomplete_and_says_which():
    verdict = evaluate_compare(spec(), [ev(1, "contract.approved", amount=1)], NO_RATES)
    assert verdict.status == INCOMPLETE
    assert verdict.reason == "no invoice.posted event yet (right side)"
    verdict = evaluate_compare(spec(), [ev(1, "contract.approved", amount=1), ev(2, "invoice.posted")], NO_RATES)
    assert verdict.reason == "the right side's invoice.posted event carries nothing at amount"


def test_the_latest_ok_event_of_a_side_wins_and_failed_ones_do_not_count():
    events = [
        *pair(Decimal(100), Decimal(90)),
        ev(3, "invoice.posted", status="error", hours=2, amount=Decimal(100), currency="EUR"),
    ]
    assert evaluate_compare(spec(), events, NO_RATES).status == MISMATCHED
    events.append(ev(4, "invoice.posted", hours=3, amount=Decimal(100), currency="EUR"))  # the correction
    verdict = evaluate_compare(spec(), events, NO_RATES)
    assert (verdict.status, verdict.right.event["id"]) == (MATCHED, 4)


def test_a_side_can_be_restricted_to_a_system():
    events = [*pair(100, 100), ev(3, "invoice.posted", system="erp", hours=2, amount=90, currency="EUR")]
    assert evaluate_compare(spec(right_system="billing"), events, NO_RATES).status == MATCHED
    assert evaluate_compare(spec(right_system="erp"), events, NO_RATES).status == MISMATCHED


def test_unique_keys_combine_scope_and_value_normalised():
    rule = RuleSpec(
        id=1,
        name="dup",
        kind="unique",
        left=SideSpec("", "supplier_invoice.posted", "attributes.data.XBLNR|attributes.invoiceNumber"),
        right=SideSpec("", "", ""),
        scope_path="attributes.data.LIFNR|attributes.supplier.number",
    )
    events = [
        ev(1, "supplier_invoice.posted", attributes={"data": {"XBLNR": "inv-7 ", "LIFNR": "0000100012"}}),
        ev(2, "supplier_invoice.posted", attributes={"invoiceNumber": "INV-7", "supplier": {"number": "100012"}}),
        ev(3, "supplier_invoice.posted", attributes={"invoiceNumber": "INV-8"}),  # no supplier: no key
        ev(4, "supplier_invoice.posted", status="error", attributes={"data": {"XBLNR": "INV-7", "LIFNR": "1"}}),
    ]
    assert [(k, e["id"]) for k, e in unique_keys(rule, events)] == [("100012 / inv-7", 1), ("100012 / inv-7", 2)]
