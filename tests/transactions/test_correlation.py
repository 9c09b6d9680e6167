import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import TestCase

from tests.factories import T0, event, ingest, ingest_and_correlate
from transactions.choices import TransactionStatus
from transactions.correlation import (
    EventFacts,
    ProcessSpec,
    StepSpec,
    add_event_facts,
    evaluate_state,
    group_batch,
    linking_keys,
)
from transactions.models import IngestBatch, Transaction, TransactionEvent, TransactionKey, TransactionMerge
from transactions.reference import process_reference_data_load
from transactions.services import batch_correlate, transactions_mark_stalled
from transactions.signals import transactions_correlated

CORRELATING = frozenset({"contract", "order", "invoice", "payment"})


def facts(event_id, *, kind="x", status="ok", trace=None, links=(), keys=None, at=T0, system="crm") -> EventFacts:
    return EventFacts(event_id, at, at, system, kind, status, trace, list(links), keys or {})


# ---- pure rules -----------------------------------------------------------------------------------------------------


def test_broad_keys_never_link_and_traces_and_span_links_do():
    e = facts(1, trace="t1", links=[{"trace_id": "t9", "span_id": "s"}], keys={"customer": "ACME", "order": "1"})
    assert linking_keys(e, CORRELATING) == [("trace", "t1"), ("trace", "t9"), ("order", "1")]


def test_batch_groups_transitively_and_finds_existing_transactions():
    keys = [[("trace", "a")], [("trace", "a"), ("order", "1")], [("order", "1")], [("trace", "z")]]
    groups = group_batch(keys, existing={("order", "1"): 7, ("trace", "z"): 9})
    assert sorted((g.event_indexes, g.existing_txn_ids) for g in groups) == [([0, 1, 2], {7}), ([3], {9})]


PROCESS = ProcessSpec(
    1,
    "o2c",
    (
        StepSpec(1, "approved", "", "contract.approved", timedelta(days=1), True),
        StepSpec(2, "order", "", "order.created|*salesorder*", timedelta(hours=4), True),
        StepSpec(3, "invoice", "", "invoice.posted", timedelta(days=2), True),
    ),
)


def test_state_follows_the_expected_steps_even_out_of_order():
    invoice_first = add_event_facts({}, [facts(3, kind="invoice.posted", at=T0 + timedelta(hours=3))])
    state = evaluate_state(PROCESS, invoice_first, started_at=T0, now=T0 + timedelta(hours=4))
    assert state.status == "in_flight" and state.next_step["name"] == "approved"
    complete = add_event_facts(
        invoice_first,
        [facts(1, kind="contract.approved"), facts(2, kind="SAP.S4.SalesOrder.Created", at=T0 + timedelta(hours=1))],
    )
    assert evaluate_state(PROCESS, complete, started_at=T0, now=T0).status == "completed"


def test_stalled_failed_and_a_successful_retry():
    approved = add_event_facts({}, [facts(1, kind="contract.approved")])
    state = evaluate_state(PROCESS, approved, started_at=T0, now=T0 + timedelta(hours=5))
    assert state.status == "stalled" and state.next_due_at == T0 + timedelta(hours=4)
    failed = add_event_facts(approved, [facts(2, kind="order.created", status="error", at=T0 + timedelta(hours=1))])
    assert evaluate_state(PROCESS, failed, started_at=T0, now=T0).status == "failed"
    retried = add_event_facts(failed, [facts(3, kind="order.created", at=T0 + timedelta(hours=2))])
    assert evaluate_state(PROCESS, retried, started_at=T0, now=T0 + timedelta(hours=2)).status == "in_flight"
    late_error = add_event_facts(
        retried, [facts(4, kind="order.created", status="error", at=T0 + timedelta(hours=1.5))]
    )
    assert evaluate_state(PROCESS, late_error, started_at=T0, now=T0 + timedelta(hours=2)).status == "in_flight"


