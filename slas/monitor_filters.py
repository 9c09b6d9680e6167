"""One FilterSet per monitor list: the monitors page and GET /api/v1/monitors/volume/ and /evidence/ share them."""

import django_filters
from django.db.models import Q, QuerySet

from slas.choices import EvidenceDirection, VolumeMode
from slas.models import BusinessCalendar, EvidenceMonitor, VolumeMonitor
from transactions.models import ProcessDefinition


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
