import json
from datetime import UTC, datetime, timedelta

import pytest

from exceptions.reference import exceptions_reference_data_load
from exceptions.services import failures_classify
from transactions.models import Event
from transactions.native import decode_native
from transactions.reference import process_reference_data_load
from transactions.services import batch_correlate, ingest_source_create, records_ingest

T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def failure(
    kind="order.create",
    system="sap-s4",
    code="V1/154",
    message="Credit check failed for SO 4711: exposure EUR 125,000.00 exceeds limit",
    hours=0.0,
    amount="125000.00",
    **keys,
) -> dict:
    n = next(_counter)
    return {
        "event_id": f"f-{n}",
        "occurred_at": (T0 + timedelta(hours=hours)).isoformat(),
        "system": system,
        "kind": kind,
        "status": "error",
        "error": {"code": code, "message": message, "type": "SAP.SD.CreditCheckFailed"},
        "amount": amount,
        "currency": "EUR",
        "entity": "DE01",
        "business_keys": keys or {"order": f"SO-{n}"},
    }


@pytest.fixture
def reference(db):
    process_reference_data_load()
    exceptions_reference_data_load()


@pytest.fixture
def source(db):
    return ingest_source_create(name="erp", actor="system:test")


@pytest.fixture
def raise_failures(source, reference):
    """Ingest, correlate and classify failure records (as the tasks would, in order); returns the event ids."""

    def run(*records: dict) -> list[int]:
        outcome = records_ingest(
            source=source,
            channel="native",
            records=decode_native(json.dumps(list(records)).encode(), content_type="application/json"),
        )
        assert not outcome.rejected, outcome.rejected
        batch_correlate(batch_id=outcome.batch_id)
        ids = list(Event.objects.filter(batch_id=outcome.batch_id).values_list("id", flat=True))
        failures_classify(event_ids=ids)
        return ids

    return run