def test_a_failure_made_good_by_a_later_success_of_its_system_is_recovered_once_complete():
    approved = add_event_facts({}, [facts(1, kind="contract.approved", system="crm")])
    # The failed attempt and the retry carry different names, as sources report them (a new span, "posted" vs "post").
    failed = add_event_facts(
        approved, [facts(2, kind="order.create", status="error", system="erp", at=T0 + timedelta(hours=1))]
    )
    assert evaluate_state(PROCESS, failed, started_at=T0, now=T0).status == "failed"
    # Another system's success does not make the ERP's failure good.
    elsewhere = add_event_facts(failed, [facts(3, kind="note.added", system="crm", at=T0 + timedelta(hours=2))])
    assert evaluate_state(PROCESS, elsewhere, started_at=T0, now=T0).status == "failed"
    retried = add_event_facts(failed, [facts(4, kind="order.created", system="erp", at=T0 + timedelta(hours=2))])
    state = evaluate_state(PROCESS, retried, started_at=T0, now=T0 + timedelta(hours=2))
    assert state.status == "in_flight" and state.next_step["name"] == "invoice"
    done = add_event_facts(retried, [facts(5, kind="invoice.posted", system="erp", at=T0 + timedelta(hours=3))])
    state = evaluate_state(PROCESS, done, started_at=T0, now=T0 + timedelta(hours=3))
    assert state.status == "recovered" and state.next_step is None
    # A retry under the failed attempt's own name leaves no failed fact: the failed-event count tells.
    same_name = add_event_facts(
        approved,
        [
            facts(6, kind="order.created", status="error", at=T0 + timedelta(hours=1)),
            facts(7, kind="order.created", at=T0 + timedelta(hours=2)),
            facts(8, kind="invoice.posted", at=T0 + timedelta(hours=3)),
        ],
    )
    assert evaluate_state(PROCESS, same_name, started_at=T0, now=T0, error_count=1).status == "recovered"
    assert evaluate_state(PROCESS, same_name, started_at=T0, now=T0).status == "completed"


# ---- against the database -------------------------------------------------------------------------------------------


@pytest.fixture
def processes(db):
    process_reference_data_load()


@pytest.mark.django_db
def test_events_sharing_a_trace_or_key_form_one_transaction(source, processes):
    ingest_and_correlate(
        source,
        event("1", "contract.approved", 0, trace="a" * 32, span="1" * 16, contract="C-1"),
        event("2", "order.created", 1, trace="a" * 32, span="2" * 16, contract="C-1", order="0000012345"),
        event("3", "invoice.posted", 2, order="12345", invoice="INV-1", customer="ACME"),
        event("4", "contract.approved", 0, contract="C-2", customer="ACME"),
    )
    assert Transaction.objects.count() == 2
    txn = Transaction.objects.get(keys__key_type="contract", keys__value="C-1")
    assert txn.event_count == 3 and txn.process.slug == "order-to-cash"
    assert txn.business_keys == {"contract": ["C-1"], "customer": ["ACME"], "order": ["12345"], "invoice": ["INV-1"]}
    assert txn.next_step["name"] == "Payment received" and txn.status == "in_flight"
    assert txn.started_at == T0 and txn.last_event_at == T0 + timedelta(hours=2)
    assert TransactionKey.objects.filter(key_type="customer", value="ACME", correlates=False).count() == 2


@pytest.mark.django_db
def test_a_shared_key_merges_transactions_and_the_older_survives(source, processes):
    ingest_and_correlate(source, event("1", "contract.approved", 0, trace="a" * 32, span="1" * 16, contract="C-1"))
    ingest_and_correlate(source, event("2", "invoice.posted", 3, trace="b" * 32, span="2" * 16, order="O-1"))
    older, newer = Transaction.objects.order_by("id")
    result = ingest_and_correlate(source, event("3", "order.created", 1, contract="C-1", order="O-1"))
    assert result["merges"] == 1
    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.status == "merged" and newer.merged_into_id == older.pk
    assert older.event_count == 3 and set(older.systems) == {"salesforce-crm"}
    assert TransactionEvent.objects.filter(txn=older).count() == 3
    assert set(TransactionKey.objects.filter(txn=older).values_list("key_type", flat=True)) >= {"trace", "order"}
    merge = TransactionMerge.objects.get()
    assert (merge.survivor_id, merge.absorbed_id) == (older.pk, newer.pk)


