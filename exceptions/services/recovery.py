"""Cases that resolve themselves: every transaction a case's failures belong to completed afterwards (the source
retried and the retry succeeded), so nothing is left for a person to do.

Runs after correlation (the transactions app announces changed transactions with `transactions_correlated`) and
after classification (a failure and its successful retry may arrive in the same batch), and from a periodic sweep,
so that a lost task only delays it. Idempotent: only active cases are considered, and each is re-checked under its
row lock.
"""

import logging
from datetime import datetime

from django.db import transaction

from exceptions.choices import ACTIVE_STATUSES, ActivityKind
from exceptions.models import Case, CaseActivity, ExceptionRecord
from exceptions.services.cases import case_lock, case_resolve_automatically
from transactions.choices import COMPLETED_STATUSES
from transactions.selectors import transaction_facts_list

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:recovery"
REASON = "transactions_recovered"
CHUNK = 1000


def _active_case_ids(txn_ids: list[int]) -> list[int]:
    found: set[int] = set()
    for start in range(0, len(txn_ids), CHUNK):
        found.update(
            ExceptionRecord.objects.filter(
                txn_id__in=txn_ids[start : start + CHUNK], case__status__in=ACTIVE_STATUSES, case__merged_into=None
            ).values_list("case_id", flat=True)
        )
    return sorted(found)


def cases_resolve_recovered(*, txn_ids: list[int]) -> list[int]:
    """Resolve the active cases of these transactions whose every transaction has completed; the ids resolved."""
    finished = [
        t["id"] for t in transaction_facts_list(txn_ids=sorted(set(txn_ids))) if t["status"] in COMPLETED_STATUSES
    ]
    if not finished:
        return []
    resolved = [case_id for case_id in _active_case_ids(finished) if case_resolve_if_recovered(case_id=case_id)]
    if resolved:
        logger.info("cases.resolved_recovered", extra={"cases": len(resolved), "first_ids": resolved[:20]})
    return resolved


def _reopened_by_a_person_at(case: Case) -> datetime | None:
    """When a person reopened the case after Closeloop last resolved it this way; None if they did not."""
    auto = (
        CaseActivity.objects.filter(case=case, actor=SYSTEM_ACTOR, data__reason=REASON).order_by("-created_at").first()
    )
    if auto is None:
        return None
    reopen = (
        CaseActivity.objects.filter(case=case, kind=ActivityKind.STATUS, created_at__gt=auto.created_at)
        .exclude(actor__startswith="system:")
        .order_by("-created_at")
        .first()
    )
    return reopen.created_at if reopen else None


@transaction.atomic
def case_resolve_if_recovered(*, case_id: int) -> bool:
    """Resolve one case if every transaction of its occurrences completed. Not when an occurrence has no transaction
    (a failure not correlated yet: nothing shows it is over), nor when one is a signal (an SLA breach stays a breach
    when the transaction completes late; a stall resolves through its own signal), nor, once a person reopened the
    case after it resolved this way, until new evidence arrives (a new occurrence, or a transaction of the case
    changing)."""
    case = case_lock(case_id, None)
    if case.status not in ACTIVE_STATUSES:
        return False
    rows = list(ExceptionRecord.objects.filter(case=case).values_list("txn_id", "created_at", "event_id"))
    txn_ids = sorted({txn_id for txn_id, _, _ in rows if txn_id is not None})
    if not txn_ids or any(txn_id is None or event_id is None for txn_id, _, event_id in rows):
        return False
    txns = transaction_facts_list(txn_ids=txn_ids)
    if len(txns) != len(txn_ids) or any(t["status"] not in COMPLETED_STATUSES for t in txns):
        return False
    reopened_at = _reopened_by_a_person_at(case)
    if reopened_at is not None:
        new_occurrence = any(created_at > reopened_at for _, created_at, _ in rows)
        changed_since = any(t["updated_at"] > reopened_at for t in txns)
        if not (new_occurrence or changed_since):
            return False
    listed = ", ".join(f"{t['id']} {t['status']}" for t in sorted(txns, key=lambda t: t["id"])[:10])
    more = f" and {len(txns) - 10} more" if len(txns) > 10 else ""
    return case_resolve_automatically(
        case_id=case.pk,
        actor=SYSTEM_ACTOR,
        kind=ActivityKind.STATUS,
        body=(
            f"every affected transaction completed after the failure, so a later attempt succeeded "
            f"(transaction {listed}{more})"
        ),
        data={"reason": REASON, "transactions": txn_ids[:100]},
    )


def cases_resolve_recovered_for_events(*, event_ids: list[int]) -> list[int]:
    """After classification: the failure and the retry that made it good may have been correlated in one batch,
    before the case existed."""
    txn_ids = ExceptionRecord.objects.filter(event_id__in=event_ids, txn__isnull=False).values_list("txn_id", flat=True)
    return cases_resolve_recovered(txn_ids=list(set(txn_ids)))


def cases_sweep_recovered(*, limit: int = 500) -> list[int]:
    """Periodic: active cases with a completed transaction, in case the task after correlation was lost."""
    txn_ids = list(
        ExceptionRecord.objects.filter(
            case__status__in=ACTIVE_STATUSES, case__merged_into=None, txn__status__in=COMPLETED_STATUSES
        )
        .values_list("txn_id", flat=True)
        .distinct()[:limit]
    )
    return cases_resolve_recovered(txn_ids=txn_ids)
