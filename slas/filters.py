"""One FilterSet per list: the clocks page and GET /api/v1/sla-clocks/ share one, the monitor lists (page and
GET /api/v1/monitors/volume/ and /evidence/) one per kind."""

import django_filters
from django.db.models import Q, QuerySet

from console.lib.filters import UtcDateTimeFilter
from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus, EvidenceDirection, VolumeMode
from slas.models import BusinessCalendar, EvidenceMonitor, SlaClock, SlaDefinition, VolumeMonitor
from transactions.models import ProcessDefinition


class SlaClockFilterSet(django_filters.FilterSet):
    definition = django_filters.ModelChoiceFilter(
        queryset=SlaDefinition.objects.all(), to_field_name="slug", label="SLA"
    )
    status = django_filters.MultipleChoiceFilter(choices=ClockStatus.choices)
    live = django_filters.BooleanFilter(method="filter_live", label="Running, paused or at risk")
    process = django_filters.ModelChoiceFilter(
        field_name="txn__process", queryset=ProcessDefinition.objects.all(), to_field_name="slug", label="Process"
    )
    entity = django_filters.CharFilter(label="Legal entity")
    txn = django_filters.NumberFilter(field_name="txn_id", label="Transaction")
    started_since = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte", label="Started since")
    started_until = UtcDateTimeFilter(field_name="started_at", lookup_expr="lt", label="Started before")
    due_before = UtcDateTimeFilter(field_name="due_at", lookup_expr="lt", label="Due before")

    class Meta:
        model = SlaClock
        fields = ["definition", "status", "live", "process", "entity", "txn", "started_since", "started_until"]

    def filter_live(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        live = list(LIVE_CLOCK_STATUSES)
        return queryset.filter(status__in=live) if value else queryset.exclude(status__in=live)


class _MonitorFilterSet(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()
    calendar = django_filters.ModelChoiceFilter(queryset=BusinessCalendar.objects.all(), to_field_name="slug")
    category = django_filters.CharFilter(field_name="category_slug", label="Case category (slug)")
    q = django_filters.CharFilter(method="filter_text", label="Name or slug contains")

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        return queryset.filter(Q(name__icontains=text) | Q(slug__icontains=text)) if text else queryset


class VolumeMonitorFilterSet(_MonitorFilterSet):
    mode = django_filters.ChoiceFilter(choices=VolumeMode.choices)
    violated = django_filters.BooleanFilter(field_name="currently_violated", label="Violated now")
    system = django_filters.CharFilter(lookup_expr="icontains", label="System pattern contains")
    entity = django_filters.CharFilter(label="Legal entity")

    class Meta:
        model = VolumeMonitor
        fields = ["is_active", "calendar", "category", "mode", "violated", "system", "entity", "q"]


class EvidenceMonitorFilterSet(_MonitorFilterSet):
    direction = django_filters.ChoiceFilter(choices=EvidenceDirection.choices)
    process = django_filters.ModelChoiceFilter(queryset=ProcessDefinition.objects.all(), to_field_name="slug")
    violated = django_filters.BooleanFilter(method="filter_violated", label="Evidence missing in the last 7 days")

    class Meta:
        model = EvidenceMonitor
        fields = ["is_active", "calendar", "category", "direction", "process", "violated", "q"]

    def filter_violated(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        # missing_count is annotated by selectors.evidence_monitor_list.
        if value is None:
            return queryset
        return queryset.filter(missing_count__gt=0) if value else queryset.filter(missing_count=0)