@pytest.mark.django_db
def test_out_of_order_and_late_events_land_in_the_right_transaction(source, processes):
    ingest_and_correlate(source, event("3", "invoice.posted", 5, order="O-9", invoice="I-9"))
    ingest_and_correlate(source, event("2", "order.created", 1, contract="C-9", order="O-9"))
    ingest_and_correlate(source, event("1", "contract.approved", 0, contract="C-9"))
    txn = Transaction.objects.get()
    assert txn.event_count == 3 and txn.started_at == T0 and txn.next_step["name"] == "Payment received"
    ingest_and_correlate(source, event("4", "payment.received", 50, invoice="I-9", payment="P-9"))
    ingest_and_correlate(source, event("5", "evidence.captured", 60, payment="P-9"), now=T0 + timedelta(hours=61))
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED and txn.next_step is None


@pytest.mark.django_db
def test_correlating_a_batch_twice_changes_nothing(source, processes):
    batch = ingest(
        source, event("1", "contract.approved", 0, contract="C-1"), event("2", "order.created", 1, contract="C-1")
    )
    batch_correlate(batch_id=batch.pk, now=T0)
    snapshot = list(Transaction.objects.values())
    assert batch_correlate(batch_id=batch.pk)["skipped"]
    IngestBatch.objects.filter(pk=batch.pk).update(correlated_at=None)  # as if the first run's commit was not seen
    batch_correlate(batch_id=batch.pk, now=T0)
    assert TransactionEvent.objects.count() == 2 and Transaction.objects.count() == 1
    after = list(Transaction.objects.values())
    assert [(t["event_count"], t["business_keys"]) for t in after] == [
        (t["event_count"], t["business_keys"]) for t in snapshot
    ]


@pytest.mark.django_db
def test_failed_step_and_stall_detection(source, processes):
    ingest_and_correlate(
        source, event("1", "contract.approved", 0, contract="C-1"), event("x", "contract.approved", 0, contract="C-2")
    )
    ingest_and_correlate(source, event("2", "order.created", 1, status="error", contract="C-2"))
    failed = Transaction.objects.get(keys__value="C-2")
    assert failed.status == "failed" and failed.error_count == 1
    waiting = Transaction.objects.get(keys__value="C-1")
    assert waiting.status == "in_flight" and waiting.next_due_at == T0 + timedelta(hours=4)
    assert transactions_mark_stalled(now=T0 + timedelta(hours=3)) == 0
    assert transactions_mark_stalled(now=T0 + timedelta(hours=5)) == 1
    waiting.refresh_from_db()
    assert waiting.status == "stalled"


