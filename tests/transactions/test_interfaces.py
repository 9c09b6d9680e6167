"""Interface discovery (pure) and its stored hops and daily rollups, on fixtures whose hops are known by hand."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from tests.factories import T0, at, canonical, ingest, ingest_and_correlate
from transactions.interfaces import (
    LATENCY_ERROR,
    LINK,
    SEQUENCE,
    SPAN,
    StepEvent,
    bucket_value,
    discover_hops,
    event_channel,
    histogram_add,
    histogram_merge,
    histogram_percentiles,
    latency_bucket,
    latency_histogram,
    percentile,
    whole_months,
)
from transactions.models import Interface, InterfaceDaily, InterfaceDirtyDay, InterfaceHop, System, Transaction
from transactions.services import batch_correlate, interface_hops_refresh, interface_rollups_refresh

LATE = timedelta(minutes=15)


def step(event_id, system, kind, minutes, *, duration_ms=0, status="ok", received_after=0, **extra) -> StepEvent:
    occurred = T0 + timedelta(minutes=minutes)
    return StepEvent(
        event_id=event_id,
        occurred_at=occurred,
        received_at=occurred + timedelta(minutes=received_after),
        system=system,
        kind=kind,
        status=status,
        duration_ms=duration_ms,
        channel="native",
        **extra,
    )


# ---- pure discovery -------------------------------------------------------------------------------------------------


def test_three_system_chain_hops_from_end_of_step_to_start_of_next():
    hops = discover_hops(
        [
            step(1, "crm", "order.created", 0, duration_ms=2000),
            step(2, "crm", "order.approved", 1, duration_ms=500),  # the crm step ends at 1 min 0.5 s
            step(3, "ipaas", "order.mapped", 3, duration_ms=1000),
            step(4, "erp", "order.posted", 10, status="error"),
        ],
        late_after=LATE,
    )
    assert [(h.source, h.target, h.via) for h in hops] == [("crm", "ipaas", SEQUENCE), ("ipaas", "erp", SEQUENCE)]
    assert hops[0].latency_ms == 2 * 60_000 - 500
    assert hops[1].latency_ms == 7 * 60_000 - 1000
    assert [h.error for h in hops] == [False, True]
    assert [h.kind for h in hops] == ["order.mapped", "order.posted"]
    assert not any(h.duplicate or h.late for h in hops)


def test_async_hand_over_by_span_link_hours_later_replaces_the_time_order_guess():
    producer = step(1, "erp", "invoice.posted", 0, duration_ms=1000, trace_id="t1", span_id="s1")
    other = step(2, "tax", "tax.calculated", 60, trace_id="t1", span_id="s2")
    consumer = step(
        3,
        "billing",
        "invoice.received",
        5 * 60,
        trace_id="t2",
        span_id="s3",
        links=[{"trace_id": "t1", "span_id": "s1"}],
        received_after=30,
        attributes={"messaging.system": "kafka"},
    )
    hops = discover_hops([consumer, other, producer], late_after=LATE)
    assert [(h.source, h.target, h.via) for h in hops] == [("erp", "tax", SEQUENCE), ("erp", "billing", LINK)]
    link = hops[1]
    assert link.latency_ms == 5 * 3_600_000 - 1000  # from the producer's end, not the previous step's
    assert link.late  # received half an hour after it occurred
    assert link.channel == "event"


def test_span_parent_child_across_systems_is_a_call():
    client = step(1, "ipaas", "order.send", 0, duration_ms=5000, trace_id="t", span_id="a")
    server = step(2, "erp", "order.create", 0.01, trace_id="t", span_id="b", parent_span_id="a")
    inner = step(3, "erp", "order.check", 0.02, trace_id="t", span_id="c", parent_span_id="b")
    hops = discover_hops([client, server, inner], late_after=LATE)
    assert [(h.source, h.target, h.via, h.latency_ms) for h in hops] == [("ipaas", "erp", SPAN, 600)]


def test_same_kind_handed_over_twice_is_a_duplicate():
    hops = discover_hops(
        [
            step(1, "erp", "invoice.posted", 0),
            step(2, "billing", "invoice.received", 1),
            step(3, "erp", "invoice.posted", 2),
            step(4, "billing", "invoice.received", 3),
        ],
        late_after=LATE,
    )
    assert [(h.source, h.target, h.duplicate) for h in hops] == [
        ("erp", "billing", False),
        ("billing", "erp", False),
        ("erp", "billing", True),
    ]


@pytest.mark.parametrize(
    ("attributes", "channel"),
    [
        ({"finance.channel": "Batch"}, "batch"),
        ({"messaging.system": "rabbitmq"}, "event"),
        ({"messaging.destination.name": "orders"}, "event"),
        ({"http.request.method": "POST"}, "api"),
        ({"http.method": "GET"}, "api"),
        ({"file.path": "/sftp/in/payments.csv"}, "file"),
        ({"file.name": "MT940.txt"}, "file"),
        ({"region": "EMEA"}, ""),
    ],
)
def test_declared_channel_from_semantic_convention_attributes(attributes, channel):
    assert event_channel(step(1, "a", "k", 0, attributes=attributes)) == channel


def test_percentiles():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def test_latency_buckets_hold_values_within_the_stated_error():
    assert latency_bucket(0) == 0 and bucket_value(0) == 0
    for ms in (1, 2, 3, 7, 999, 1000, 1001, 59_999, 3_600_000, 86_400_000, 10**10):
        assert abs(bucket_value(latency_bucket(ms)) - ms) <= LATENCY_ERROR * ms * (1 + 1e-12), ms
    # Buckets are ordered like the values (a percentile walks them in order).
    values = [0, 1, 2, 3, 100, 101, 102, 5000, 5001, 10**6]
    assert [latency_bucket(ms) for ms in values] == sorted(latency_bucket(ms) for ms in values)


@pytest.mark.parametrize("seed", range(5))
def test_histogram_percentiles_are_within_the_error_of_exact_ones_and_add_up(seed):
    import random

    rng = random.Random(seed)
    days = [
        [rng.choice([0, rng.randrange(1, 100), rng.randrange(1000, 20_000_000)]) for _ in range(rng.randrange(1, 80))]
        for _ in range(6)
    ]
    merged = histogram_merge(latency_histogram(d) for d in days)
    every = [ms for d in days for ms in d]
    assert merged == latency_histogram(every)  # a range's histogram is the sum of its days'
    total: list[int] = []
    histogram_add(total, merged)
    assert sum(total) == len(every) and merged[1] and merged[-1]  # stored from the first to the last non-empty bucket
    for p in (0, 5, 50, 95, 99, 100):
        (found,) = histogram_percentiles(total, (p,))
        exact = percentile(every, p)
        assert abs(found - exact) <= LATENCY_ERROR * exact * (1 + 1e-12), (p, found, exact)
    assert histogram_percentiles([], (50, 95)) == [None, None]


def test_whole_months_of_a_range():
    assert whole_months(date(2026, 4, 20), date(2026, 6, 10)) == [date(2026, 5, 1)]
    assert whole_months(date(2026, 5, 1), date(2026, 5, 31)) == [date(2026, 5, 1)]
    assert whole_months(date(2026, 5, 1), date(2026, 5, 30)) == []
    assert whole_months(date(2025, 12, 3), date(2026, 12, 3)) == [date(2026, m, 1) for m in range(1, 12)]
    assert whole_months(date(2024, 1, 31), date(2024, 3, 31)) == [date(2024, 2, 1), date(2024, 3, 1)]


# ---- stored hops and rollups ----------------------------------------------------------------------------------------


def native(event_id, system, kind, hours, *, status="ok", duration_ms=0, trace_id=None, span_id=None, **keys):
    """A native record whose business keys are exactly `keys` (no default contract tying every test event)."""
    return canonical(
        event_id=event_id,
        system=system,
        kind=kind,
        occurred_at=at(hours),
        status=status,
        duration_ms=duration_ms,
        error={"code": "E1", "message": "rejected"} if status == "error" else None,
        trace_id=trace_id,
        span_id=span_id,
        approval=None,
        business_keys=keys,
    )


def _figures() -> dict:
    return {
        (d.interface.source.name, d.interface.target.name, d.day): (
            d.volume,
            d.errors,
            d.duplicates,
            d.late,
            d.latency_p50_ms,
            d.latency_p95_ms,
        )
        for d in InterfaceDaily.objects.select_related("interface__source", "interface__target")
    }


@pytest.fixture(autouse=True)
def _history_is_not_late(settings):
    """The fixtures' events occurred in May 2026 and are received now: only the test about lateness counts it."""
    settings.INTERFACE_LATE_AFTER_SECONDS = 10 * 365 * 86400


