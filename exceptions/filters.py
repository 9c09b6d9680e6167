"""One FilterSet per list: the queue pages and GET /api/v1/cases/ share the cases' one; the reconciliation page and
GET /api/v1/reconciliation-results/ share the results' one."""

from datetime import timedelta

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from console.lib.filters import UtcDateTimeFilter
from console.lib.forms import BootstrapFilterForm
from exceptions.choices import ACTIVE_STATUSES, PRIORITIES, CaseStatus, ReconciliationStatus
from exceptions.models import Case, Category, Queue, ReconciliationResult, ReconciliationRule
from exceptions.selectors import case_overdue_condition

# Relative ranges of "last seen", the way operators ask: what happened today, this week, this month.
SEEN_WITHIN = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
SEEN_WITHIN_CHOICES = [("24h", "last 24 h"), ("7d", "last 7 d"), ("30d", "last 30 d")]


class CaseFilterSet(django_filters.FilterSet):
    queue = django_filters.ModelChoiceFilter(queryset=Queue.objects.all(), to_field_name="slug")
    status = django_filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    active = django_filters.BooleanFilter(method="filter_active", label="Open, in progress or waiting")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Past its triage or resolve target")
    category = django_filters.ModelChoiceFilter(
        queryset=Category.objects.all(), to_field_name="slug", empty_label="Any category"
    )
    priority = django_filters.MultipleChoiceFilter(choices=PRIORITIES)
    assignee = django_filters.CharFilter(method="filter_assignee", label="Assignee (username, or 'none')")
    system = django_filters.CharFilter()
    q = django_filters.CharFilter(method="filter_text", label="Text")
    seen_since = UtcDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    seen_until = UtcDateTimeFilter(field_name="last_seen", lookup_expr="lt")
    seen_within = django_filters.ChoiceFilter(
        choices=SEEN_WITHIN_CHOICES, method="filter_seen_within", label="Last seen within", empty_label="any time"
    )

    class Meta:
        model = Case
        form = BootstrapFilterForm
        fields = ["queue", "status", "active", "overdue", "category", "priority", "assignee", "system", "q"]

    def filter_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(status__in=ACTIVE_STATUSES) if value else queryset.exclude(status__in=ACTIVE_STATUSES)

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        overdue = case_overdue_condition(now=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_seen_within(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value not in SEEN_WITHIN:
            return queryset
        return queryset.filter(last_seen__gte=timezone.now() - SEEN_WITHIN[value])

    def filter_assignee(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value.strip().lower() == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee__username=value.strip())

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        if text.lstrip("#").isdigit():
            return queryset.filter(pk=int(text.lstrip("#")))
        return queryset.filter(Q(title__icontains=text) | Q(kind__icontains=text) | Q(system__icontains=text))


class ReconciliationResultFilterSet(django_filters.FilterSet):
    """GET /api/v1/reconciliation-results/ and the reconciliation page's lists."""

    rule = django_filters.ModelChoiceFilter(queryset=ReconciliationRule.objects.all(), empty_label="Any rule")
    status = django_filters.MultipleChoiceFilter(choices=ReconciliationStatus.choices)
    transaction = django_filters.NumberFilter(field_name="txn_id", label="Transaction id")
    left_system = django_filters.CharFilter()
    right_system = django_filters.CharFilter()
    system = django_filters.CharFilter(method="filter_system", label="System (either side)")
    entity = django_filters.CharFilter()
    occurred_since = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_until = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = ReconciliationResult
        form = BootstrapFilterForm
        fields = ["rule", "status", "transaction", "left_system", "right_system", "system", "entity"]

    def filter_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(left_system=value.strip()) | Q(right_system=value.strip()))
