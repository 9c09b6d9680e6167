"""Silence becomes cases: stalled transactions, volume monitors (non-events) and control-evidence monitors."""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError

from console.lib.audit import AuditEntry
from console.lib.errors import StaleVersion
from slas.choices import EvidenceCheckStatus
from slas.models import EvidenceCheck, EvidenceMonitor, VolumeMonitor
from slas.reference import EVIDENCE_MONITORS, VOLUME_MONITORS, monitors_reference_data_load, slas_reference_data_load
from slas.services.evidence import evidence_checks_decide, evidence_monitors_scan
from slas.services.monitors import (
    evidence_monitor_create,
    volume_monitor_create,
    volume_monitor_update,
    volume_monitors_evaluate,
)
from slas.services.stalls import stalled_transactions_raise, stalled_transactions_sweep
from transactions.models import Transaction
from transactions.services import batch_correlate, transactions_mark_stalled

from .conftest import MONDAY, ingest_and_correlate, ingest_batch
from .conftest import make_record as record

JOURNAL = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"
INVOICE = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"


# ---- Stalled transactions -------------------------------------------------------------------------------------------


def contract(source, number: int, at):
    return ingest_and_correlate(
        source,
        [
            record(
                f"c-{number}",
                "contract.approved",
                at,
                system="salesforce-crm",
                business_keys={"contract": f"C-{number}"},
            )
        ],
        received_at=at,
    )


def test_the_stall_job_raises_one_case_per_process_step_through_the_signal(
    reference, source, case_signals, django_capture_on_commit_callbacks
):
    for number in (1, 2):
        contract(source, number, MONDAY.replace(hour=9))
    with django_capture_on_commit_callbacks(execute=True):
        assert transactions_mark_stalled(now=MONDAY + timedelta(days=3)) == 2
    stalled = sorted(Transaction.objects.filter(status="stalled").values_list("id", flat=True))
    assert len(case_signals.recorded) == 2
    first, second = case_signals.recorded
    # One fingerprint for the step (one case, two occurrences), one signal key per transaction.
    assert first["fingerprint_parts"] == second["fingerprint_parts"] == ("stalled", "order-to-cash", "2")
    assert [first["txn_id"], second["txn_id"]] == stalled
    assert len(set(case_signals.keys())) == 2
    assert first["category_slug"] == "platform" and "Sales order created" in first["title"]
    assert first["occurred_at"] == MONDAY.replace(hour=13)  # when the step became overdue (4 h allowance)


def test_stall_cases_are_only_for_stalled_transactions_and_idempotent_per_transaction(reference, source, case_signals):
    contract(source, 1, MONDAY.replace(hour=9))
    txn_ids = list(Transaction.objects.values_list("id", flat=True))
    assert stalled_transactions_raise(txn_ids=txn_ids) == 0  # still in flight
    transactions_mark_stalled(now=MONDAY + timedelta(days=3))
    stalled_transactions_raise(txn_ids=txn_ids)
    stalled_transactions_raise(txn_ids=txn_ids)
    assert len(case_signals.recorded) == 2 and len(set(case_signals.keys())) == 1


# ---- Volume monitors ------------------------------------------------------------------------------------------------


def ipaas_monitor(calendar, **overrides) -> VolumeMonitor:
    fields = {
        "slug": "ipaas-silent",
        "name": "iPaaS silent",
        "system": "mulesoft-ipaas",
        "kind": "*",
        "calendar": calendar,
        "mode": "window",
        "window": timedelta(minutes=30),
        "min_count": 1,
    }
    return volume_monitor_create(actor="manager", **{**fields, **overrides})


def ipaas(source, number: int, at, **fields):
    return ingest_batch(
        source, [record(f"m-{number}", "order.sync", at, system="mulesoft-ipaas", **fields)], received_at=at
    )


