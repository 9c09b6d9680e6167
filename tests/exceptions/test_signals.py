"""Signals: occurrences that no failed event carries (an SLA's silence), through the same case machinery."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError
from exceptions.choices import ActivityKind, CaseStatus
from exceptions.models import Case, CaseActivity, ExceptionRecord, Queue, ReplayTarget
from exceptions.services import (
    Signal,
    case_transition,
    cases_escalate,
    replay_request,
    signal_fingerprint,
    signal_record,
    signal_resolve,
    signals_record,
    signals_record_isolated,
)
from exceptions.services.classify import fingerprints_lock
from tests.factories import failure

SILENCE = {
    "category_slug": "platform",
    "system": "sap-s4",
    "kind": "sla.silence",
    "fingerprint_parts": ("order-to-cash", "goods-issue"),
}


NOW = timezone.now()


def silence(key: str, *, hours_ago: float = 1, **changes) -> Case:
    fields = {
        **SILENCE,
        "title": "No goods issue for 4 h on order-to-cash",
        "message": "expected sap-s4 goods.issue within 4 h; none arrived",
        **changes,
    }
    return signal_record(signal_key=key, occurred_at=NOW - timedelta(hours=hours_ago), **fields)


def resolve(**changes) -> Case | None:
    fields = {**SILENCE, **changes}
    return signal_resolve(actor="system:slas", note="goods issue events arrive again", **fields)


@pytest.fixture
def operator(role_user):
    return role_user("manager", username="mia")


@pytest.mark.django_db
def test_a_signal_becomes_a_routed_case_with_its_activity_and_audit_entry(reference):
    case = silence("sla:1:clock:7")
    assert case.title == "No goods issue for 4 h on order-to-cash"
    assert case.category.slug == "platform" and case.status == CaseStatus.OPEN
    # Routed by the rules like any case: platform failures go to the integration platform queue.
    assert case.queue.slug == "integration-platform" and case.routing_rule.name.startswith("Security, platform")
    record = ExceptionRecord.objects.get()
    assert (record.event_id, record.event_received_at, record.signal_key) == (None, None, "sla:1:clock:7")
    assert record.fingerprint == case.fingerprint == signal_fingerprint(**SILENCE)
    assert CaseActivity.objects.filter(case=case, kind=ActivityKind.CREATED, actor="system:slas").exists()
    entry = AuditEntry.objects.get(action="exceptions.signals_recorded")
    assert entry.actor == "system:slas" and entry.object_type == "exceptions.case"
    assert entry.after == {
        "occurrences": 1,
        "signal_keys": ["sla:1:clock:7"],
        "cases": [case.pk],
        "cases_created": [case.pk],
        "cases_reopened": [],
    }
    assert audit_verify().ok


@pytest.mark.django_db
def test_recording_the_same_signal_twice_changes_nothing(reference):
    first = silence("sla:1:clock:7")
    entries, activities = AuditEntry.objects.count(), CaseActivity.objects.count()
    again = silence("sla:1:clock:7", hours_ago=0.5, message="a different text")
    assert again.pk == first.pk
    assert ExceptionRecord.objects.count() == 1
    assert (AuditEntry.objects.count(), CaseActivity.objects.count()) == (entries, activities)
    assert Case.objects.get(pk=first.pk).version == first.version


@pytest.mark.django_db
def test_repeats_of_the_same_silence_group_into_one_case(reference):
    cases = [silence(f"sla:1:clock:{n}", hours_ago=3 - n) for n in range(3)]
    assert len({c.pk for c in cases}) == 1
    case = Case.objects.get()
    assert case.occurrence_count == 3 and case.occurrences.count() == 3
    assert case.last_seen - case.first_seen == timedelta(hours=2)
    assert CaseActivity.objects.filter(case=case, kind=ActivityKind.OCCURRENCE).count() == 2
    # Another step's silence (other fingerprint parts) is another case.
    other = silence("sla:2:clock:1", fingerprint_parts=("order-to-cash", "invoice"))
    assert other.pk != case.pk and Case.objects.count() == 2


@pytest.mark.django_db
def test_signals_follow_the_routing_rules(reference):
    # Reference rules: data quality on an SAP system goes to master data, controls to compliance.
    master = silence("k1", category_slug="data_quality", system="sap-s4")
    control = silence("k2", category_slug="control")
    default = silence("k3", category_slug="data_quality", system="some-crm", kind="contract.silence")
    assert (master.queue.slug, control.queue.slug, default.queue.slug) == ("master-data", "compliance", "triage")
    assert default.routing_rule is None


@pytest.mark.django_db
def test_a_signal_needs_a_key_and_a_known_category(reference):
    with pytest.raises(DomainError):
        silence("  ")
    with pytest.raises(DomainError):
        silence("k1", category_slug="no-such-category")
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_the_end_of_the_condition_resolves_the_open_case(reference):
    case = silence("sla:1:clock:7")
    resolved = resolve()
    assert resolved.pk == case.pk and resolved.status == CaseStatus.RESOLVED and resolved.resolved_at
    assert resolved.version == case.version + 1
    activity = CaseActivity.objects.filter(case=case).last()
    assert activity.actor == "system:slas" and activity.body.startswith("goods issue events arrive again")
    assert activity.data["to"] == CaseStatus.RESOLVED
    entry = AuditEntry.objects.filter(action="case.resolved").get()
    assert entry.actor == "system:slas" and entry.before["status"] == CaseStatus.OPEN
    # Nothing open any more: nothing to do, nothing written.
    entries = AuditEntry.objects.count()
    assert resolve() is None
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_resolving_a_silence_that_has_no_case_does_nothing(reference):
    silence("sla:1:clock:7")
    entries = AuditEntry.objects.count()
    assert resolve(fingerprint_parts=("order-to-cash", "invoice")) is None
    assert resolve(kind="other.silence") is None
    assert AuditEntry.objects.count() == entries
    assert Case.objects.get().status == CaseStatus.OPEN


@pytest.mark.django_db
def test_a_new_silence_reopens_the_resolved_case(reference, operator):
    case = silence("sla:1:clock:7", hours_ago=5)
    case_transition(case_id=case.pk, status=CaseStatus.RESOLVED, actor=operator, expected_version=case.version)
    reopened = silence("sla:1:clock:8")
    assert reopened.pk == case.pk and reopened.status == CaseStatus.OPEN and reopened.resolved_at is None
    assert reopened.occurrence_count == 2
    activity = CaseActivity.objects.get(case=case, kind=ActivityKind.REOPENED)
    assert activity.body == "a new occurrence after it was resolved" and activity.actor == "system:slas"
    assert AuditEntry.objects.filter(action="exceptions.signals_recorded").last().after["cases_reopened"] == [case.pk]
    # Resolved automatically, then silent again: the same case reopens once more.
    resolve()
    assert silence("sla:1:clock:9").status == CaseStatus.OPEN
    assert Case.objects.count() == 1


@pytest.mark.django_db
def test_an_occurrence_has_exactly_one_source(reference):
    case = silence("sla:1:clock:7")
    base = {
        "case": case,
        "category": case.category,
        "explanation": "test",
        "fingerprint": case.fingerprint,
        "system": "sap-s4",
        "kind": "sla.silence",
        "occurred_at": timezone.now(),
    }
    for sources in ({}, {"event_id": 10**12, "event_received_at": timezone.now(), "signal_key": "both"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ExceptionRecord.objects.create(**base, **sources)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionRecord.objects.create(**base, signal_key="sla:1:clock:7")  # the key is unique
    ExceptionRecord.objects.create(**base, signal_key="sla:1:clock:8")
    ExceptionRecord.objects.create(**base, event_id=10**12, event_received_at=timezone.now())
    assert ExceptionRecord.objects.count() == 3


@pytest.mark.django_db
def test_a_signal_occurrence_is_not_replayable(reference, operator):
    ReplayTarget.objects.create(system="sap-s4", url="http://127.0.0.1:9/")
    case = silence("sla:1:clock:7")
    occurrence = case.occurrences.get()
    with pytest.raises(DomainError, match="signal"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version, occurrence_id=occurrence.pk)
    with pytest.raises(DomainError, match="no occurrence to replay"):
        replay_request(case_id=case.pk, actor=operator, expected_version=case.version)
    client = Client()
    client.force_login(operator)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert ">signal</span>" in page and f'action="/cases/{case.pk}/replay/"' not in page
    detail = client.get(f"/api/v1/cases/{case.pk}/").json()
    assert detail["occurrences"][0]["event_id"] is None
    assert detail["occurrences"][0]["signal_key"] == "sla:1:clock:7"


@pytest.mark.django_db
def test_the_fingerprint_lock_is_reentrant_within_a_transaction(reference):
    # signal_record locks the fingerprint, then grouping locks it again in the same transaction.
    with transaction.atomic():
        fingerprints_lock([signal_fingerprint(**SILENCE)])
        assert silence("sla:1:clock:7").occurrence_count == 1


# ---- Targets count from the first occurrence (issue 9, item 7) ------------------------------------------------------


@pytest.mark.django_db
def test_case_targets_count_from_the_first_occurrence(raise_failures):
    # The failure happened long before it was classified (tests.factories.T0 lies months back).
    raise_failures(failure())
    case = Case.objects.get()
    queue = Queue.objects.get(slug="accounts-receivable")
    assert case.triage_due_at == case.first_seen + queue.triage_target
    assert case.resolve_due_at == case.first_seen + queue.resolve_target
    assert cases_escalate() == [case.pk]  # overdue now, not four hours after classification


@pytest.mark.django_db
def test_a_silence_first_seen_three_weeks_ago_is_overdue(reference):
    case = silence("sla:1:clock:7", hours_ago=21 * 24)
    assert case.triage_due_at < timezone.now() and case.resolve_due_at < timezone.now()
    assert cases_escalate() == [case.pk]


@pytest.mark.django_db
def test_signals_recorded_together_group_by_fingerprint_in_one_pass(reference, django_assert_max_num_queries):
    def signal(key: str, step: str, hours_ago: float) -> Signal:
        return Signal(
            signal_key=key,
            title=f"Stalled at {step}",
            message=f"waiting for {step}",
            occurred_at=NOW - timedelta(hours=hours_ago),
            **{**SILENCE, "fingerprint_parts": ("order-to-cash", step)},
        )

    batch = [signal(f"stalled:{n}", "goods-issue" if n % 3 else "billing", n) for n in range(1, 61)]
    silence("stalled:1")  # recorded before: the batch leaves it as it is
    # Grouping and the audit entry are per call, not per signal: 60 signals cost a bounded number of queries.
    with django_assert_max_num_queries(30):
        cases = signals_record(batch, actor="system:slas")
    assert set(cases) == {s.signal_key for s in batch}
    by_step = {c.error_signature: c for c in cases.values()}
    assert set(by_step) == {"order-to-cash / goods-issue", "order-to-cash / billing"}
    assert by_step["order-to-cash / goods-issue"].occurrence_count == 40
    assert by_step["order-to-cash / billing"].occurrence_count == 20
    assert ExceptionRecord.objects.count() == 60
    # The case counts from its oldest occurrence.
    assert by_step["order-to-cash / billing"].first_seen == NOW - timedelta(hours=60)
    assert signals_record(batch, actor="system:slas") == cases  # idempotent per key
    assert ExceptionRecord.objects.count() == 60
    # One audit entry per call, naming every key it recorded (59: one was recorded before); none for the repeat.
    [entry] = AuditEntry.objects.filter(action="exceptions.signals_recorded").exclude(after__occurrences=1)
    assert entry.after["occurrences"] == 59 and set(entry.after["signal_keys"]) == {s.signal_key for s in batch[1:]}
    assert AuditEntry.objects.filter(action="exceptions.signals_recorded").count() == 2
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_signal_naming_a_queue_goes_there_not_where_routing_would(reference):
    finance = Queue.objects.get(slug="billing")
    case = silence("sla:breach:1", queue_id=finance.pk)
    assert case.queue == finance and case.routing_rule is None
    assert silence("sla:breach:2").queue == finance  # the same fingerprint's later occurrences join that case


@pytest.mark.django_db
def test_one_bad_signal_does_not_stop_the_others_when_isolated(reference):
    good = Signal(signal_key="ok:1", title="t", message="m", occurred_at=NOW, **SILENCE)
    bad = Signal(signal_key="bad:1", title="t", message="m", occurred_at=NOW, **{**SILENCE, "category_slug": "nope"})
    with pytest.raises(DomainError, match="no category 'nope'"):
        signals_record([good, bad], actor="system:slas")
    assert not ExceptionRecord.objects.exists()  # all or nothing
    cases = signals_record_isolated([good, bad], actor="system:slas", log_event="test.signal_failed")
    assert set(cases) == {"ok:1"} and ExceptionRecord.objects.get().signal_key == "ok:1"
