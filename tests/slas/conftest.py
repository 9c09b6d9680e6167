import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from exceptions import services as case_services
from exceptions.reference import exceptions_reference_data_load
from slas.models import BusinessCalendar
from transactions.models import Event, IngestBatch, IngestSource, TransactionEvent
from transactions.native import decode_native
from transactions.reference import process_reference_data_load
from transactions.services import batch_correlate, ingest_source_create, records_ingest

# Monday 18 May 2026, 10:00 UTC = 12:00 in Berlin (office hours 08:00-18:00 there).
T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


@pytest.fixture(autouse=True)
def _pace_computed_afresh():
    """A process's pace is kept per process id and day for the life of the process; on SQLite a rolled-back test's
    ids come back in the next test, which would read the previous test's pace."""
    from slas.selectors import _PACE_BY_DAY

    _PACE_BY_DAY.clear()
    yield
    _PACE_BY_DAY.clear()


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


# ---- Silence (stalls, monitors): records at chosen times, and what slas asks of the case machinery ---------------

OFFICE = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # Berlin is UTC+1 in winter: working hours 07:00-17:00 UTC


@dataclass
class CaseSignals:
    """What the slas services asked the case machinery to do, in order."""

    recorded: list[dict] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)

    def keys(self) -> list[str]:
        return [r["signal_key"] for r in self.recorded]


@pytest.fixture
def case_signals(monkeypatch) -> CaseSignals:
    """Records the calls to exceptions' case-raising API, to check what slas asks for (not what exceptions does)."""
    signals = CaseSignals()

    def record(**kwargs):
        signals.recorded.append(kwargs)

    def record_many(batch, **kwargs):
        signals.recorded.extend(asdict(signal) for signal in batch)
        return {signal.signal_key: None for signal in batch}  # as if each opened a case

    def resolve(**kwargs):
        signals.resolved.append(kwargs)

    monkeypatch.setattr(case_services, "signal_record", record)
    monkeypatch.setattr(case_services, "signals_record_isolated", record_many)
    monkeypatch.setattr(case_services, "signal_resolve", resolve)
    return signals


@pytest.fixture
def calendar(db) -> BusinessCalendar:
    return BusinessCalendar.objects.create(
        slug="berlin-office", name="Berlin office", time_zone="Europe/Berlin", working_hours=OFFICE
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def make_record(event_id: str, kind: str, at: datetime, *, system: str = "sap-s4", **fields) -> dict:
    base = {
        "event_id": event_id,
        "occurred_at": iso(at),
        "system": system,
        "kind": kind,
        "status": "ok",
        "business_keys": {},
    }
    return {**base, **fields}


def ingest_batch(source: IngestSource, records: list[dict], *, received_at: datetime) -> IngestBatch:
    outcome = records_ingest(
        source=source,
        channel="native",
        records=decode_native(json.dumps(records).encode(), content_type="application/json"),
        received_at=received_at,
    )
    assert not outcome.rejected, outcome.rejected
    return IngestBatch.objects.get(pk=outcome.batch_id)


def ingest_and_correlate(source: IngestSource, records: list[dict], *, received_at: datetime) -> dict:
    batch = ingest_batch(source, records, received_at=received_at)
    return batch_correlate(batch_id=batch.pk, now=received_at + timedelta(seconds=1))