def test_a_silent_source_opens_a_case_and_traffic_coming_back_resolves_it(reference, calendar, source, case_signals):
    monitor = ipaas_monitor(calendar)
    ipaas(source, 1, MONDAY.replace(hour=8))  # 09:00 in Berlin
    result = volume_monitors_evaluate(now=MONDAY.replace(hour=8, minute=20))
    assert (result.monitors, result.violated, result.opened) == (1, 0, 0)
    # 45 minutes of working time without a message.
    result = volume_monitors_evaluate(now=MONDAY.replace(hour=8, minute=45))
    assert (result.violated, result.opened) == (1, 1)
    [signal] = case_signals.recorded
    assert signal["fingerprint_parts"] == ("volume", "ipaas-silent") and signal["system"] == "mulesoft-ipaas"
    assert "0 matching event(s) in the last 30 min of working time, at least 1 expected" in signal["message"]
    monitor.refresh_from_db()
    assert monitor.currently_violated and monitor.violated_since == MONDAY.replace(hour=8, minute=45)
    # Still silent a minute later: no second occurrence.
    volume_monitors_evaluate(now=MONDAY.replace(hour=8, minute=46))
    assert len(case_signals.recorded) == 1 and not case_signals.resolved
    ipaas(source, 2, MONDAY.replace(hour=8, minute=50))
    result = volume_monitors_evaluate(now=MONDAY.replace(hour=8, minute=51))
    assert result.resolved == 1
    [resolved] = case_signals.resolved
    assert resolved["fingerprint_parts"] == ("volume", "ipaas-silent")
    monitor.refresh_from_db()
    assert not monitor.currently_violated and monitor.violated_since is None and monitor.last_count == 1
    assert AuditEntry.objects.filter(action="volume_monitors.evaluated").count() == 2


def test_a_night_without_traffic_is_not_silence_in_working_time(reference, calendar, source, case_signals):
    ipaas_monitor(calendar)
    ipaas(source, 1, MONDAY.replace(hour=16, minute=50))  # Monday 17:50 in Berlin, ten minutes before closing
    # Tuesday 08:15 in Berlin: the last 30 working minutes are Monday's last 15 and Tuesday's first 15.
    assert volume_monitors_evaluate(now=MONDAY.replace(hour=7, minute=15) + timedelta(days=1)).violated == 0
    assert volume_monitors_evaluate(now=MONDAY.replace(hour=7, minute=25) + timedelta(days=1)).violated == 1


def test_too_many_events_and_entity_filter_and_daily_deadline(reference, calendar, source, case_signals):
    ipaas_monitor(calendar, slug="flood", max_count=2, min_count=0, working_hours_only=False, window=timedelta(hours=1))
    ipaas_monitor(
        calendar,
        slug="de01-invoices",
        system="sap-s4",
        kind="*billingdocument*",
        entity="DE01",
        mode="daily_deadline",
        window=None,
        deadline_time=time(18, 0),
        min_count=2,
    )
    at = MONDAY.replace(hour=10)
    tuesday = MONDAY + timedelta(days=1)
    for n in range(3):
        ipaas(source, n, tuesday.replace(hour=5, minute=30))
    ingest_batch(
        source,
        [
            record("i-1", INVOICE, at, entity="DE01"),
            record("i-2", INVOICE, at, entity="US01"),
            record("i-3", INVOICE, tuesday.replace(hour=5), entity="DE01"),  # counts for Tuesday, not Monday
        ],
        received_at=tuesday.replace(hour=5, minute=40),
    )
    # Tuesday 07:00 in Berlin: Tuesday's 18:00 deadline has not passed, so Monday's count stands.
    result = volume_monitors_evaluate(now=tuesday.replace(hour=6))
    assert result.opened == 2
    messages = {s["fingerprint_parts"][1]: s["message"] for s in case_signals.recorded}
    assert "3 matching event(s) in the last 1 h, at most 2 expected" in messages["flood"]
    assert "1 matching event(s) in 2026-11-30 by 18:00, at least 2 expected" in messages["de01-invoices"]
    assert VolumeMonitor.objects.get(slug="de01-invoices").last_count == 1


def test_counting_is_one_aggregate_query_for_every_monitor(
    reference, calendar, source, case_signals, django_assert_max_num_queries
):
    for n in range(20):
        ipaas_monitor(calendar, slug=f"m{n}", window=timedelta(minutes=10 + n))
    ipaas(source, 1, MONDAY.replace(hour=8))
    # monitors, calendars, holidays, the aggregate, the bulk update of counts: the same for 20 monitors or 2,000.
    with django_assert_max_num_queries(6):
        volume_monitors_evaluate(now=MONDAY.replace(hour=8, minute=5))


# ---- Evidence monitors ----------------------------------------------------------------------------------------------


def journal_monitor(calendar, **overrides) -> EvidenceMonitor:
    fields = {
        "slug": "journal-evidence",
        "name": "Evidence within 24 business hours of a posting",
        "trigger_system": "sap-s4",
        "trigger_kind": JOURNAL,
        "evidence_system": "compliance-vault",
        "evidence_kind": "evidence.captured",
        "direction": "after",
        "window": timedelta(hours=24),
        "calendar": calendar,
    }
    return evidence_monitor_create(actor="manager", **{**fields, **overrides})


