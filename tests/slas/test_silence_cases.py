"""Silence through the real case machinery: cases are created, grouped, routed and resolved by the exceptions app."""

from datetime import timedelta

from exceptions.models import Case
from slas.models import EvidenceCheck, VolumeMonitor
from slas.services.evidence import evidence_checks_decide, evidence_monitors_scan
from slas.services.monitors import evidence_monitor_create, volume_monitor_create, volume_monitors_evaluate
from slas.services.stalls import stalled_transactions_raise
from transactions.models import Transaction
from transactions.services import transactions_mark_stalled

from .conftest import MONDAY, ingest_and_correlate, ingest_batch
from .conftest import make_record as record

JOURNAL = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"


def test_stalled_transactions_of_one_step_are_one_routed_case(reference, source):
    for number in range(3):
        keys = {"contract": f"C-{number}"}
        rec = record(f"c-{number}", "contract.approved", MONDAY.replace(hour=9), system="salesforce-crm")
        ingest_and_correlate(source, [{**rec, "business_keys": keys}], received_at=MONDAY.replace(hour=9))
    transactions_mark_stalled(now=MONDAY + timedelta(days=3))
    ids = list(Transaction.objects.values_list("id", flat=True))
    stalled_transactions_raise(txn_ids=ids)
    stalled_transactions_raise(txn_ids=ids)  # announced twice: still one occurrence per transaction
    [case] = Case.objects.filter(title__startswith="Stalled:")
    assert case.occurrence_count == 3 and case.category.slug == "platform"
    assert case.queue.slug == "integration-platform"  # the routing rule for platform cases


def test_a_stall_case_resolves_itself_once_every_transaction_moved_past_its_step(reference, source):
    for number in range(3):
        keys = {"contract": f"C-{number}"}
        rec = record(f"c-{number}", "contract.approved", MONDAY.replace(hour=9), system="salesforce-crm")
        ingest_and_correlate(source, [{**rec, "business_keys": keys}], received_at=MONDAY.replace(hour=9))
    later = MONDAY + timedelta(days=3)
    transactions_mark_stalled(now=later)
    stalled_transactions_raise(txn_ids=list(Transaction.objects.values_list("id", flat=True)))
    [case] = Case.objects.filter(title__startswith="Stalled:")

    def order_created(number: int) -> None:
        rec = record(f"o-{number}", "order.created", later, system="sap-s4")
        batch = [{**rec, "business_keys": {"contract": f"C-{number}", "order": f"SO-{number}"}}]
        ingest_and_correlate(source, batch, received_at=later)
        # What the correlation announcement runs (after commit, which this test's transaction never reaches).
        stalled_transactions_raise(txn_ids=list(Transaction.objects.values_list("id", flat=True)))

    order_created(0)
    order_created(1)
    case.refresh_from_db()
    assert case.status == "open"  # C-2 still waits at the step
    assert not case.activities.filter(data__reason="stall_moved_on").exists()
    order_created(2)
    case.refresh_from_db()
    assert case.status == "resolved" and case.resolved_at is not None
    activity = case.activities.get(data__reason="stall_moved_on")
    assert "moved on past the step" in activity.body
    # Announced again (a later batch, the sweep): nothing more happens.
    stalled_transactions_raise(txn_ids=list(Transaction.objects.values_list("id", flat=True)))
    assert case.activities.filter(data__reason="stall_moved_on").count() == 1


def test_silence_opens_a_case_and_returning_traffic_resolves_it(reference, calendar, source):
    monitor = volume_monitor_create(
        actor="test",
        slug="ipaas-silent",
        name="iPaaS silent",
        system="mulesoft-ipaas",
        kind="*",
        calendar=calendar,
        mode="window",
        window=timedelta(minutes=30),
        min_count=1,
    )
    volume_monitors_evaluate(now=MONDAY.replace(hour=9))
    monitor.refresh_from_db()
    case = Case.objects.get(pk=monitor.case_id)
    assert case.status == "open" and case.queue.slug == "integration-platform"
    rec = record("m-1", "order.sync", MONDAY.replace(hour=9, minute=5), system="mulesoft-ipaas")
    ingest_batch(source, [rec], received_at=MONDAY.replace(hour=9, minute=5))
    volume_monitors_evaluate(now=MONDAY.replace(hour=9, minute=6))
    case.refresh_from_db()
    monitor.refresh_from_db()
    assert case.status == "resolved" and not monitor.currently_violated
    # Silent again later: the same fingerprint, so the case reopens with a second occurrence.
    volume_monitors_evaluate(now=MONDAY.replace(hour=11))
    case.refresh_from_db()
    assert case.status == "open" and case.occurrence_count == 2
    assert VolumeMonitor.objects.get(pk=monitor.pk).case_id == case.pk


def test_missing_evidence_is_a_control_case_in_the_compliance_queue(reference, calendar, source):
    evidence_monitor_create(
        actor="test",
        slug="journal-evidence",
        name="Evidence within 24 business hours of a posting",
        trigger_system="sap-s4",
        trigger_kind=JOURNAL,
        evidence_system="compliance-vault",
        evidence_kind="evidence.captured",
        window=timedelta(hours=24),
        calendar=calendar,
    )
    posted = MONDAY.replace(hour=8)
    for number in (1, 2):
        rec = record(f"j-{number}", JOURNAL, posted, business_keys={"journal": f"{number:010d}"})
        ingest_and_correlate(source, [rec], received_at=posted)
    evidence_monitors_scan(txn_ids=list(Transaction.objects.values_list("id", flat=True)), now=posted)
    evidence_checks_decide(now=posted + timedelta(days=5))
    [case] = Case.objects.filter(category__slug="control")
    assert case.occurrence_count == 2 and case.queue.slug == "compliance"
    assert set(EvidenceCheck.objects.values_list("case_id", flat=True)) == {case.pk}
