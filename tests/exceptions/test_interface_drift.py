"""Interface drift: a catalogued interface silent past its expected frequency opens a `platform` case in its owner's
queue, once per silence."""

from datetime import date, timedelta

import pytest

from exceptions.models import Case, Queue
from exceptions.services import interface_silence_raise
from tests.factories import T0, at, canonical, ingest_and_correlate, reference_data_load
from transactions.models import Interface
from transactions.services import CatalogueInput, catalogue_entry_update, interface_map_rebuild


@pytest.fixture
def interface(db, settings):
    settings.DASHBOARD_TIME_ZONE = "UTC"
    reference_data_load()
    from transactions.services import ingest_source_create

    source = ingest_source_create(name="gw", actor="system:test")
    records = [
        canonical(
            event_id=f"e{n}",
            system=system,
            kind=kind,
            occurred_at=at(n),
            trace_id=None,
            span_id=None,
            approval=None,
            business_keys={"order": "SO-1"},
        )
        for n, (system, kind) in enumerate([("zuora-billing", "invoice.created"), ("sap-s4", "invoice.posted")])
    ]
    ingest_and_correlate(source, *records)
    interface_map_rebuild(first=date(2026, 5, 18), last=date(2026, 5, 18))
    return Interface.objects.get()


def _catalogue(iface, **facts):
    return catalogue_entry_update(obj=iface, entry=CatalogueInput(**facts), actor="system:test", version=None)


@pytest.mark.django_db
def test_silence_past_the_expected_frequency_opens_one_case_in_the_owners_queue(interface):
    billing = Queue.objects.get(slug="billing")
    _catalogue(interface, owner_team="Billing ops", owner_queue="billing", expected_every=timedelta(days=1))
    last = T0 + timedelta(hours=1)
    assert interface_silence_raise(now=last + timedelta(hours=23)) == 0  # within a day: not silent yet
    assert interface_silence_raise(now=last + timedelta(days=2)) == 1
    case = Case.objects.get()
    assert (case.category.slug, case.queue_id, case.system) == ("platform", billing.pk, "sap-s4")
    assert "zuora-billing -> sap-s4" in case.title
    assert interface_silence_raise(now=last + timedelta(days=3)) == 0  # the same silence: no second occurrence
    assert Case.objects.get().occurrence_count == 1


@pytest.mark.django_db
def test_interfaces_without_an_expected_frequency_are_never_silent(interface):
    _catalogue(interface, owner_queue="billing")
    assert interface_silence_raise(now=T0 + timedelta(days=30)) == 0
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_an_unknown_owner_queue_leaves_the_case_to_the_routing_rules(interface):
    _catalogue(interface, owner_queue="no-such-queue", expected_every=timedelta(hours=4))
    assert interface_silence_raise(now=T0 + timedelta(days=1)) == 1
    assert Case.objects.get().queue_id is not None
