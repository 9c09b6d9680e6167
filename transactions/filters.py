"""FilterSets of the transactions app: the transactions list (the console page and GET /api/v1/transactions/ use the
same one), and the integration map's systems and interfaces (their API)."""

from datetime import date, timedelta

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from console.lib.filters import UtcDateTimeFilter
from transactions.canonical import normalise_key
from transactions.choices import TransactionStatus
from transactions.correlation import SYSTEM, TRACE
from transactions.models import Interface, InterfaceHop, ProcessDefinition, System, Transaction, TransactionKey

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
    interface = django_filters.NumberFilter(method="filter_interface", label="Interface id")

    class Meta:
        model = Transaction
        fields = [
            "business_key",
            "trace_id",
            "system",
            "status",
            "process",
            "since",
            "until",
            "has_errors",
            "interface",
        ]

    def filter_business_key(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(value__in=key_value_candidates(value)).exclude(key_type__in=NOT_BUSINESS)
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_trace_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(key_type=TRACE, value=value.strip().lower())
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        keys = TransactionKey.objects.filter(key_type=SYSTEM, value=value.strip())
        return queryset.filter(pk__in=keys.values("txn_id"))

    def filter_interface(self, queryset: QuerySet, name: str, value: int | None) -> QuerySet:
        """Transactions with a hand-over on this interface (the integration map's click-through)."""
        if value is None:
            return queryset
        hops = InterfaceHop.objects.filter(interface_id=value)
        return queryset.filter(pk__in=hops.values("txn_id"))

    def filter_has_errors(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(error_count__gt=0) if value else queryset.filter(error_count=0)

    @property
    def qs(self) -> QuerySet:
        return super().qs.filter(~Q(status=TransactionStatus.MERGED))


API_DEFAULT_DAYS = 30
API_MAX_DAYS = 366


class DayRangeForm(forms.Form):
    """Checks the range of local days the figures cover: in order, and at most API_MAX_DAYS long."""

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end is before the start.")
        elif since and until and (until - since).days >= API_MAX_DAYS:
            self.add_error("until", f"At most {API_MAX_DAYS} days at once.")
        return data


class DayRangeFilterSet(django_filters.FilterSet):
    """`since` and `until` choose the local days whose figures are shown; they do not leave rows out."""

    since = django_filters.DateFilter(
        method="keep_all", label="First local day of the figures (default: 29 days before until)"
    )
    until = django_filters.DateFilter(method="keep_all", label="Last local day of the figures (default: today)")

    def keep_all(self, queryset: QuerySet, name: str, value: date | None) -> QuerySet:
        return queryset

    def day_range(self, today: date) -> tuple[date, date]:
        data = self.form.cleaned_data if self.is_valid() else {}
        until = data.get("until") or today
        since = data.get("since") or min(until, today) - timedelta(days=API_DEFAULT_DAYS - 1)
        return min(since, until), until


class SystemFilterSet(DayRangeFilterSet):
    name = django_filters.CharFilter(label="System name")

    class Meta:
        model = System
        form = DayRangeForm
        fields = ["name", "since", "until"]


class InterfaceFilterSet(DayRangeFilterSet):
    source = django_filters.CharFilter(field_name="source__name", label="Source system")
    target = django_filters.CharFilter(field_name="target__name", label="Target system")
    system = django_filters.CharFilter(method="filter_system", label="Either end")

    class Meta:
        model = Interface
        form = DayRangeForm
        fields = ["source", "target", "system", "since", "until"]

    def filter_system(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(source__name=value) | Q(target__name=value))
