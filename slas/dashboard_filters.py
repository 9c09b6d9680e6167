"""Drill-down filters: each selects exactly the rows a dashboard figure counted, with the figure's own rules.

`since`/`until` are the UTC bounds of the figure's local days; what they bound depends on what the figure counted
(a clock's met or breach time, a transaction's completion, a milestone's time...). A value of "-" stands for empty
(clocks without an entity, transactions without a process).
"""

from datetime import datetime

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from console.lib.filters import UtcDateTimeFilter
from exceptions.choices import ACTIVE_STATUSES, ReplayStatus
from exceptions.models import Case, ExceptionRecord, Replay
from slas import kpis
from slas.choices import LIVE_CLOCK_STATUSES, ClockStatus
from slas.models import SlaClock
from slas.services.rollups import milestone_candidates, process_step_specs
from transactions.choices import COMPLETED_STATUSES, TransactionStatus
from transactions.models import ProcessStep, Transaction

EMPTY = "-"


def _value(value: str) -> str:
    return "" if value == EMPTY else value


class _PeriodFilterSet(django_filters.FilterSet):
    since = UtcDateTimeFilter(method="keep", label="From (UTC)")
    until = UtcDateTimeFilter(method="keep", label="Until (UTC, excluded)")

    def keep(self, queryset: QuerySet, name: str, value: datetime | None) -> QuerySet:
        # Applied in `period` once every filter is known: what the bounds apply to depends on the others.
        return queryset

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        data = self.form.cleaned_data
        return data.get("since"), data.get("until")

    @staticmethod
    def in_range(field: str, since: datetime | None, until: datetime | None) -> Q:
        q = Q()
        if since is not None:
            q &= Q(**{f"{field}__gte": since})
        if until is not None:
            q &= Q(**{f"{field}__lt": until})
        return q


