"""The simulated estate's replay webhook and the simulator's count of failed transactions."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests

from transactions.models import Event
from transactions.simulation.builder import BusinessTransaction, SimEvent
from transactions.simulation.progress import RunStats, delivered_facts, delivered_parts
from transactions.simulation.replay_target import EstateReplayTarget, success_record

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def sim_event(
    kind: str, status: str, minutes: int, system: str = "sap-s4", record_keys: dict | None = None, **changes: object
) -> SimEvent:
    record = {"event_id": f"{kind}-{minutes}", "system": system, "kind": kind, "status": status}
    record["business_keys"] = record_keys if record_keys is not None else {"order": "SO-1"}
    at = T0 + timedelta(minutes=minutes)
    return replace(SimEvent(record=record, channel="native", occurred_at=at, deliver_at=at), **changes)


def txn(*events: SimEvent) -> BusinessTransaction:
    return BusinessTransaction(
        number=1, process="order-to-cash", started_at=T0, failure="erp_timeout", events=list(events)
    )


def test_a_transaction_is_failed_as_delivered_only_while_no_later_success_of_its_system_made_the_failure_good():
    failed = txn(sim_event("order.created", "ok", 0), sim_event("invoice.post", "error", 5))
    # A retry reported under another name (the posted document after "post failed") makes it good, as in correlation.
    retried = txn(*failed.events, sim_event("invoice.posted", "ok", 30))
    # A success of another system does not.
    elsewhere = txn(*failed.events, sim_event("payment.received", "ok", 40, system="stripe-payments"))
    # A failure whose record was malformed never reached the console as an event: a dead letter, not a failed step.
    malformed = txn(sim_event("order.created", "ok", 0), sim_event("invoice.post", "error", 5, malformed=True))
    stats = RunStats()
    stats.count_transactions([failed, retried, elsewhere, malformed])
    assert stats.failed == 2 and stats.transactions == 4
    assert delivered_facts(retried)["sap-s4|invoice.post"]["status"] == "error"
    assert "sap-s4|invoice.post" not in delivered_facts(malformed)


def test_a_dead_lettered_record_that_was_the_only_link_splits_the_transaction_as_correlation_will():
    # The SAP sales order is the only event naming both the contract and the order (with its ERP leading zeros).
    contract = {"contract": "C-1", "customer": "105041"}
    order = {"order": "430111", "invoice": "90330111"}
    events = [
        sim_event("contract.approved", "ok", 0, system="salesforce-crm", record_keys=contract),
        sim_event("SalesOrder.Created", "ok", 5, record_keys={"order": "0000430111", "contract": "C-1"}),
        sim_event("invoice.posted", "ok", 9, system="zuora-billing", record_keys=order),
    ]
    correlating = frozenset({"contract", "order", "invoice"})
    assert delivered_parts(txn(*events), correlating) == 1
    broken = txn(events[0], replace(events[1], malformed=True), events[2])
    assert delivered_parts(broken, correlating) == 2
    stats = RunStats()
    stats.count_transactions([txn(*events), broken], correlating)
    assert (stats.transactions, stats.split) == (3, 1)
    assert any("1 business transactions correlate as two or more" in line for line in stats.summary())


def test_the_success_record_is_the_replayed_step_succeeded_now_under_the_idempotency_key():
    payload = {
        "occurred_at": "2026-11-30T09:05:00+00:00",
        "system": "sap-s4",
        "kind": "invoice.post",
        "business_keys": {"invoice": "90001234"},
        "entity": "DE01",
        "amount": "125.00",
        "currency": "EUR",
        "attributes": {"region": "EMEA"},
        "error": {"code": "504", "message": "timeout", "type": "Timeout"},
    }
    record = success_record(system="sap-s4", replay_id="r-1", payload=payload)
    assert record["status"] == "ok" and "error" not in record
    assert record["event_id"] == "replay-r-1" and record["attributes"] == {"region": "EMEA", "idempotency_key": "r-1"}
    assert record["business_keys"] == {"invoice": "90001234"} and record["kind"] == "invoice.post"
    assert record["occurred_at"] != payload["occurred_at"]


@pytest.mark.django_db(transaction=True)
def test_the_estate_answers_a_replay_and_reports_the_redone_step_through_ingest_once():
    answers: list[tuple[str, int, int]] = []
    target = EstateReplayTarget(delivered=lambda r, o: answers.append((r["system"], o.accepted, o.duplicates))).start()
    try:
        url = target.url_for("zuora-billing")
        body = json.dumps({"system": "zuora-billing", "kind": "invoice.post", "business_keys": {"invoice": "INV-7"}})
        headers = {"Idempotency-Key": "r-42", "Content-Type": "application/json"}
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
        assert target.wait_for(1)
        # A resent replay (same Idempotency-Key) is a duplicate delivery, not a second success.
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
        assert target.wait_for(2)
        # What it cannot act on, it refuses without storing anything.
        assert (
            requests.post(target.url_for("no-such-system"), data=body, headers=headers, timeout=10).status_code == 404
        )
        assert requests.post(url, data=body, headers={}, timeout=10).status_code == 400
        assert requests.post(url, data=b"{not json", headers=headers, timeout=10).status_code == 400
        assert requests.post(url, data=b'{"system": "x"}', headers=headers, timeout=10).status_code == 422
    finally:
        target.stop()
    assert answers == [("zuora-billing", 1, 0), ("zuora-billing", 0, 1)]
    event = Event.objects.get()
    assert (event.system, event.kind, event.status) == ("zuora-billing", "invoice.post", "ok")
    assert event.attributes["idempotency_key"] == "r-42" and event.business_keys == {"invoice": "INV-7"}
