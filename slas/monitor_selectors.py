"""Reads of the monitors: volume and evidence monitors with their state, their checks, and both kinds in one list."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from slas.choices import EvidenceCheckStatus
from slas.models import EvidenceCheck, EvidenceMonitor, VolumeMonitor

VOLUME, EVIDENCE = "volume", "evidence"
MONITOR_TYPES = (EVIDENCE, VOLUME)  # in the order the combined list breaks ties of equal slugs
# An evidence monitor counts as violated while it has missing evidence decided this recently.
RECENT_MISSING = timedelta(days=7)


def volume_monitor_list() -> QuerySet[VolumeMonitor]:
    return VolumeMonitor.objects.select_related("calendar", "queue").order_by("slug")


def volume_monitor_get(*, monitor_id: int) -> VolumeMonitor:
    return volume_monitor_list().get(pk=monitor_id)


def evidence_monitor_list(*, now: datetime | None = None) -> QuerySet[EvidenceMonitor]:
    """With counts of pending checks and of evidence missing in the last week (evidencecheck_monitor_idx)."""
    since = (now or timezone.now()) - RECENT_MISSING
    return (
        EvidenceMonitor.objects.select_related("calendar", "queue", "process")
        .annotate(
            pending_count=Count("checks", filter=Q(checks__status=EvidenceCheckStatus.PENDING)),
            missing_count=Count(
                "checks", filter=Q(checks__status=EvidenceCheckStatus.MISSING, checks__decided_at__gte=since)
            ),
        )
        .order_by("slug")
    )


def evidence_monitor_get(*, monitor_id: int) -> EvidenceMonitor:
    return evidence_monitor_list().get(pk=monitor_id)


def evidence_check_list(*, monitor: EvidenceMonitor, limit: int = 100) -> list[EvidenceCheck]:
    """The monitor's latest checks, newest trigger first."""
    return list(EvidenceCheck.objects.filter(monitor=monitor).order_by("-trigger_at", "-id")[:limit])


@dataclass(frozen=True)
class MonitorRow:
    """Either kind of monitor, as the combined list shows it."""

    type: str
    monitor: VolumeMonitor | EvidenceMonitor

    @property
    def key(self) -> tuple[str, str]:
        return (self.monitor.slug, self.type)

    @property
    def violated(self) -> bool:
        if self.type == VOLUME:
            return bool(self.monitor.currently_violated)
        return bool(getattr(self.monitor, "missing_count", 0))

    @property
    def summary(self) -> str:
        m = self.monitor
        if self.type == VOLUME:
            bounds = f"at least {m.min_count}" + (f", at most {m.max_count}" if m.max_count is not None else "")
            scope = f"{m.kind} from {m.system}" + (f" for {m.entity}" if m.entity else "")
            when = f"by {m.deadline_time:%H:%M} each working day" if m.deadline_time else f"per {m.window}"
            return f"{bounds} {scope} {when}"
        direction = "before" if m.direction == "before" else "within"
        evidence = " or ".join(
            x for x in (m.evidence_kind, m.evidence_approval_step and f"approval {m.evidence_approval_step}") if x
        )
        return f"{evidence} {direction} {m.window} of business time of {m.trigger_kind}"


def monitor_page(
    *,
    types: tuple[str, ...] = MONITOR_TYPES,
    after: tuple[str, str] | None = None,
    limit: int = 50,
    is_active: bool | None = None,
    violated: bool | None = None,
    calendar: str = "",
    category: str = "",
    q: str = "",
) -> tuple[list[MonitorRow], bool]:
    """Both kinds in one list ordered by (slug, type), a page after the key `after`: (rows, whether more follow).

    Keyset pagination over two tables: each is read from the key on (slug index), `limit + 1` rows at most, and the
    two runs are merged; no OFFSET, no COUNT.
    """
    rows: list[MonitorRow] = []
    for kind in types:
        queryset = volume_monitor_list() if kind == VOLUME else evidence_monitor_list()
        if after is not None:
            slug, after_type = after
            same_slug_follows = MONITOR_TYPES.index(kind) > MONITOR_TYPES.index(after_type)
            queryset = queryset.filter(Q(slug__gt=slug) | Q(slug=slug) if same_slug_follows else Q(slug__gt=slug))
        if is_active is not None:
            queryset = queryset.filter(is_active=is_active)
        if calendar:
            queryset = queryset.filter(calendar__slug=calendar)
        if category:
            queryset = queryset.filter(category_slug=category)
        if q:
            queryset = queryset.filter(Q(name__icontains=q) | Q(slug__icontains=q))
        if violated is not None and kind == VOLUME:
            queryset = queryset.filter(currently_violated=violated)
        if violated is not None and kind == EVIDENCE:
            queryset = queryset.filter(missing_count__gt=0) if violated else queryset.filter(missing_count=0)
        rows.extend(MonitorRow(kind, m) for m in queryset[: limit + 1])
    rows.sort(key=lambda r: (r.key[0], MONITOR_TYPES.index(r.type)))
    return rows[:limit], len(rows) > limit


__all__ = [
    "EVIDENCE",
    "MONITOR_TYPES",
    "VOLUME",
    "MonitorRow",
    "evidence_check_list",
    "evidence_monitor_get",
    "evidence_monitor_list",
    "monitor_page",
    "volume_monitor_get",
    "volume_monitor_list",
]