@pytest.fixture
def crm(db):
    from transactions.services import ingest_source_create

    return ingest_source_create(name="crm-gw", actor="system:test")


def test_correlated_batch_gives_hops_and_daily_figures(crm, settings):
    # Three orders crm -> ipaas -> erp with ipaas latencies 1, 2 and 10 minutes; the last erp step failed.
    records = []
    for n, minutes in enumerate([1, 2, 10], start=1):
        o = {"order": f"SO-{n}"}
        records += [
            native(f"c{n}", "crm", "order.created", 0, duration_ms=60_000, **o),
            native(f"i{n}", "ipaas", "order.mapped", (1 + minutes) / 60, **o),
            native(f"e{n}", "erp", "order.posted", (1 + minutes + 5) / 60, status="error" if n == 3 else "ok", **o),
        ]
    batch = ingest(crm, *records)
    result = batch_correlate(batch_id=batch.pk, now=T0 + timedelta(hours=1))
    txn_ids = list(Transaction.objects.values_list("pk", flat=True))
    assert result["transactions"] == 3
    interface_hops_refresh(txn_ids=txn_ids)
    assert InterfaceHop.objects.count() == 6
    assert set(System.objects.values_list("name", flat=True)) == {"crm", "ipaas", "erp"}
    assert list(InterfaceDirtyDay.objects.values_list("day", flat=True)) == [date(2026, 5, 18)]
    interface_rollups_refresh()
    assert not InterfaceDirtyDay.objects.exists()
    day = date(2026, 5, 18)
    # crm -> ipaas: 1, 2, 10 min -> p50 2 min, p95 = 2 + 0.9 * 8 = 9.2 min; ipaas -> erp: 5 min each, one error.
    assert _figures() == {
        ("crm", "ipaas", day): (3, 0, 0, 0, 120_000, 552_000),
        ("ipaas", "erp", day): (3, 1, 0, 0, 300_000, 300_000),
    }
    # Idempotent: deriving and rebuilding again changes nothing.
    interface_hops_refresh(txn_ids=txn_ids)
    interface_rollups_refresh()
    assert InterfaceHop.objects.count() == 6
    assert _figures()[("ipaas", "erp", day)] == (3, 1, 0, 0, 300_000, 300_000)


