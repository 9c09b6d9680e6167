"""Interface drift: a catalogued interface silent past its expected frequency opens a `platform` case in its owner's
queue, once per silence; a new interface nobody catalogued opens a `notice` in its systems' owner queue, once, never
for history and never while the installation learns its estate, and a wave of them is one case."""

from datetime import date, timedelta

import pytest

from exceptions.models import Case, Queue
from exceptions.services import interface_new_raise, interface_silence_raise
from tests.factories import T0, at, canonical, ingest_and_correlate, reference_data_load
from transactions.models import IngestBatch, Interface, InterfaceHop, Transaction
from transactions.services import (
    CatalogueInput,
    catalogue_entry_update,
    interface_hops_refresh,
    interface_map_rebuild,
)


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


# ---- A new interface ------------------------------------------------------------------------------------------------


def _hand_over(source, a, b, *, hours, discovered):
    """One transaction handing an order over from system a to system b at T0 + hours; discovery runs at `discovered`
    (what the discovery task does after correlation, at the time it runs)."""
    order = f"SO-{a}-{b}-{hours}"
    records = [
        canonical(
            event_id=f"{order}-{n}",
            system=system,
            kind=kind,
            occurred_at=at(hours + n / 2),
            trace_id=None,
            span_id=None,
            approval=None,
            business_keys={"order": order},
        )
        for n, (system, kind) in enumerate([(a, "order.created"), (b, "order.posted")])
    ]
    ingest_and_correlate(source, *records, now=T0 + timedelta(hours=hours + 1))
    interface_hops_refresh(txn_ids=list(Transaction.objects.values_list("pk", flat=True)), now=discovered)
    return Interface.objects.get(source__name=a, target__name=b)


@pytest.fixture
def watched(db, settings):
    """An installation that has watched its estate for a month (learning is over) and knows crm -> erp."""
    settings.DASHBOARD_TIME_ZONE = "UTC"
    settings.INTERFACE_NEW_LEARNING_DAYS = 7
    settings.INTERFACE_NEW_WAVE = 3
    reference_data_load()
    from transactions.services import ingest_source_create

    source = ingest_source_create(name="gw", actor="system:test")
    _hand_over(source, "crm", "erp", hours=-30 * 24, discovered=T0 - timedelta(days=30, hours=-1))
    IngestBatch.objects.update(received_at=T0 - timedelta(days=30))
    return source


def _notices():
    return Case.objects.filter(category__slug="notice")


@pytest.mark.django_db
def test_a_new_interface_raises_one_notice_in_its_target_systems_owner_queue_once(watched):
    iface = _hand_over(watched, "crm", "billing", hours=0, discovered=T0 + timedelta(hours=1))
    _catalogue(iface.target, owner_team="Billing ops", owner_queue="billing")
    assert interface_new_raise(now=T0 + timedelta(hours=2)) == 1
    case = _notices().get()
    first_txn = InterfaceHop.objects.get(interface=iface).txn_id
    assert (case.queue.slug, case.system, case.category.severity) == ("billing", "billing", "low")
    assert case.title == "New interface: crm -> billing"
    assert case.occurrences.get().txn_id == first_txn
    # The known interface (discovered while learning) is no news; the next runs, a sweep and a rebuild add nothing.
    assert interface_new_raise(now=T0 + timedelta(hours=3)) == 0
    interface_map_rebuild(first=date(2026, 4, 1), last=date(2026, 5, 19))
    interface_hops_refresh(txn_ids=list(Transaction.objects.values_list("pk", flat=True)))
    assert interface_new_raise(now=T0 + timedelta(days=2)) == 0
    assert _notices().get().occurrence_count == 1 and Case.objects.count() == 1


@pytest.mark.django_db
def test_the_source_systems_owner_queue_else_the_routing_rules(watched):
    tax = _hand_over(watched, "crm", "tax", hours=0, discovered=T0 + timedelta(hours=1))
    _catalogue(tax.source, owner_queue="accounts-receivable")
    _hand_over(watched, "erp", "bank", hours=0, discovered=T0 + timedelta(hours=1))
    assert interface_new_raise(now=T0 + timedelta(hours=2)) == 2
    queues = {c.title: c.queue.slug for c in _notices()}
    assert queues == {
        "New interface: crm -> tax": "accounts-receivable",
        # Nobody claims it: the reference routing rule sends notices to the integration team.
        "New interface: erp -> bank": "integration-platform",
    }


