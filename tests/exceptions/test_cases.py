import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError, NotPermitted, StaleVersion
from exceptions.models import Case, CaseActivity, ExceptionRecord, FingerprintOverride, Notification, Queue
from exceptions.services import (
    case_assign,
    case_comment,
    case_transition,
    cases_bulk,
    cases_escalate,
    cases_merge,
    failures_classify,
    occurrence_split,
)
from tests.factories import failure


@pytest.fixture
def ops(role_user):
    user = role_user("finance_ops", username="olga")
    Queue.objects.get(slug="accounts-receivable").members.add(user)
    return user


@pytest.mark.django_db
def test_repeats_group_into_one_case_routed_with_explanation(raise_failures):
    raise_failures(failure(), failure(message="Credit check failed for SO 4712: exposure EUR 99.00 exceeds limit"))
    case = Case.objects.get()
    assert case.occurrence_count == 2 and case.category.slug == "business_rule"
    assert case.queue.slug == "accounts-receivable" and case.status == "open"
    assert "V1/154" in case.explanation and case.rule.name == "Credit block"
    assert case.priority == 2  # medium severity, raised by the EUR 125,099 at stake
    assert case.triage_due_at and case.resolve_due_at
    record = ExceptionRecord.objects.first()
    assert record.txn_id is not None and record.explanation == case.explanation
    assert AuditEntry.objects.filter(action="exceptions.classified").exists()


@pytest.mark.django_db
def test_every_simulated_failure_kind_is_classified(raise_failures):
    from transactions.simulation.catalogue import FAILURES

    records = []
    for kind in (f for f in FAILURES if not f.delivery):
        first, status = kind.variants[0]
        # Each phrasing too: the simulator's other notations must classify like the first.
        for code, message in [(first, kind.message), *kind.phrasings]:
            record = failure(kind=kind.sites[0][1], system="x", code=code or None, message=message, amount=None)
            record["error"]["type"] = kind.error_type
            if status:
                record["attributes"] = {"http.response.status_code": status}
            records.append(record)
    raise_failures(*records)
    assert not Case.objects.filter(category__slug="unclassified").exists()
    assert ExceptionRecord.objects.count() == len(records)


@pytest.mark.django_db
def test_unclassified_failures_are_a_visible_gap(raise_failures):
    raise_failures(failure(code="ZZZ", message="Something nobody has seen before"))
    case = Case.objects.get()
    assert case.category.slug == "unclassified" and case.queue.is_default


@pytest.mark.django_db
def test_classification_is_idempotent(raise_failures):
    ids = raise_failures(failure())
    failures_classify(event_ids=ids)
    assert ExceptionRecord.objects.count() == 1 and Case.objects.get().occurrence_count == 1


@pytest.mark.django_db
def test_recurrence_reopens_a_resolved_case_and_notifies(raise_failures, ops, django_capture_on_commit_callbacks):
    raise_failures(failure())
    case = Case.objects.get()
    case_assign(case_id=case.pk, assignee=ops, actor=ops, expected_version=case.version)
    case.refresh_from_db()
    case_transition(case_id=case.pk, status="resolved", actor=ops, expected_version=case.version)
    with django_capture_on_commit_callbacks(execute=True):
        raise_failures(failure(hours=2))
    case.refresh_from_db()
    assert case.status == "open" and case.resolved_at is None and case.occurrence_count == 2
    assert CaseActivity.objects.filter(case=case, kind="reopened").exists()
    assert Notification.objects.filter(user=ops, kind="reopened").exists()


@pytest.mark.django_db
def test_snooze_by_occurrences(raise_failures, ops):
    raise_failures(failure())
    case = Case.objects.get()
    with pytest.raises(DomainError, match="condition"):
        case_transition(case_id=case.pk, status="ignored", actor=ops, expected_version=case.version)
    case_transition(case_id=case.pk, status="ignored", actor=ops, expected_version=case.version, snooze_occurrences=2)
    raise_failures(failure(hours=1))
    assert Case.objects.get().status == "ignored"
    raise_failures(failure(hours=2))
    assert Case.objects.get().status == "open"


