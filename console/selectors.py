"""Reads for the console's own pages."""

from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from console.lib.audit import AuditEntry, audit_verify

# The hourly chain check leaves its verdict here; the compliance home page reads it instead of walking the chain.
AUDIT_CHAIN_STATUS_KEY = "console.audit_chain_status"
AUDIT_CHAIN_STATUS_TTL = 2 * 3600


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-id")


def audit_activity_by_day(*, days: int = 14) -> list[dict]:
    """Audit entries per day and action family (auth, case, rule...) for the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        AuditEntry.objects.filter(occurred_at__gte=since)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "action")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    totals: dict[tuple, int] = {}
    for row in rows:
        key = (row["day"], row["action"].split(".", 1)[0])
        totals[key] = totals.get(key, 0) + row["n"]
    return [{"day": day, "family": family, "count": n} for (day, family), n in sorted(totals.items())]


def audit_chain_status(*, refresh: bool = False) -> dict:
    """The latest chain check: ok, entries checked, head hash, first break and when it ran.

    Walking the chain costs one pass over the trail, so the periodic check stores its verdict (in the shared cache
    when one is configured); a page asks for a fresh walk only when no verdict is there.
    """
    status = None if refresh else cache.get(AUDIT_CHAIN_STATUS_KEY)
    if status is None:
        report = audit_verify()
        status = {
            "ok": report.ok,
            "checked": report.checked,
            "head_hash": report.head_hash,
            "break_entry_id": report.first_break.entry_id if report.first_break else None,
            "break_reason": report.first_break.reason if report.first_break else "",
            "checked_at": timezone.now(),
        }
        cache.set(AUDIT_CHAIN_STATUS_KEY, status, AUDIT_CHAIN_STATUS_TTL)
    return status
