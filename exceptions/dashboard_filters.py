"""Drill-down filters of the reconciliation page: each selects exactly the results a figure counted.

The figures group results by rule, system pair, entity or week within a period of their events' time (`occurred_at`),
so a drill-down is the same grouping as a filter: `rule`, `left_system`/`right_system` and `entity` are exact (a value
of "-" stands for empty, as on the SLA and ROI drill-downs), `occurred_since`/`occurred_until` bound the period (or the
week), `status` the counted statuses.
"""

import django_filters
from django.db.models import Q, QuerySet

from exceptions.choices import ACTIVE_STATUSES
from exceptions.filters import ReconciliationResultFilterSet

EMPTY = "-"


def _value(value: str) -> str:
    return "" if value.strip() == EMPTY else value.strip()


class ReconciliationDrillFilterSet(ReconciliationResultFilterSet):
    """The results behind a reconciliation figure; the fields and names of the results API, empty values as "-"."""

    left_system = django_filters.CharFilter(method="filter_exact")
    right_system = django_filters.CharFilter(method="filter_exact")
    entity = django_filters.CharFilter(method="filter_exact")
    currency = django_filters.CharFilter(method="filter_exact")
    open = django_filters.BooleanFilter(method="filter_open", label="Case still being worked (or none yet)")

    class Meta(ReconciliationResultFilterSet.Meta):
        fields = [*ReconciliationResultFilterSet.Meta.fields, "currency", "open", "occurred_since", "occurred_until"]

    def filter_open(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        worked = Q(case__isnull=True) | Q(case__status__in=ACTIVE_STATUSES)
        return queryset.filter(worked) if value else queryset.exclude(worked)

    def filter_exact(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(**{name: _value(value)})
