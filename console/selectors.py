"""Reads for the console's own pages."""

from datetime import timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from console.lib.audit import AuditEntry


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
