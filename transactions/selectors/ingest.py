"""Reads of ingest: sources, tokens, aliases, rules, dead letters and feed health."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMinute

from transactions.choices import DeadLetterStatus
from transactions.models import (
    DeadLetter,
    ExtractionRule,
    IngestBatch,
    IngestSource,
    IngestToken,
    RedactionRule,
    SourceAlias,
)

# ---- Sources, tokens, aliases, rules --------------------------------------------------------------------------------


def _last_seen() -> Subquery:
    # One index probe per source on (source, received_at) instead of aggregating every batch ever received.
    newest = IngestBatch.objects.filter(source=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
    return Subquery(newest)


def ingest_source_list() -> QuerySet[IngestSource]:
    """Every source with its active and total token counts and when it last sent a batch."""
    return IngestSource.objects.annotate(
        active_tokens=Count("tokens", filter=Q(tokens__revoked_at__isnull=True)),
        total_tokens=Count("tokens"),
        last_seen=_last_seen(),
    ).order_by("name")


def ingest_source_get(*, source_id: int) -> IngestSource:
    return IngestSource.objects.annotate(last_seen=_last_seen()).get(pk=source_id)


def ingest_token_list(*, source: IngestSource) -> QuerySet[IngestToken]:
    """Newest first; revoked ones stay listed (with when) so that operators can tell what stopped working."""
    return IngestToken.objects.filter(source=source).order_by("-created_at", "-id")


def source_alias_list(*, source: IngestSource) -> QuerySet[SourceAlias]:
    return SourceAlias.objects.filter(source=source).order_by("pattern")


def extraction_rule_list() -> QuerySet[ExtractionRule]:
    """In the order ingest applies them (position, then id)."""
    return ExtractionRule.objects.select_related("source").order_by("position", "id")


def redaction_rule_list() -> QuerySet[RedactionRule]:
    return RedactionRule.objects.select_related("source").order_by("pattern", "id")


# ---- Dead letters ---------------------------------------------------------------------------------------------------


def dead_letter_list(
    *,
    status: str = "",
    source: IngestSource | None = None,
    channel: str = "",
    reason: str = "",
    before: int | None = None,
) -> QuerySet[DeadLetter]:
    """Newest first (received_at, then id); `before` is the id of the last row of the previous page (keyset)."""
    letters = DeadLetter.objects.select_related("source")
    if status:
        letters = letters.filter(status=status)
    if source is not None:
        letters = letters.filter(source=source)
    if channel:
        letters = letters.filter(channel=channel)
    if reason:
        letters = letters.filter(reason__icontains=reason)
    if before is not None:
        anchor = DeadLetter.objects.filter(pk=before).values_list("received_at", flat=True).first()
        if anchor is None:  # the anchor row is gone (retention): ids still follow arrival closely enough
            letters = letters.filter(id__lt=before)
        else:
            letters = letters.filter(Q(received_at__lt=anchor) | Q(received_at=anchor, id__lt=before))
    return letters.order_by("-received_at", "-id")


def dead_letter_get(*, dead_letter_id: int) -> DeadLetter:
    return DeadLetter.objects.select_related("source").get(pk=dead_letter_id)


# ---- Feed health ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedHealth:
    """One ingest source's intake over recent windows; rates are accepted events per minute."""

    source: IngestSource
    last_seen: datetime | None
    per_minute_15m: float
    per_minute_1h: float
    rejected_1h: int
    rejected_24h: int
    duplicates_1h: int
    duplicates_24h: int
    pending_dead_letters: int
    oldest_uncorrelated_at: datetime | None
    correlation_lag: timedelta | None  # age of the oldest batch still waiting for correlation; None: all correlated


def _window_sum(field: str, since: datetime) -> Coalesce:
    return Coalesce(Sum(field, filter=Q(received_at__gte=since)), Value(0), output_field=IntegerField())


def feed_health_list(*, now: datetime) -> list[FeedHealth]:
    """Every source's feed health in a fixed number of queries (four), whatever the number of sources."""
    since_15m, since_1h, since_24h = now - timedelta(minutes=15), now - timedelta(hours=1), now - timedelta(hours=24)
    sources = list(IngestSource.objects.annotate(last_seen=_last_seen()).order_by("name"))
    windows = {
        row["source"]: row
        for row in IngestBatch.objects.filter(received_at__gte=since_24h, received_at__lte=now)
        .values("source")
        .annotate(
            accepted_15m=_window_sum("accepted", since_15m),
            accepted_1h=_window_sum("accepted", since_1h),
            rejected_1h=_window_sum("rejected", since_1h),
            rejected_24h=_window_sum("rejected", since_24h),
            duplicates_1h=_window_sum("duplicates", since_1h),
            duplicates_24h=_window_sum("duplicates", since_24h),
        )
        .order_by()
    }
    pending = dict(
        DeadLetter.objects.filter(status=DeadLetterStatus.PENDING)
        .values("source")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("source", "n")
    )
    # Batches that accepted nothing are never correlated; the partial index batch_uncorrelated_idx covers the rest.
    uncorrelated = dict(
        IngestBatch.objects.filter(correlated_at__isnull=True, accepted__gt=0)
        .values("source")
        .annotate(oldest=Min("received_at"))
        .order_by()
        .values_list("source", "oldest")
    )
    rows = []
    for source in sources:
        window = windows.get(source.pk, {})
        oldest = uncorrelated.get(source.pk)
        row = FeedHealth(
            source=source,
            last_seen=source.last_seen,
            per_minute_15m=window.get("accepted_15m", 0) / 15,
            per_minute_1h=window.get("accepted_1h", 0) / 60,
            rejected_1h=window.get("rejected_1h", 0),
            rejected_24h=window.get("rejected_24h", 0),
            duplicates_1h=window.get("duplicates_1h", 0),
            duplicates_24h=window.get("duplicates_24h", 0),
            pending_dead_letters=pending.get(source.pk, 0),
            oldest_uncorrelated_at=oldest,
            correlation_lag=None if oldest is None else max(now - oldest, timedelta(0)),
        )
        rows.append(row)
    return rows


@dataclass(frozen=True)
class FeedBucket:
    start: datetime
    accepted: int
    rejected: int


def feed_activity_list(*, now: datetime, hours: int = 24, bucket_minutes: int = 10) -> dict[int, list[FeedBucket]]:
    """Accepted and rejected records per time bucket (oldest first, empty buckets included), by source id.

    Sources that sent nothing in the period are absent.

    The database sums per minute (at most 60 x hours rows per source, however many batches arrived); the minutes are
    folded into buckets here, which keeps the query the same on SQLite and PostgreSQL.
    """
    step = timedelta(minutes=bucket_minutes)
    end = now.replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % bucket_minutes)
    first = end - timedelta(hours=hours) + step
    starts = [first + i * step for i in range(int(timedelta(hours=hours) / step))]
    per_minute = (
        IngestBatch.objects.filter(received_at__gte=first, received_at__lte=now)
        .annotate(minute=TruncMinute("received_at"))
        .values("source", "minute")
        .annotate(accepted=Sum("accepted"), rejected=Sum("rejected"))
        .order_by()
    )
    totals: dict[int, dict[datetime, list[int]]] = {}
    for row in per_minute:
        offset = (row["minute"] - first) // step
        if not 0 <= offset < len(starts):
            continue
        cell = totals.setdefault(row["source"], {}).setdefault(starts[offset], [0, 0])
        cell[0] += row["accepted"] or 0
        cell[1] += row["rejected"] or 0
    return {
        source_id: [FeedBucket(start, *cells.get(start, (0, 0))) for start in starts]
        for source_id, cells in totals.items()
    }
