import json
from datetime import UTC, datetime, timedelta

import pytest

from exceptions.reference import exceptions_reference_data_load
from transactions.models import Event, TransactionEvent
from transactions.native import decode_native
from transactions.reference import process_reference_data_load
from transactions.services import batch_correlate, ingest_source_create, records_ingest

# Monday 18 May 2026, 10:00 UTC = 12:00 in Berlin (office hours 08:00-18:00 there).
T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def event(kind: str, *, hours: float = 0.0, system: str = "sap-s4", status: str = "ok", **keys: str) -> dict:
    """A canonical record `hours` after T0; business keys as keyword arguments (contract="C-1")."""
    n = next(_counter)
    record = {
        "event_id": f"e-{n}",
        "occurred_at": (T0 + timedelta(hours=hours)).isoformat(),
        "system": system,
        "kind": kind,
        "status": status,
        "entity": "DE01",
        "business_keys": keys,
    }
    if status == "error":
        record["error"] = {"code": "TaxCodeMismatch", "message": "Tax code P0000000 does not match", "type": "Tax"}
    return record


@pytest.fixture
def reference(db):
    process_reference_data_load()
    exceptions_reference_data_load()


@pytest.fixture
def source(db):
    return ingest_source_create(name="estate", actor="system:test")


@pytest.fixture
def store(source, reference):
    """Ingest records (not yet correlated); returns the batch id."""

    def run(*records: dict) -> int:
        outcome = records_ingest(
            source=source,
            channel="native",
            records=decode_native(json.dumps(list(records)).encode(), content_type="application/json"),
        )
        assert not outcome.rejected, outcome.rejected
        return outcome.batch_id

    return run


@pytest.fixture
def ingest(store):
    """Ingest and correlate records as the tasks would; returns the ids of the transactions they landed in."""

    def run(*records: dict) -> list[int]:
        batch_id = store(*records)
        batch_correlate(batch_id=batch_id)
        event_ids = Event.objects.filter(batch_id=batch_id).values_list("id", flat=True)
        return sorted(set(TransactionEvent.objects.filter(event_id__in=event_ids).values_list("txn_id", flat=True)))

    return run


@pytest.fixture
def frozen_now(monkeypatch):
    """Pages and the API compute clock times at timezone.now(): freeze it (freeze(moment))."""

    def freeze(moment: datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

    return freeze