@pytest.mark.django_db
def test_history_loaded_or_rebuilt_raises_no_notice(watched):
    # A backfill: traffic of three days ago discovered now (a first import of a year of history looks the same).
    _hand_over(watched, "erp", "archive", hours=0, discovered=T0 + timedelta(days=3))
    # A rebuild after the discovery rules changed finds pairs in old traffic.
    interface_map_rebuild(first=date(2026, 4, 1), last=date(2026, 5, 19))
    assert interface_new_raise(now=T0 + timedelta(days=3, hours=1)) == 0
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_nothing_is_news_while_the_installation_learns_its_estate(watched):
    IngestBatch.objects.update(received_at=T0 - timedelta(days=2))  # installed two days before
    _hand_over(watched, "crm", "billing", hours=0, discovered=T0 + timedelta(hours=1))
    assert interface_new_raise(now=T0 + timedelta(hours=2)) == 0
    # Learning ends on day 7; what was discovered before stays known.
    assert interface_new_raise(now=T0 + timedelta(days=6)) == 0
    _hand_over(watched, "crm", "tax", hours=5 * 24 + 1, discovered=T0 + timedelta(days=5, hours=2))
    assert interface_new_raise(now=T0 + timedelta(days=5, hours=3)) == 1
    assert _notices().get().title == "New interface: crm -> tax"


@pytest.mark.django_db
def test_an_interface_catalogued_before_the_job_ran_is_expected(watched):
    iface = _hand_over(watched, "crm", "billing", hours=0, discovered=T0 + timedelta(hours=1))
    _catalogue(iface, owner_team="Billing ops", criticality="high")
    assert interface_new_raise(now=T0 + timedelta(hours=2)) == 0
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_wave_of_new_interfaces_is_one_case(watched, client, role_user):
    for n in range(4):  # more than INTERFACE_NEW_WAVE (3) in one pass
        _hand_over(watched, "ipaas", f"app-{n}", hours=n, discovered=T0 + timedelta(hours=n + 1))
    assert interface_new_raise(now=T0 + timedelta(hours=6)) == 4
    case = _notices().get()
    assert (case.title, case.occurrence_count, case.queue.slug) == (
        "Many new interfaces discovered at once",
        4,
        "integration-platform",
    )
    assert interface_new_raise(now=T0 + timedelta(hours=7)) == 0
    # Its occurrences name the interfaces, on the case page as on every case.
    client.force_login(role_user("manager"))
    page = client.get(f"/cases/{case.pk}/")
    assert page.status_code == 200
    assert all(f"ipaas -&gt; app-{n}" in page.content.decode() for n in range(4))


@pytest.mark.django_db
def test_a_wave_that_trickles_in_over_a_day_joins_its_case_past_the_limit(watched):
    for n in range(2):
        _hand_over(watched, "ipaas", f"app-{n}", hours=n, discovered=T0 + timedelta(hours=n + 1))
    assert interface_new_raise(now=T0 + timedelta(hours=3)) == 2
    for n in range(2, 4):
        _hand_over(watched, "ipaas", f"app-{n}", hours=n, discovered=T0 + timedelta(hours=n + 1))
    assert interface_new_raise(now=T0 + timedelta(hours=6)) == 2
    titles = sorted((c.title, c.occurrence_count) for c in _notices())
    # The third within a day is still a notice of its own; the fourth is past the limit: the wave's.
    assert titles == [
        ("Many new interfaces discovered at once", 1),
        ("New interface: ipaas -> app-0", 1),
        ("New interface: ipaas -> app-1", 1),
        ("New interface: ipaas -> app-2", 1),
    ]
    # A day later the estate is quiet again: the next new interface is a notice of its own.
    _hand_over(watched, "ipaas", "app-9", hours=30, discovered=T0 + timedelta(hours=31))
    assert interface_new_raise(now=T0 + timedelta(hours=32)) == 1
    assert _notices().filter(title="New interface: ipaas -> app-9").exists()


@pytest.mark.django_db
def test_a_new_interface_is_news_for_a_month(watched):
    _hand_over(watched, "crm", "billing", hours=0, discovered=T0 + timedelta(hours=1))
    assert interface_new_raise(now=T0 + timedelta(days=31)) == 0  # the job was stopped for a month: stale news
    assert interface_new_raise(now=T0 + timedelta(days=29)) == 1