def posting(source, number: int, at) -> dict:
    keys = {"journal": f"{number:010d}"}
    return ingest_and_correlate(source, [record(f"j-{number}", JOURNAL, at, business_keys=keys)], received_at=at)


def evidence_for(source, number: int, at) -> dict:
    keys = {"journal": f"{number:010d}", "evidence": f"EV-{number}"}
    rec = record(f"e-{number}", "evidence.captured", at, system="compliance-vault", business_keys=keys)
    return ingest_and_correlate(source, [rec], received_at=at)


def txn_ids() -> list[int]:
    return list(Transaction.objects.filter(merged_into__isnull=True).values_list("id", flat=True))


def test_evidence_that_never_arrives_becomes_a_control_case_naming_the_transaction(
    reference, calendar, source, case_signals
):
    journal_monitor(calendar)
    posted = MONDAY.replace(hour=8)  # Monday 09:00 in Berlin
    posting(source, 1, posted)
    posting(source, 2, posted)
    evidence_for(source, 2, posted + timedelta(hours=3))
    stats = evidence_monitors_scan(txn_ids=txn_ids(), now=posted + timedelta(hours=4))
    assert stats["checks_created"] == 2 and stats["satisfied"] == 1 and stats["missing"] == 0
    pending = EvidenceCheck.objects.get(status=EvidenceCheckStatus.PENDING)
    assert pending.due_at == posted + timedelta(days=2, hours=4)  # Wednesday 13:00 in Berlin
    assert evidence_checks_decide(now=posted + timedelta(days=2))["missing"] == 0  # not due yet
    assert evidence_checks_decide(now=posted + timedelta(days=2, hours=5))["missing"] == 1
    [signal] = case_signals.recorded
    assert signal["category_slug"] == "control" and signal["txn_id"] == pending.txn_id
    assert f"Transaction {pending.txn_id}" in signal["message"] and "evidence.captured" in signal["message"]
    assert signal["fingerprint_parts"] == ("evidence", "journal-evidence")
    # Deciding again changes nothing: the check is no longer pending.
    assert evidence_checks_decide(now=posted + timedelta(days=3)) == {"decided": 0, "satisfied": 0, "missing": 0}
    pending.refresh_from_db()
    assert pending.status == EvidenceCheckStatus.MISSING
    # Evidence that turns up afterwards is recorded as late; the control was still missed.
    evidence_for(source, 1, posted + timedelta(days=4))
    assert evidence_monitors_scan(txn_ids=txn_ids(), now=posted + timedelta(days=4))["late"] == 1
    assert len(case_signals.recorded) == 1


def test_evidence_arriving_in_time_satisfies_a_pending_check(reference, calendar, source, case_signals):
    journal_monitor(calendar)
    posted = MONDAY.replace(hour=8)
    posting(source, 1, posted)
    evidence_monitors_scan(txn_ids=txn_ids(), now=posted)
    evidence_for(source, 1, posted + timedelta(days=1))
    assert evidence_monitors_scan(txn_ids=txn_ids(), now=posted + timedelta(days=1))["satisfied"] == 1
    assert evidence_checks_decide(now=posted + timedelta(days=10))["decided"] == 0
    assert not case_signals.recorded


def test_approval_must_come_before_the_trigger(reference, calendar, source, case_signals):
    evidence_monitor_create(
        actor="manager",
        slug="bank-change-approval",
        name="Approval before a vendor bank-detail change",
        trigger_system="sap-s4",
        trigger_kind="vendor.bank_details.changed",
        evidence_approval_step="vendor-master-approval",
        direction="before",
        window=timedelta(hours=40),
        calendar=calendar,
    )
    at = MONDAY.replace(hour=9)
    approval = {"actor": "t.nguyen", "decision": "approved", "step": "vendor-master-approval"}
    ingest_and_correlate(
        source,
        [
            record("a-1", "vendor.bank_details.requested", at, business_keys={"order": "V1"}, approval=approval),
            record("b-1", "vendor.bank_details.changed", at + timedelta(hours=1), business_keys={"order": "V1"}),
            record("b-2", "vendor.bank_details.changed", at + timedelta(hours=1), business_keys={"order": "V2"}),
        ],
        received_at=at + timedelta(hours=1),
    )
    stats = evidence_monitors_scan(txn_ids=txn_ids(), now=at + timedelta(hours=2))
    assert stats["checks_created"] == 2 and stats["satisfied"] == 1 and stats["missing"] == 1
    [signal] = case_signals.recorded
    assert "an approval of step vendor-master-approval before" in signal["message"]