@pytest.mark.django_db(transaction=True)
def test_ingest_enqueues_correlation_which_runs_in_process(send, processes):
    send("/api/v1/events", [event("1", "contract.approved", 0, contract="C-7")])
    assert IngestBatch.objects.get().correlated_at is not None
    assert Transaction.objects.get().business_keys["contract"] == ["C-7"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_joining_the_same_transactions_do_not_race(source, processes):
    batches = [
        ingest(
            source, *[event(f"{w}-{i}", "order.created", 1, contract=f"C-{i}", order=f"O-{w}-{i}") for i in range(30)]
        )
        for w in range(4)
    ]
    barrier = threading.Barrier(len(batches))
    errors = []

    def work(batch_id: int) -> None:
        try:
            barrier.wait()
            batch_correlate(batch_id=batch_id)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(b.pk,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    live = Transaction.objects.exclude(status="merged")
    assert live.count() == 30
    assert sorted(live.values_list("event_count", flat=True)) == [4] * 30
    assert TransactionKey.objects.filter(key_type="contract").count() == 30


@pytest.mark.django_db
def test_a_pass_takes_waiting_batches_up_to_its_event_budget(source, processes):
    singles = [
        ingest(source, event("1", "contract.approved", 0, contract="C-1")),
        ingest(source, event("2", "order.created", 1, contract="C-1")),
        ingest(source, event("3", "contract.approved", 0, contract="C-2")),
    ]
    too_big = ingest(source, *[event(f"b{i}", "order.created", 1, contract="C-2") for i in range(2)])
    announced = []

    def listen(sender, **kwargs):
        announced.append(kwargs)

    transactions_correlated.connect(listen)
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            result = batch_correlate(batch_id=singles[0].pk, now=T0, coalesce_up_to=4)
    finally:
        transactions_correlated.disconnect(listen)
    assert result["batches"] == 3 and result["events"] == 3
    pending = set(IngestBatch.objects.filter(correlated_at__isnull=True).values_list("pk", flat=True))
    assert pending == {too_big.pk}
    assert Transaction.objects.get(keys__value="C-1").event_count == 2
    # One announcement for the pass, judged as of its latest arrival.
    assert len(announced) == 1 and announced[0]["batch_id"] == singles[2].pk
    assert len(announced[0]["txn_ids"]) == 2
    # The batches it took are done: their own tasks take the batch still waiting instead, then find nothing left.
    assert batch_correlate(batch_id=singles[1].pk, coalesce_up_to=4)["lead"] == too_big.pk
    assert batch_correlate(batch_id=singles[2].pk, coalesce_up_to=4)["skipped"]
    assert not IngestBatch.objects.filter(correlated_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_correlation_task_coalesces_and_a_plain_call_does_not(source, processes):
    from transactions.tasks import correlate_batch

    first = ingest(source, event("1", "contract.approved", 0, contract="C-1"))
    second = ingest(source, event("2", "order.created", 1, contract="C-1"))
    batch_correlate(batch_id=first.pk, now=T0)
    assert IngestBatch.objects.get(pk=second.pk).correlated_at is None
    third = ingest(source, event("3", "contract.approved", 0, contract="C-3"))
    assert correlate_batch(second.pk)["batches"] == 2
    assert not IngestBatch.objects.filter(pk__in=[second.pk, third.pk], correlated_at__isnull=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pass_skips_a_batch_another_worker_holds_and_never_waits_for_it(source, processes, monkeypatch):
    from django.db import transaction

    from transactions.tasks import correlate_batch

    # Stored only: the passes below do the correlating.
    monkeypatch.setattr(correlate_batch, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(correlate_batch, "apply_async", lambda *args, **kwargs: None)
    batches = [ingest(source, event(str(i), "contract.approved", 0, contract=f"C-{i}")) for i in range(3)]
    held, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                IngestBatch.objects.select_for_update().get(pk=batches[1].pk)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert held.wait(10)
        # Its own batch held elsewhere, the task leads with the oldest batch still waiting and leaves the held one.
        result = batch_correlate(batch_id=batches[1].pk, coalesce_up_to=10)
        assert result["lead"] == batches[0].pk and result["batches"] == 2
        assert batch_correlate(batch_id=batches[0].pk, coalesce_up_to=10)["skipped"]
    finally:
        release.set()
        worker.join()
    pending = list(IngestBatch.objects.filter(correlated_at__isnull=True).values_list("pk", flat=True))
    assert pending == [batches[1].pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_a_pass_looked_at_but_did_not_take_stays_free_for_its_own_task(source, processes, monkeypatch):
    from transactions.services import correlation
    from transactions.tasks import correlate_batch

    monkeypatch.setattr(correlate_batch, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(correlate_batch, "apply_async", lambda *args, **kwargs: None)
    lead = ingest(source, event("1", "contract.approved", 0, contract="C-1"))
    over_budget = ingest(source, *[event(f"b{i}", "contract.approved", 0, contract=f"C-b{i}") for i in range(2)])
    later = ingest(source, event("3", "contract.approved", 0, contract="C-3"))
    inside, release = threading.Event(), threading.Event()
    key_types = correlation.correlating_key_types

    def pass_held_open() -> frozenset[str]:
        if threading.current_thread().name == "first-pass":
            inside.set()
            release.wait(10)
        return key_types()

    monkeypatch.setattr(correlation, "correlating_key_types", pass_held_open)
    results: dict = {}

    def first_pass() -> None:
        try:
            results["first"] = batch_correlate(batch_id=lead.pk, coalesce_up_to=2)
        finally:
            connections.close_all()

    worker = threading.Thread(target=first_pass, name="first-pass")
    worker.start()
    try:
        assert inside.wait(10)
        # The first pass read both waiting batches and took none (the next one would pass its budget of 2): their
        # own tasks, on another worker, correlate them while it is still under way.
        assert batch_correlate(batch_id=over_budget.pk, coalesce_up_to=2)["batches"] == 1
        assert batch_correlate(batch_id=later.pk, coalesce_up_to=2)["batches"] == 1
    finally:
        release.set()
        worker.join()
    assert results["first"]["batches"] == 1
    assert not IngestBatch.objects.filter(correlated_at__isnull=True).exists()