@pytest.mark.django_db
def test_actions_check_versions_and_queues(raise_failures, ops, role_user):
    raise_failures(failure())
    case = Case.objects.get()
    stale = case.version
    case_comment(case_id=case.pk, body="calling the credit desk", actor=ops, expected_version=case.version)
    with pytest.raises(StaleVersion):
        case_comment(case_id=case.pk, body="again", actor=ops, expected_version=stale)
    outsider = role_user("finance_ops", username="otto")
    case.refresh_from_db()
    with pytest.raises(NotPermitted):
        case_assign(case_id=case.pk, assignee=outsider, actor=outsider, expected_version=case.version)
    compliance = role_user("compliance")
    with pytest.raises(NotPermitted):
        case_comment(case_id=case.pk, body="x", actor=compliance, expected_version=case.version)
    manager = role_user("manager")
    case_comment(case_id=case.pk, body="escalating to the CFO", actor=manager, expected_version=case.version)
    assert audit_verify().ok


@pytest.mark.django_db
def test_bulk_reports_each_case(raise_failures, ops):
    raise_failures(
        failure(), failure(code="F5/201", message="Posting period 04 2026 is not open", kind="payment.apply")
    )
    a, b = Case.objects.order_by("id")
    result = cases_bulk(
        action="transition", versions={a.pk: a.version, b.pk: b.version - 1}, actor=ops, status="resolved"
    )
    assert result.done == [a.pk] and "changed since" in result.failed[b.pk]


@pytest.mark.django_db
def test_merge_and_split_stick_for_future_occurrences(raise_failures, ops):
    raise_failures(
        failure(),
        failure(
            code="F5/201", message="Posting period 04 2026 is not open for company code 1010", kind="payment.apply"
        ),
    )
    credit, period = Case.objects.order_by("id")
    cases_merge(target_id=credit.pk, source_ids=[period.pk], actor=ops)
    raise_failures(
        failure(code="F5/201", message="Posting period 05 2026 is not open for company code 1010", kind="payment.apply")
    )
    credit.refresh_from_db()
    assert credit.occurrence_count == 3 and Case.objects.get(pk=period.pk).merged_into_id == credit.pk
    occurrence = ExceptionRecord.objects.filter(case=credit, error_code="F5/201").first()
    split = occurrence_split(occurrence_id=occurrence.pk, actor=ops, message_contains="company code 1010")
    raise_failures(
        failure(code="F5/201", message="Posting period 06 2026 is not open for company code 1010", kind="payment.apply")
    )
    split.refresh_from_db()
    assert split.occurrence_count == 2
    assert FingerprintOverride.objects.filter(reason="split", target=split).exists()


