"""FilterSets of the transactions API that no console page shares (the transactions list's lives in ../filters.py)."""

import django_filters
from django.db.models import QuerySet

from transactions.choices import Channel, DeadLetterStatus
from transactions.models import DeadLetter, IngestSource
from transactions.selectors import dead_letter_list


class DeadLetterFilterSet(django_filters.FilterSet):
    """GET /api/v1/dead-letters/: the rows come from selectors.dead_letter_list, as on the console page, so both lists
    answer the same filters the same way. Unlike the page (pending by default), no status means any."""

    status = django_filters.ChoiceFilter(choices=DeadLetterStatus.choices)
    source = django_filters.ModelChoiceFilter(
        queryset=IngestSource.objects.all(), to_field_name="name", label="Ingest source (name)"
    )
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    reason = django_filters.CharFilter(label="Reason contains")

    class Meta:
        model = DeadLetter
        fields = ["status", "source", "channel", "reason"]

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        data = self.form.cleaned_data
        if not any(data.values()):
            return queryset  # no filter: no subquery (a detail read goes through here too)
        matching = dead_letter_list(
            status=data.get("status") or "",
            source=data.get("source"),
            channel=data.get("channel") or "",
            reason=(data.get("reason") or "").strip(),
        )
        return queryset.filter(pk__in=matching.values("pk"))
