"""The daily rollups of reconciliation results behind /reconciliation/ and the ROI's manual reconciliation avoided.

Whoever writes results marks the local days (DASHBOARD_TIME_ZONE) they changed dirty, in the same atomic block: the
days of the old and the new rows, and every day a result of the changed transactions falls on (a transaction's
"every result matched" is counted on its latest result's day, which a change to any of its results can move). The
periodic refresh rebuilds each dirty day whole from its results, so running it twice, or while a day is still
filling, never double counts; `rebuild_reconciliation_rollups` rebuilds a range. Until a day is rebuilt the page reads
it from the results (exceptions.selectors.reconciliation_dashboard), so a mark costs freshness nothing.
"""

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from exceptions.models import (
    ReconciliationDaily,
    ReconciliationDirtyDay,
    ReconciliationReconciledDaily,
    ReconciliationResult,
)
from exceptions.selectors.reconciliation import STATUSES, reconciled_transaction_count, reconciliation_cells
from transactions.services.interfaces import day_bounds, local_day

logger = logging.getLogger(__name__)

CHUNK = 1000


def reconciliation_days_mark_dirty(days: Iterable[date], *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    ReconciliationDirtyDay.objects.bulk_create(
        [ReconciliationDirtyDay(day=d, marked_at=now) for d in sorted(set(days))],
        # A newer mark replaces an older one (a refresh may be rebuilding the day), so that refresh keeps this one.
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=["marked_at"],
    )


def result_days(moments: Iterable[datetime]) -> set[date]:
    return {local_day(m) for m in moments}


def transaction_result_days(txn_ids: Iterable[int]) -> set[date]:
    """The local days of every result of these transactions (recon_result_unique, which starts with txn_id)."""
    ids = sorted(set(txn_ids))
    days: set[date] = set()
    zone = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    for start in range(0, len(ids), CHUNK):
        days.update(
            ReconciliationResult.objects.filter(txn_id__in=ids[start : start + CHUNK])
            .annotate(day=TruncDate("occurred_at", tzinfo=zone))
            .values_list("day", flat=True)
            .distinct()
            .order_by()
        )
    return days


def rule_result_days(rule_id: int) -> set[date]:
    """The local days a rule's deletion changes: those of every result of the transactions it has a result on."""
    holders = ReconciliationResult.objects.filter(rule_id=rule_id).values("txn_id")
    zone = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    return set(
        ReconciliationResult.objects.filter(txn_id__in=holders)
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values_list("day", flat=True)
        .distinct()
        .order_by()
    )


def reconciliation_days_rebuild(*, days: Iterable[date]) -> int:
    """Recompute the rollups of these local days from their results and replace their rows; returns rows written."""
    written = 0
    for day in sorted(set(days)):
        cells = reconciliation_cells(days=[day])
        since, until = day_bounds(day, day)
        reconciled = reconciled_transaction_count(since=since, until=until)
        rows = [
            ReconciliationDaily(
                day=day,
                rule_id=rule_id,
                left_system=left_system,
                right_system=right_system,
                entity=entity,
                amount_at_stake=counts["amount_at_stake"],
                **{status: counts[status] for status in STATUSES},
            )
            for (_, rule_id, left_system, right_system, entity), counts in sorted(cells.items())
        ]
        with transaction.atomic():
            ReconciliationDaily.objects.filter(day=day).delete()
            ReconciliationDaily.objects.bulk_create(rows, batch_size=CHUNK)
            ReconciliationReconciledDaily.objects.filter(day=day).delete()
            if reconciled:
                ReconciliationReconciledDaily.objects.create(day=day, transactions=reconciled)
        written += len(rows)
    return written


def reconciliation_rollups_refresh(*, limit: int = 31) -> int:
    """Periodic: rebuild the days marked dirty (oldest first); a day marked again while rebuilding stays marked."""
    with transaction.atomic():
        claimed = list(
            ReconciliationDirtyDay.objects.select_for_update(skip_locked=connection.vendor == "postgresql")
            .order_by("day")
            .values_list("pk", "day", "marked_at")[:limit]
        )
        if not claimed:
            return 0
        written = reconciliation_days_rebuild(days=[day for _, day, _ in claimed])
        # Only the marks we read: a batch that marked the day again meanwhile (a later marked_at) keeps its mark.
        for pk, _, marked_at in claimed:
            ReconciliationDirtyDay.objects.filter(pk=pk, marked_at=marked_at).delete()
    logger.info("exceptions.reconciliation_rollups_refreshed", extra={"days": len(claimed), "rows": written})
    return written


def reconciliation_rollups_rebuild(*, first: date, last: date) -> int:
    """Rebuild every local day first..last (a new installation, or rollups suspected wrong); returns rows written."""
    began = timezone.now()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    written = reconciliation_days_rebuild(days=days)
    # A mark made while rebuilding stays: its change may have missed the day's rebuild.
    ReconciliationDirtyDay.objects.filter(day__gte=first, day__lte=last, marked_at__lt=began).delete()
    return written


def reconciliation_earliest_day() -> date | None:
    first = ReconciliationResult.objects.aggregate(first=Min("occurred_at"))["first"]
    return local_day(first) if first else None