def test_async_hand_over_on_the_next_day_counts_on_its_own_day(crm, settings):
    settings.INTERFACE_LATE_AFTER_SECONDS = 15 * 60  # received months after it occurred: late
    ingest_and_correlate(
        crm,
        native("p", "erp", "invoice.posted", 13, trace_id="a" * 32, span_id="1" * 16, invoice="INV-1"),
    )
    # Billing picks it up 20 hours later (the next day), linked to the producer's span.
    consumer = native("c", "billing", "invoice.received", 33, trace_id="b" * 32, span_id="2" * 16, invoice="INV-1")
    consumer["links"] = [{"trace_id": "a" * 32, "span_id": "1" * 16}]
    ingest_and_correlate(crm, consumer, now=T0 + timedelta(hours=34))
    txn = Transaction.objects.get()
    interface_hops_refresh(txn_ids=[txn.pk])
    interface_rollups_refresh()
    hop = InterfaceHop.objects.get()
    assert (hop.via, hop.latency_ms, hop.day) == ("link", 20 * 3_600_000, date(2026, 5, 19))
    assert _figures() == {("erp", "billing", date(2026, 5, 19)): (1, 0, 0, 1, 72_000_000, 72_000_000)}


def test_merged_transaction_keeps_the_survivors_hops_only(crm, settings):
    ingest_and_correlate(crm, native("o", "crm", "order.created", 0, order="SO-9"))
    ingest_and_correlate(crm, native("i", "billing", "invoice.created", 2, invoice="INV-9"))
    first, second = Transaction.objects.order_by("pk")
    interface_hops_refresh(txn_ids=[first.pk, second.pk])
    assert not InterfaceHop.objects.exists()  # one system each: nothing handed over yet
    # The ERP posts an order line carrying both keys: the two transactions merge.
    ingest_and_correlate(crm, native("e", "erp", "order.posted", 1, order="SO-9", invoice="INV-9"))
    second.refresh_from_db()
    assert second.merged_into_id == first.pk
    interface_hops_refresh(txn_ids=[first.pk])
    interface_rollups_refresh()
    hops = InterfaceHop.objects.order_by("at")
    assert [(h.txn_id, h.interface.source.name, h.interface.target.name) for h in hops] == [
        (first.pk, "crm", "erp"),
        (first.pk, "erp", "billing"),
    ]
    assert {k[:2]: v[0] for k, v in _figures().items()} == {("crm", "erp"): 1, ("erp", "billing"): 1}