# ---- Edits ----------------------------------------------------------------------------------------------------------


def test_monitor_edits_are_audited_versioned_and_validated(reference, calendar):
    monitor = ipaas_monitor(calendar)
    assert AuditEntry.objects.filter(action="volume_monitor.created", object_id=str(monitor.pk)).exists()
    monitor = volume_monitor_update(monitor=monitor, actor="manager", expected_version=1, min_count=5)
    assert (monitor.version, monitor.min_count) == (2, 5)
    entry = AuditEntry.objects.get(action="volume_monitor.updated")
    assert (entry.before["min_count"], entry.after["min_count"]) == (1, 5)
    with pytest.raises(StaleVersion):
        volume_monitor_update(monitor=monitor, actor="manager", expected_version=1, min_count=6)
    with pytest.raises(ValidationError) as error:
        volume_monitor_update(monitor=monitor, actor="manager", expected_version=2, mode="daily_deadline")
    assert "deadline_time" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        ipaas_monitor(calendar, slug="other", min_count=5, max_count=2, category_slug="nope")
    assert set(error.value.message_dict) == {"max_count", "category_slug"}
    with pytest.raises(ValidationError) as error:
        journal_monitor(calendar, evidence_kind=JOURNAL, evidence_system="sap-s4")
    assert "prove itself" in error.value.message_dict["evidence_kind"][0]
    monitor.refresh_from_db()
    assert (monitor.version, monitor.min_count, VolumeMonitor.objects.count(), EvidenceMonitor.objects.count()) == (
        2,
        5,
        1,
        0,
    )


def test_default_monitors_load_once_and_keep_edits(reference):
    slas_reference_data_load()
    assert monitors_reference_data_load() == {
        "volume_monitors": len(VOLUME_MONITORS),
        "evidence_monitors": len(EVIDENCE_MONITORS),
    }
    VolumeMonitor.objects.filter(slug="ipaas-silent-30min").update(min_count=3, is_active=False)
    assert monitors_reference_data_load() == {"volume_monitors": 0, "evidence_monitors": 0}
    edited = VolumeMonitor.objects.get(slug="ipaas-silent-30min")
    assert (edited.min_count, edited.is_active, edited.calendar.slug) == (3, False, "de")
    assert AuditEntry.objects.filter(action="volume_monitor.created").count() == len(VOLUME_MONITORS)


def test_a_back_dated_batch_raises_only_the_stalls_due_when_it_arrived_and_the_sweep_the_rest(
    reference, source, case_signals, django_capture_on_commit_callbacks
):
    # History replayed today: correlation judges by the wall clock, so both transactions look stalled at once.
    with django_capture_on_commit_callbacks(execute=True):
        for number, received in ((1, MONDAY.replace(hour=9)), (2, MONDAY + timedelta(days=1))):
            # Both due at 13:00 on Monday; the first batch arrived before that, the second a day later.
            rec = record(f"c-{number}", "contract.approved", MONDAY.replace(hour=9), system="salesforce-crm")
            batch = ingest_batch(source, [{**rec, "business_keys": {"contract": f"C-{number}"}}], received_at=received)
            batch_correlate(batch_id=batch.pk)
    assert Transaction.objects.filter(status="stalled").count() == 2
    assert [s["title"] for s in case_signals.recorded] == ["Stalled: Order to cash waiting for Sales order created"]
    assert case_signals.recorded[0]["txn_id"] == Transaction.objects.order_by("id").last().pk
    assert stalled_transactions_sweep() == 2  # the recorder keeps no occurrences: both are (re)signalled
    assert {s["txn_id"] for s in case_signals.recorded} == set(Transaction.objects.values_list("id", flat=True))


def test_a_back_dated_batch_decides_only_the_evidence_overdue_when_it_arrived(
    reference, calendar, source, case_signals
):
    journal_monitor(calendar)
    posted = MONDAY.replace(hour=8)
    posting(source, 1, posted)
    # The batch arrived an hour after the posting: nothing is overdue then, though by the wall clock it long is.
    stats = evidence_monitors_scan(txn_ids=txn_ids(), as_of=posted + timedelta(hours=1))
    assert stats["checks_created"] == 1 and stats["missing"] == 0
    assert not case_signals.recorded
    assert evidence_checks_decide(now=posted + timedelta(days=5))["missing"] == 1  # the minute pass: by now