class ClockDrillFilterSet(_PeriodFilterSet):
    """SLA clocks: met ones by their met time, breached ones by their breach time, live ones by their start."""

    definition = django_filters.CharFilter(field_name="definition__slug")
    status = django_filters.CharFilter(method="filter_status", label="Status (comma-separated)")
    entity = django_filters.CharFilter(method="filter_entity")
    step = django_filters.CharFilter(method="filter_step", label="Awaited step")
    system = django_filters.CharFilter(method="keep", label="System charged with the breach")
    queue = django_filters.CharFilter(field_name="definition__breach_queue__slug", label="Breach queue")
    elapsed_min = django_filters.NumberFilter(field_name="elapsed_seconds", lookup_expr="gte")
    elapsed_max = django_filters.NumberFilter(field_name="elapsed_seconds", lookup_expr="lt")

    class Meta:
        model = SlaClock
        fields = ["definition", "status", "entity", "step", "system", "queue", "since", "until"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        statuses = [s.strip() for s in value.split(",") if s.strip() in ClockStatus.values]
        return queryset.filter(status__in=statuses)

    def filter_entity(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(entity=_value(value))

    def filter_step(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(waiting_for_step=_value(value))

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs
        since, until = self.bounds()
        if since is not None or until is not None:
            queryset = queryset.filter(
                (Q(status=ClockStatus.MET) & self.in_range("met_at", since, until))
                | (Q(status=ClockStatus.BREACHED) & self.in_range("breached_at", since, until))
                | (Q(status__in=LIVE_CLOCK_STATUSES) & self.in_range("started_at", since, until))
            )
        system = self.form.cleaned_data.get("system")
        if system:
            # The rollup charges a breach to a system in Python (`kpis.breach_system`); select with the same rule.
            step_systems = {(s.process_id, s.name): s.system for s in ProcessStep.objects.all()}
            rows = queryset.values_list("id", "definition__process_id", "waiting_for_step", "txn__systems")
            ids = [
                pk
                for pk, process_id, step, systems in rows.iterator()
                if kpis.breach_system(step_systems.get((process_id, step), ""), systems) == _value(system)
            ]
            queryset = queryset.filter(id__in=ids)
        return queryset.select_related("definition", "txn").order_by("-started_at", "-id")


class TransactionDrillFilterSet(_PeriodFilterSet):
    """Transactions started, completed, or reaching a milestone in the period."""

    process = django_filters.CharFilter(method="filter_process")
    started = django_filters.BooleanFilter(method="keep", label="Started in the period")
    completed = django_filters.BooleanFilter(method="keep", label="Completed in the period")
    milestone = django_filters.ChoiceFilter(
        method="keep", choices=[(m, m.replace("_", " ")) for m, _, _ in kpis.MILESTONES]
    )
    with_case = django_filters.BooleanFilter(method="filter_with_case", label="With a case")
    multi_system = django_filters.BooleanFilter(method="keep", label="Auto-correlated (two or more systems)")

    class Meta:
        model = Transaction
        fields = ["process", "started", "completed", "milestone", "with_case", "multi_system", "since", "until"]

    def filter_process(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(process__isnull=True) if value == EMPTY else queryset.filter(process__slug=value)

    def filter_with_case(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        has_case = Exists(ExceptionRecord.objects.filter(txn_id=OuterRef("pk")))
        return queryset.filter(has_case) if value else queryset.filter(~has_case)

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs.exclude(status=TransactionStatus.MERGED)
        data = self.form.cleaned_data
        since, until = self.bounds()
        if data.get("completed"):
            # A recovered transaction completed too (with a case, so it is never touchless).
            queryset = queryset.filter(status__in=COMPLETED_STATUSES).filter(
                self.in_range("last_event_at", since, until)
            )
        if data.get("started"):
            queryset = queryset.filter(self.in_range("started_at", since, until))
        if data.get("multi_system") is not None:
            wanted = data["multi_system"]
            rows = queryset.values_list("id", "systems")
            queryset = queryset.filter(
                id__in=[pk for pk, systems in rows.iterator() if (len(systems or []) >= 2) == wanted]
            )
        metric = data.get("milestone")
        if metric and (since is None or until is None):
            return queryset.none()  # a milestone is only ever counted within a period
        if metric:
            # Milestones live in step facts (JSON): select with the rollup's own pure rule.
            steps = process_step_specs()
            candidates = milestone_candidates(since, until).filter(pk__in=queryset.values("pk"))
            ids = []
            for pk, process_id, facts in candidates.values_list("id", "process_id", "step_facts").iterator():
                span = kpis.milestone_spans(steps[process_id], facts).get(metric)
                if span is not None and since <= span[1] < until:
                    ids.append(pk)
            queryset = queryset.filter(id__in=ids)
        return queryset.select_related("process").order_by("-last_event_at", "-id")


class OccurrenceDrillFilterSet(_PeriodFilterSet):
    """Exception occurrences by when they occurred."""

    category = django_filters.CharFilter(field_name="category__slug")
    system = django_filters.CharFilter()
    classified = django_filters.BooleanFilter(field_name="rule", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ExceptionRecord
        fields = ["category", "system", "classified", "since", "until"]

    @property
    def qs(self) -> QuerySet:
        since, until = self.bounds()
        queryset = super().qs.filter(self.in_range("occurred_at", since, until))
        return queryset.select_related("category", "case").order_by("-occurred_at", "-id")


class CaseDrillFilterSet(_PeriodFilterSet):
    """Cases resolved in the period, or active ones."""

    queue = django_filters.CharFilter(field_name="queue__slug")
    category = django_filters.CharFilter(field_name="category__slug")
    resolved = django_filters.BooleanFilter(method="keep", label="Resolved in the period")
    active = django_filters.BooleanFilter(method="filter_active", label="Open, in progress or waiting")

    class Meta:
        model = Case
        fields = ["queue", "category", "resolved", "active", "since", "until"]

    def filter_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(status__in=ACTIVE_STATUSES) if value else queryset.exclude(status__in=ACTIVE_STATUSES)

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs.filter(merged_into__isnull=True)
        if self.form.cleaned_data.get("resolved"):
            since, until = self.bounds()
            queryset = queryset.filter(resolved_at__isnull=False).filter(self.in_range("resolved_at", since, until))
        return queryset.select_related("queue", "category").order_by("-last_seen", "-id")


class ReplayDrillFilterSet(_PeriodFilterSet):
    """Finished replays (succeeded or failed) by when they were requested."""

    system = django_filters.CharFilter(field_name="case__system")
    status = django_filters.ChoiceFilter(
        choices=[(ReplayStatus.SUCCEEDED, "succeeded"), (ReplayStatus.FAILED, "failed")]
    )

    class Meta:
        model = Replay
        fields = ["system", "status", "since", "until"]

    @property
    def qs(self) -> QuerySet:
        since, until = self.bounds()
        queryset = super().qs.filter(status__in=[ReplayStatus.SUCCEEDED, ReplayStatus.FAILED])
        return queryset.filter(self.in_range("created_at", since, until)).select_related("case").order_by("-created_at")