def test_rebuild_command_recomputes_from_scratch(crm, settings):
    ingest_and_correlate(
        crm,
        native("a", "crm", "order.created", 0, order="SO-1"),
        native("b", "erp", "order.posted", 0.5, order="SO-1"),
    )
    InterfaceDaily.objects.all().delete()
    call_command("rebuild_interface_map", "--since", "2026-05-17", "--until", "2026-05-19")
    assert _figures() == {("crm", "erp", date(2026, 5, 18)): (1, 0, 0, 0, 1_800_000, 1_800_000)}
    assert Interface.objects.count() == 1
    with pytest.raises(Exception, match="before"):
        call_command("rebuild_interface_map", "--since", "2026-05-19", "--until", "2026-05-17")


def test_local_day_follows_the_dashboard_time_zone(crm, settings):
    settings.DASHBOARD_TIME_ZONE = "Asia/Tokyo"  # UTC+9: T0 + 5.5 h is 15:30 UTC on 18 May, 00:30 on 19 May there
    ingest_and_correlate(
        crm,
        native("a", "crm", "order.created", 5, order="SO-2"),
        native("b", "erp", "order.posted", 5.5, order="SO-2"),
    )
    interface_hops_refresh(txn_ids=list(Transaction.objects.values_list("pk", flat=True)))
    assert InterfaceHop.objects.get().day == date(2026, 5, 19)
    assert InterfaceHop.objects.get().at == datetime(2026, 5, 19, 0, 30, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_correlation_enqueues_discovery_and_the_periodic_task_rebuilds_the_day(crm, django_capture_on_commit_callbacks):
    from transactions.tasks import refresh_interface_rollups

    with django_capture_on_commit_callbacks(execute=True):
        ingest_and_correlate(
            crm,
            native("a", "crm", "order.created", 0, order="SO-5"),
            native("b", "erp", "order.posted", 0.25, order="SO-5"),
        )
    # The receiver ran the discovery task (in-process in tests): hops stored, the day marked, no rollup yet.
    assert InterfaceHop.objects.count() == 1
    assert not InterfaceDaily.objects.exists()
    refresh_interface_rollups()
    assert _figures() == {("crm", "erp", date(2026, 5, 18)): (1, 0, 0, 0, 900_000, 900_000)}
    assert not InterfaceDirtyDay.objects.exists()


def test_sweep_rederives_hops_a_lost_task_never_wrote(crm):
    from transactions.tasks import refresh_interface_rollups

    ingest_and_correlate(  # no on_commit here: as if the discovery task had been lost with the broker
        crm,
        native("a", "crm", "order.created", 0, order="SO-6"),
        native("b", "erp", "order.posted", 0.5, order="SO-6"),
    )
    assert not InterfaceHop.objects.exists()
    refresh_interface_rollups()
    assert InterfaceHop.objects.count() == 1
    assert _figures() == {("crm", "erp", date(2026, 5, 18)): (1, 0, 0, 0, 1_800_000, 1_800_000)}


def test_sweep_derives_only_what_discovery_left_longest_owed_first(crm, django_capture_on_commit_callbacks):
    from transactions import tasks

    with django_capture_on_commit_callbacks(execute=True):  # discovery ran: nothing owed
        ingest_and_correlate(crm, native("a", "crm", "order.created", 0, order="SO-7"))
    done = Transaction.objects.get()
    assert done.hops_stale_since is None
    # Two lost discovery tasks, their transactions changed at different times; then the derived one changes again.
    for n, hours in ((8, 2), (9, 1)):
        ingest_and_correlate(
            crm, native(f"o{n}", "crm", "order.created", 0, order=f"SO-{n}"), now=T0 + timedelta(hours=hours)
        )
    owed = list(Transaction.objects.exclude(pk=done.pk).order_by("pk"))
    assert [t.hops_stale_since for t in owed] == [T0 + timedelta(hours=2), T0 + timedelta(hours=1)]
    # The longest owed first, whatever the ids: a cap never leaves the oldest behind.
    tasks.INTERFACE_SWEEP_LIMIT, limit = 1, tasks.INTERFACE_SWEEP_LIMIT
    try:
        assert tasks.sweep_interface_hops() == 1
        assert list(Transaction.objects.filter(hops_stale_since__isnull=False)) == [owed[0]]
        assert tasks.sweep_interface_hops() == 1
        assert tasks.sweep_interface_hops() == 0  # nothing owed: the sweep derives nothing again
    finally:
        tasks.INTERFACE_SWEEP_LIMIT = limit
    # A change keeps the first mark while it is owed; a mark newer than the grace is left to its discovery task.
    from django.utils import timezone

    ingest_and_correlate(crm, native("b", "erp", "order.posted", 0.5, order="SO-7"), now=timezone.now())
    assert tasks.sweep_interface_hops() == 0
    Transaction.objects.filter(pk=done.pk).update(hops_stale_since=T0 + timedelta(hours=3))
    ingest_and_correlate(crm, native("c", "erp", "order.checked", 0.6, order="SO-7"), now=timezone.now())
    assert Transaction.objects.get(pk=done.pk).hops_stale_since == T0 + timedelta(hours=3)
    assert tasks.sweep_interface_hops() == 1
    assert InterfaceHop.objects.filter(txn_id=done.pk).count() == 1


def test_merge_leaves_the_absorbed_transaction_unowed(crm):
    ingest_and_correlate(crm, native("o", "crm", "order.created", 0, order="SO-3"))
    ingest_and_correlate(crm, native("i", "billing", "invoice.created", 2, invoice="INV-3"))
    ingest_and_correlate(crm, native("e", "erp", "order.posted", 1, order="SO-3", invoice="INV-3"))
    survivor, absorbed = Transaction.objects.order_by("pk")
    assert absorbed.merged_into_id == survivor.pk
    assert (survivor.hops_stale_since is not None, absorbed.hops_stale_since) == (True, None)


@pytest.mark.django_db
def test_sweep_reads_owed_transactions_through_a_partial_index(crm):
    """The sweep runs every five minutes: on a store of millions of transactions it must read only the owed ones."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the query plan is PostgreSQL's")
    from transactions.selectors import transaction_ids_hops_owed

    sql, params = transaction_ids_hops_owed(before=T0).query.sql_with_params()
    with connection.cursor() as cursor:
        # On a tiny test table a sequential scan is cheaper; disabling it shows whether an index can serve the filter.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "txn_hops_stale_idx" in plan, plan


@pytest.mark.django_db
def test_a_range_over_a_month_boundary_reads_months_and_edge_days_as_the_days_give():
    """April 20 to June 10: May from its monthly row, the rest from daily rows. Counts, kinds and channels equal the
    days' sums; percentiles equal those of the days' histograms and are within LATENCY_ERROR of the exact ones."""
    import random

    from transactions.models import InterfaceMonthly
    from transactions.selectors import interface_days_attach, interface_figures_list
    from transactions.services.interfaces import interface_days_rebuild

    crm, erp = (System.objects.create(name=n, first_seen_at=T0, last_seen_at=T0) for n in ("crm", "erp"))
    iface = Interface.objects.create(source=crm, target=erp, first_seen_at=T0, last_seen_at=T0)
    txn = Transaction.objects.create(started_at=T0, last_event_at=T0)
    rng = random.Random(16)
    first_day, days = date(2026, 4, 15), 62  # 15 April to 15 June
    hops = []
    for n in range(600):
        day = first_day + timedelta(days=n % days)
        hop_at = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("UTC"))
        hops.append(
            InterfaceHop(
                interface=iface,
                txn=txn,
                day=day,
                at=hop_at,
                latency_ms=rng.choice([0, rng.randrange(1, 5000), rng.randrange(60_000, 7_200_000)]),
                error=n % 7 == 0,
                duplicate=n % 11 == 0,
                late=n % 13 == 0,
                kind=("order.posted", "invoice.posted")[n % 2],
                channel=("api", "file", "")[n % 3],
                via=SEQUENCE,
            )
        )
    InterfaceHop.objects.bulk_create(hops)
    interface_days_rebuild(days=[first_day + timedelta(days=i) for i in range(days)])
    assert list(InterfaceMonthly.objects.values_list("month", "volume")) == [
        (date(2026, 4, 1), 160),
        (date(2026, 5, 1), 305),
        (date(2026, 6, 1), 135),
    ]

    first, last = date(2026, 4, 20), date(2026, 6, 10)
    (figures,) = interface_figures_list(first=first, last=last)
    in_range = [h for h in hops if first <= h.day <= last]
    dailies = list(InterfaceDaily.objects.filter(day__gte=first, day__lte=last))
    assert (figures.volume, figures.errors, figures.duplicates, figures.late) == (
        len(in_range),
        sum(d.errors for d in dailies),
        sum(d.duplicates for d in dailies),
        sum(d.late for d in dailies),
    )
    assert figures.errors == sum(h.error for h in in_range) and figures.late == sum(h.late for h in in_range)
    assert figures.kinds == {k: sum(d.kinds.get(k, 0) for d in dailies) for k in ("order.posted", "invoice.posted")}
    assert sum(figures.channels.values()) == len(in_range) and figures.channels["unknown"] == sum(
        d.channels.get("unknown", 0) for d in dailies
    )
    from_days: list[int] = []
    for d in dailies:
        histogram_add(from_days, d.latency_histogram)
    assert [figures.latency_p50_ms, figures.latency_p95_ms] == histogram_percentiles(from_days, (50, 95))
    for p, found in ((50, figures.latency_p50_ms), (95, figures.latency_p95_ms)):
        exact = percentile([h.latency_ms for h in in_range], p)
        assert abs(found - exact) <= LATENCY_ERROR * exact * (1 + 1e-12)
    # The API's totals read the same rows.
    interface_days_attach([iface], first=first, last=last)
    assert iface.latency_in_range == [figures.latency_p50_ms, figures.latency_p95_ms]
    assert len(iface.days_in_range) == (last - first).days + 1