@pytest.mark.django_db
def test_escalation_raises_priority_and_notifies_the_lead(raise_failures, ops, django_capture_on_commit_callbacks):
    queue = Queue.objects.get(slug="accounts-receivable")
    queue.lead = ops
    queue.save()
    raise_failures(failure(amount="10"))
    case = Case.objects.get()
    assert case.priority == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert cases_escalate(now=timezone.now() + timedelta(hours=5)) == [case.pk]
    case.refresh_from_db()
    assert case.priority == 2 and case.escalation_level == 1
    assert Notification.objects.filter(user=ops, kind="escalated").exists()
    assert cases_escalate(now=timezone.now() + timedelta(hours=6)) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_users_assigning_one_case_one_wins(raise_failures, ops, role_user):
    raise_failures(failure())
    case = Case.objects.get()
    other = role_user("finance_ops", username="oscar")
    case.queue.members.add(other)
    barrier = threading.Barrier(2)
    outcomes = []

    def assign(user):
        try:
            barrier.wait()
            case_assign(case_id=case.pk, assignee=user, actor=user, expected_version=case.version)
            outcomes.append("won")
        except StaleVersion:
            outcomes.append("stale")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=(u,)) for u in (ops, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stale", "won"]
    case.refresh_from_db()
    assert case.version == 3 and CaseActivity.objects.filter(case=case, kind="assigned").count() == 1


def test_an_escalated_case_still_counts_as_overdue_and_escalates_once_per_target(raise_failures, ops):
    from exceptions.selectors import case_overdue_condition

    raise_failures(failure(amount="10"))
    case = Case.objects.get()
    case.assignee = ops
    case.save()
    target = case.queue.resolve_target
    late = case.resolve_due_at + timedelta(minutes=5)
    assert cases_escalate(now=late) == [case.pk]
    case.refresh_from_db()
    assert case.escalation_level == 1
    # Still overdue on the queue page: escalation does not move the due date.
    assert Case.objects.filter(case_overdue_condition(now=late), pk=case.pk).exists()
    assert cases_escalate(now=late + timedelta(minutes=1)) == []  # not again within the target period
    assert cases_escalate(now=timezone.now() + target + timedelta(minutes=1)) == [case.pk]
    case.refresh_from_db()
    assert case.escalation_level == 2
    assert cases_escalate(now=timezone.now() + 5 * target) == []  # two escalations at most


# ---- A case's one-line name: its latest real message ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_case_is_named_after_its_latest_message_not_its_template(raise_failures):
    raise_failures(failure(message="Credit check failed for SO 4711:\n  exposure EUR 125,000.00   exceeds limit"))
    case = Case.objects.get()
    assert "<n>" in case.title  # the template stays the grouping key
    assert case.latest_message == "Credit check failed for SO 4711:"  # the first line, spaces collapsed
    raise_failures(failure(message="Credit check failed for SO 4712: exposure EUR 99.00 exceeds limit", hours=2))
    case.refresh_from_db()
    assert case.latest_message == "Credit check failed for SO 4712: exposure EUR 99.00 exceeds limit"
    # A late arrival (older than the latest occurrence) does not rename the case.
    raise_failures(failure(message="Credit check failed for SO 4700: exposure EUR 1.00 exceeds limit", hours=1))
    case.refresh_from_db()
    assert case.occurrence_count == 3 and "SO 4712" in case.latest_message


@pytest.mark.django_db
def test_merge_and_split_keep_the_latest_message(raise_failures, ops):
    raise_failures(
        failure(),
        failure(code="F5/201", message="Posting period 04 2026 is not open", kind="payment.apply", hours=3),
    )
    credit, period = Case.objects.order_by("id")
    target = cases_merge(target_id=credit.pk, source_ids=[period.pk], actor=ops)
    assert target.latest_message == "Posting period 04 2026 is not open"  # the newer of the two
    occurrence = ExceptionRecord.objects.get(case=credit, error_code="F5/201")
    split = occurrence_split(occurrence_id=occurrence.pk, actor=ops)
    credit.refresh_from_db()
    assert split.latest_message == "Posting period 04 2026 is not open"
    assert credit.latest_message.startswith("Credit check failed for SO 4711")


def test_headline_cuts_long_messages_to_one_short_line():
    from exceptions.classification import HEADLINE_LENGTH, headline

    assert headline("") == ""
    assert headline("\n\n  first   line \nsecond") == "first line"
    long = headline("x" * 500)
    assert len(long) == HEADLINE_LENGTH and long.endswith("…")


@pytest.mark.django_db
def test_the_migration_names_existing_cases_after_their_latest_message(raise_failures):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("exceptions.migrations.0003_case_latest_message_and_queue_sort_indexes")
    raise_failures(
        failure(), failure(message="Credit check failed for SO 4799: exposure EUR 5.00 exceeds limit", hours=1)
    )
    Case.objects.update(latest_message="")
    migration.latest_messages_backfill(apps, None)
    assert Case.objects.get().latest_message == "Credit check failed for SO 4799: exposure EUR 5.00 exceeds limit"
