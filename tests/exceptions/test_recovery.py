"""Cases whose every transaction completed after the failure (the source retried) resolve themselves (issue 14.5)."""

import pytest
from django.utils import timezone

from console.models import AuditEntry
from exceptions.choices import ActivityKind
from exceptions.models import Case, CaseActivity
from exceptions.services import case_transition, cases_resolve_recovered, cases_sweep_recovered
from tests.factories import event, failure, ingest_and_correlate
from transactions.models import Transaction

pytestmark = pytest.mark.django_db


def payment_failed(raise_failures, payment: str) -> Case:
    """Payment application: received at Stripe, applying it in the ERP failed."""
    received = event(f"{payment}-1", "payment.received", 0, payment=payment)
    received["system"] = "stripe"
    raise_failures(
        received,
        failure(
            kind="payment.apply", code="F5/201", message="Posting period 04 2026 is not open", hours=1, payment=payment
        ),
    )
    return Case.objects.get(occurrences__txn__keys__value=payment)


def retry_succeeds(source, payment: str, *, hours: float = 3, capture=None, now=None) -> Transaction:
    """The ERP retried: the payment is applied, then the invoice cleared, so the process completes."""
    for n, (kind, at) in enumerate((("payment.applied", hours), ("invoice.cleared", hours + 1)), start=2):
        record = event(f"{payment}-{n}-{hours}", kind, at, payment=payment)
        record["system"] = "sap-s4"
        if capture is not None:
            with capture(execute=True):
                ingest_and_correlate(source, record, now=now)
        else:
            ingest_and_correlate(source, record, now=now)
    return Transaction.objects.get(keys__key_type="payment", keys__value=payment)


def test_the_case_of_a_retried_transaction_resolves_after_correlation_with_the_reason(
    raise_failures, source, django_capture_on_commit_callbacks
):
    case = payment_failed(raise_failures, "P-1")
    assert case.status == "open"
    assert Transaction.objects.get(keys__value="P-1").status == "failed"

    # Through the real path: correlation commits, announces the transactions, the task resolves the case.
    txn = retry_succeeds(source, "P-1", capture=django_capture_on_commit_callbacks)
    assert txn.status == "recovered" and txn.next_step is None
    case.refresh_from_db()
    assert case.status == "resolved" and case.resolved_at is not None
    activity = CaseActivity.objects.filter(case=case, actor="system:recovery").get()
    assert activity.kind == ActivityKind.STATUS
    assert "every affected transaction completed after the failure" in activity.body
    assert f"transaction {txn.pk} recovered" in activity.body
    assert activity.data["transactions"] == [txn.pk]
    audit = AuditEntry.objects.filter(action="case.resolved", object_id=str(case.pk))
    assert audit.count() == 1 and audit.get().actor == "system:recovery"

    # Idempotent: running again (a redelivered task, the sweep) changes nothing.
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == []
    assert cases_sweep_recovered() == []
    assert CaseActivity.objects.filter(case=case, actor="system:recovery").count() == 1
    assert AuditEntry.objects.filter(action="case.resolved", object_id=str(case.pk)).count() == 1


def test_a_case_stays_open_while_one_of_its_transactions_has_not_completed(raise_failures, source):
    payment_failed(raise_failures, "P-1")
    case = payment_failed(raise_failures, "P-2")  # the same failure: one case, two transactions
    assert case.occurrence_count == 2
    retry_succeeds(source, "P-1")
    assert cases_sweep_recovered() == []
    case.refresh_from_db()
    assert case.status == "open"

    txn = retry_succeeds(source, "P-2")
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == [case.pk]


def test_a_case_a_person_reopened_stays_open_until_new_evidence(raise_failures, source, role_user):
    manager = role_user("manager")
    case = payment_failed(raise_failures, "P-1")
    txn = retry_succeeds(source, "P-1")
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == [case.pk]
    case.refresh_from_db()
    case_transition(case_id=case.pk, status="open", actor=manager, expected_version=case.version, note="not fixed")

    assert cases_sweep_recovered() == []
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == []
    case.refresh_from_db()
    assert case.status == "open"

    # New evidence: the transaction changed after the reopen (another event arrived and it is still complete).
    txn = retry_succeeds(source, "P-1", hours=6, now=timezone.now())
    assert txn.status == "recovered"
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == [case.pk]


def test_a_case_of_a_transaction_that_is_still_failed_stays_open(raise_failures, source):
    case = payment_failed(raise_failures, "P-1")
    txn = Transaction.objects.get(keys__value="P-1")
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == []
    case.refresh_from_db()
    assert case.status == "open"


def test_a_signal_on_a_transaction_that_completed_is_left_to_its_own_signal(raise_failures, source):
    from exceptions.services import signal_record

    payment_failed(raise_failures, "P-1")
    txn = retry_succeeds(source, "P-1")
    # An SLA breach stays a breach when the transaction completes late.
    breach = signal_record(
        signal_key=f"sla-breach:{txn.pk}",
        category_slug="control",
        system="sap-s4",
        kind="sla.breached",
        title="SLA breached",
        message="payment application took 3 d",
        occurred_at=txn.last_event_at,
        txn_id=txn.pk,
    )
    assert cases_resolve_recovered(txn_ids=[txn.pk]) == [Case.objects.get(occurrences__event_id__isnull=False).pk]
    breach.refresh_from_db()
    assert breach.status == "open"
