"""One FilterSet for clock lists: the clocks page and GET /api/v1/sla-clocks/ use the same one."""

import django_filters
from django.db.models import QuerySet

from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus
from slas.models import SlaClock, SlaDefinition
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
    started_since = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte", label="Started since")
    started_until = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt", label="Started before")
    due_before = django_filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt", label="Due before")

    class Meta:
        model = SlaClock
        fields = ["definition", "status", "live", "process", "entity", "txn", "started_since", "started_until"]

    def filter_live(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        live = list(LIVE_CLOCK_STATUSES)
        return queryset.filter(status__in=live) if value else queryset.exclude(status__in=live)
