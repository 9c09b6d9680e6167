"""The one place test data is built: users, canonical events, failures, and the ingest -> correlate -> classify chain
run in-process. Fixtures (in the conftest files) call these; tests import them from here."""

import json
from datetime import UTC, date, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from exceptions.reference import exceptions_reference_data_load
from exceptions.services import failures_classify
from transactions.models import Event, IngestBatch, IngestSource
from transactions.native import decode_native
from transactions.reference import process_reference_data_load
from transactions.services import batch_correlate, records_ingest

PASSWORD = "correct horse battery staple"
# The moment the simulated histories of the tests start.
T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)
_counter = iter(range(1, 10**9))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


# ---- Events ---------------------------------------------------------------------------------------------------------


def canonical(**overrides: object) -> dict:
    """A canonical event (the native API's format, ARCHITECTURE.md) with the given fields replaced."""
    record = {
        "event_id": "evt-1",
        "occurred_at": "2026-05-18T10:15:02Z",
        "system": "salesforce-crm",
        "kind": "contract.approved",
        "status": "ok",
        "duration_ms": 120,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "business_keys": {"contract": "C-1001", "customer": "ACME-01"},
        "entity": "DE01",
        "amount": "125000.00",
        "currency": "EUR",
        "approval": {"actor": "j.doe", "decision": "approved", "step": "deal-desk"},
        "attributes": {"region": "EMEA"},
    }
    record.update(overrides)
    return record


def at(hours: float) -> str:
    """T0 plus `hours`, as the native API writes times."""
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def event(event_id, kind, hours, *, trace=None, span=None, status="ok", **keys) -> dict:
    """A step of a simulated process: `kind` at T0 + `hours`, linked by trace/span and business keys."""
    return canonical(
        event_id=event_id,
        kind=kind,
        occurred_at=at(hours),
        trace_id=trace,
        span_id=span,
        status=status,
        error={"code": "E1", "message": "boom"} if status == "error" else None,
        business_keys=keys,
        approval=None,
    )


def failure(
    kind="order.create",
    system="sap-s4",
    code="V1/154",
    message="Credit check failed for SO 4711: exposure EUR 125,000.00 exceeds limit",
    hours=0.0,
    amount="125000.00",
    **keys,
) -> dict:
    """A failed record with a fresh event id (an order key of its own unless `keys` are given)."""
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


# ---- The pipeline, in-process ---------------------------------------------------------------------------------------


def reference_data_load() -> None:
    """What `load_reference_data` loads: processes, taxonomy, rules and queues."""
    process_reference_data_load()
    exceptions_reference_data_load()


def ingest(source: IngestSource, *records: dict) -> IngestBatch:
    """Store records through the native ingest service; every one must be accepted."""
    outcome = records_ingest(
        source=source,
        channel="native",
        records=decode_native(json.dumps(list(records)).encode(), content_type="application/json"),
    )
    assert not outcome.rejected, outcome.rejected
    return IngestBatch.objects.get(pk=outcome.batch_id)


def ingest_and_correlate(source: IngestSource, *records: dict, now: datetime | None = None) -> dict:
    return batch_correlate(batch_id=ingest(source, *records).pk, now=now or T0 + timedelta(hours=1))


def failures_raise(source: IngestSource, *records: dict) -> list[int]:
    """Ingest, correlate and classify failure records (as the tasks would, in order); returns the event ids."""
    batch = ingest(source, *records)
    batch_correlate(batch_id=batch.pk)
    ids = list(Event.objects.filter(batch_id=batch.pk).values_list("id", flat=True))
    failures_classify(event_ids=ids)
    return ids


# ---- slas -----------------------------------------------------------------------------------------------------------

OFFICE_HOURS = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "slas.BusinessCalendar"

    slug = factory.Sequence(lambda n: f"calendar-{n}")
    name = factory.LazyAttribute(lambda c: c.slug.title())
    time_zone = "Europe/Berlin"
    working_hours = factory.LazyFunction(lambda: {k: [list(i) for i in v] for k, v in OFFICE_HOURS.items()})


class HolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "slas.Holiday"

    calendar = factory.SubFactory(BusinessCalendarFactory)
    date = factory.Sequence(lambda n: date(2030, 1, 1) + timedelta(days=n))
    name = "Holiday"


class SlaDefinitionFactory(factory.django.DjangoModelFactory):
    """Contract approved -> invoice posted within 4 business hours (Berlin office hours), at risk from 80%."""

    class Meta:
        model = "slas.SlaDefinition"

    slug = factory.Sequence(lambda n: f"sla-{n}")
    name = factory.LazyAttribute(lambda d: f"SLA {d.slug}")
    start_kind = "contract.approved"
    stop_kind = "invoice.posted"
    target = timedelta(hours=4)
    calendar = factory.SubFactory(BusinessCalendarFactory)
    at_risk_percent = 80
    breach_category_slug = "control"


def audit_tamper(sql: str, params: list) -> None:
    """Change the audit table behind the application's back, as a DBA could (the trigger is bypassed on purpose)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE console_auditentry DISABLE TRIGGER audit_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE console_auditentry ENABLE TRIGGER audit_append_only")
