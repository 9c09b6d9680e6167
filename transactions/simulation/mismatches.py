"""Silent mismatches: facts that one system of a chain states differently from another, with no error anywhere.

Pure module. Which transactions carry one is drawn by the builder (`TxnBuilder.silent`, at rates from the sources
cited in the catalogue); here is what each kind changes, drawn from the transaction's own facts stream so that the
traffic around it stays as it was.
"""

import random
from dataclasses import dataclass
from decimal import Decimal

from transactions.simulation.catalogue import ENTITIES, LegalEntity, Party


@dataclass(frozen=True)
class BilledFacts:
    """What billing and the ERP state of an order-to-cash transaction: the contract's facts unless a mismatch moved
    one of them."""

    amount: Decimal
    currency: str
    tax_code: str
    booked: LegalEntity
    # The invoice's mismatch kind, when the amount or currency moved.
    amount_mismatch: str | None


def billed_facts(silent: str | None, *, amount: Decimal, entity: LegalEntity, rng: random.Random) -> BilledFacts:
    billed_amount, billed_currency, posted_tax_code, booked = amount, entity.currency, entity.tax_code, entity
    if silent == "amount_mismatch":
        # A price uplift billed that the contract does not carry, or a discount the contract grants that billing lost.
        change = Decimal(str(round(rng.uniform(0.02, 0.15), 4))) * rng.choice((1, -1))
        billed_amount = (amount * (1 + change)).quantize(Decimal("0.01"))
    elif silent == "currency_mismatch":
        billed_currency = rng.choice(sorted({e.currency for e in ENTITIES.values()} - {entity.currency}))
    elif silent == "tax_code_changed":
        # The billing charge lacks the product's tax code, so AvaTax falls back to its default (P0000000, tangible
        # personal property), or the charge carries an older code of the product.
        posted_tax_code = rng.choice(("P0000000", "SW050000"))
    elif silent == "entity_mismatch":
        booked = sister_company(entity, rng)
    amount_mismatch = silent if silent in ("amount_mismatch", "currency_mismatch") else None
    return BilledFacts(billed_amount, billed_currency, posted_tax_code, booked, amount_mismatch)


def sister_company(entity: LegalEntity, rng: random.Random) -> LegalEntity:
    """Another entity of the group, of the same currency where there is one: what a stale cross-reference points to."""
    others = [e for e in ENTITIES.values() if e.code != entity.code]
    same_currency = [e for e in others if e.currency == entity.currency]
    return rng.choice(same_currency or others)


def duplicate_supplier_invoice(
    silent: str | None, ledger: list[dict], rng: random.Random
) -> tuple[Party, str, Decimal] | None:
    """(supplier, invoice reference, amount) of an earlier supplier invoice entered again, or None.

    The same supplier invoice entered again against another order (a paper copy of an e-invoice, a reminder keyed as a
    new invoice): same supplier, same invoice number, same amount, where SAP's duplicate check is only a warning or
    the reference was keyed apart."""
    if silent != "duplicate_supplier_invoice" or not ledger:
        return None
    earlier = rng.choice(ledger)
    return earlier["supplier"], earlier["reference"], earlier["amount"]
