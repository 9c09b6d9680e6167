"""One FilterSet for the transactions list: the console page and GET /api/v1/transactions/ use the same one."""

import django_filters
from django.db.models import Q, QuerySet

from console.lib.filters import UtcDateTimeFilter
from transactions.canonical import normalise_key
from transactions.choices import TransactionStatus
from transactions.correlation import SYSTEM, TRACE
from transactions.models import ProcessDefinition, Transaction, TransactionKey

NOT_BUSINESS = (TRACE, SYSTEM)
LISTED_STATUSES = [c for c in TransactionStatus.choices if c[0] != TransactionStatus.MERGED]


def key_value_candidates(value: str) -> set[str]:
    """The stored forms a typed-in key can have: ERP numbers lose their leading zeros only for ERP key types."""
    return {normalise_key("", value), normalise_key("order", value)}


class TransactionFilterSet(django_filters.FilterSet):
    business_key = django_filters.CharFilter(method="filter_business_key", label="Business key")
    trace_id = django_filters.CharFilter(method="filter_trace_id", label="Trace id")
    system = django_filters.CharFilter(method="filter_system", label="System")
    status = django_filters.ChoiceFilter(choices=LISTED_STATUSES)
    process = django_filters.ModelChoiceFilter(
        queryset=ProcessDefinition.objects.all(), to_field_name="slug", label="Process"
    )
    since = UtcDateTimeFilter(field_name="last_event_at", lookup_expr="gte", label="Active since")
    until = UtcDateTimeFilter(field_name="started_at", lookup_expr="lt", label="Started before")
    has_errors = django_filters.BooleanFilter(method="filter_has_errors", label="With errors")

    class Meta:
        model = Transaction
        fields = ["business_key", "trace_id", "system", "status", "process", "since", "until", "has_errors"]

    def filter_business_key(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(value__in=key_value_candidates(value)).exclude(key_type__in=NOT_BUSINESS)
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_trace_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(key_type=TRACE, value=value.strip().lower())
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(key_type=SYSTEM, value=value.strip())
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_has_errors(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(error_count__gt=0) if value else queryset.filter(error_count=0)

    @property
    def qs(self) -> QuerySet:
        return super().qs.filter(~Q(status=TransactionStatus.MERGED))
