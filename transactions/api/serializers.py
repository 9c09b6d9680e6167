from datetime import datetime
from decimal import Decimal
from types import NoneType
from typing import Any, get_args, get_origin, get_type_hints

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from transactions.canonical import CanonicalEvent
from transactions.models import Event, Interface, InterfaceDaily, System, Transaction

_AMOUNT = Event._meta.get_field("amount")


def _canonical_field(annotation: Any, **options: Any) -> serializers.Field:
    """The API field for a CanonicalEvent attribute's type; `X | None` allows null."""
    args = get_args(annotation)
    if NoneType in args:
        (inner,) = (a for a in args if a is not NoneType)
        return _canonical_field(inner, allow_null=True, **options)
    if get_origin(annotation) is list:
        return serializers.ListField(child=_canonical_field(args[0]), **options)
    if get_origin(annotation) is dict:
        value = args[1]
        child = {} if value is Any else {"child": _canonical_field(value)}
        return serializers.DictField(**child, **options)
    if annotation is Decimal:
        return serializers.DecimalField(max_digits=_AMOUNT.max_digits, decimal_places=_AMOUNT.decimal_places, **options)
    simple: dict[Any, type[serializers.Field]] = {
        str: serializers.CharField,
        int: serializers.IntegerField,
        datetime: serializers.DateTimeField,
    }
    return simple[annotation](**options)


# The timeline shows occurred_at as the item's `start`.
_TIMELINE_CANONICAL = {name: hint for name, hint in get_type_hints(CanonicalEvent).items() if name != "occurred_at"}


class TransactionSerializer(serializers.ModelSerializer):
    process = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = [
            "id",
            "url",
            "process",
            "status",
            "started_at",
            "last_event_at",
            "event_count",
            "error_count",
            "systems",
            "business_keys",
            "next_step",
            "next_due_at",
        ]

    def get_url(self, txn: Transaction) -> str:
        return f"/transactions/{txn.pk}/"


class TimelineEventSerializer(serializers.Serializer):
    """One timeline item: the event's canonical fields (derived from CanonicalEvent) and its place on the chart."""

    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    is_span = serializers.BooleanField()
    critical = serializers.BooleanField(
        help_text="on the critical path, when that path is not simply every event (then none is marked)"
    )
    recovered = serializers.BooleanField(help_text="a failed event that a later success of its system made good")
    channel = serializers.CharField()
    received_at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields.update((name, _canonical_field(hint)) for name, hint in _TIMELINE_CANONICAL.items())
        return fields


class GapSerializer(serializers.Serializer):
    from_system = serializers.CharField()
    to_system = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    seconds = serializers.FloatField()


class ExpectedStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    system = serializers.CharField(allow_blank=True)
    kind = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.BooleanField()


class MergedFromSerializer(serializers.Serializer):
    absorbed_id = serializers.IntegerField()
    via_key = serializers.CharField()
    merged_at = serializers.DateTimeField()


class TimelineSerializer(serializers.Serializer):
    transaction = TransactionSerializer()
    lanes = serializers.ListField(child=serializers.CharField())
    items = TimelineEventSerializer(many=True)
    gaps = GapSerializer(many=True)
    critical_path = serializers.ListField(child=serializers.IntegerField())
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_to_end_ms = serializers.IntegerField(allow_null=True)
    expected_next = ExpectedStepSerializer(allow_null=True)
    merged_from = MergedFromSerializer(many=True)


# The catalogue's facts (owner, criticality, style...), as people keep them on the map; read-only here.
CATALOGUE_FIELDS = [
    "owner_team",
    "owner_queue",
    "criticality",
    "style",
    "environment",
    "data_objects",
    "notes",
    "version",
]


class InterfaceDaySerializer(serializers.ModelSerializer):
    """One local day of an interface: hand-overs, failures, duplicates, late arrivals and hop latency (ms)."""

    kinds = serializers.DictField(child=serializers.IntegerField(), help_text="hand-overs per event kind")
    channels = serializers.DictField(child=serializers.IntegerField(), help_text="hand-overs per channel")

    class Meta:
        model = InterfaceDaily
        fields = [
            "day",
            "volume",
            "errors",
            "duplicates",
            "late",
            "latency_p50_ms",
            "latency_p95_ms",
            "kinds",
            "channels",
        ]

    def to_representation(self, day: dict) -> dict:
        # The declared fields describe the schema; the rows arrive as the API's dicts already
        # (selectors.interface_days_attach), and a year of an estate is ~12,000 of them: field by field, DRF spent
        # half a second on them.
        return day


class InterfaceTotalsSerializer(serializers.Serializer):
    """An interface's figures over the requested days (percentiles from latency histograms: within 1% of the exact
    figure of every hop)."""

    volume = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True, help_text="% of hand-overs that failed; null without any")
    duplicates = serializers.IntegerField()
    late = serializers.IntegerField()
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)


class InterfaceSerializer(serializers.ModelSerializer):
    """A discovered interface (source system -> target system) with its daily figures in the requested range."""

    source = serializers.CharField(source="source.name")
    target = serializers.CharField(source="target.name")
    totals = serializers.SerializerMethodField()
    days = InterfaceDaySerializer(many=True, source="days_in_range", read_only=True)

    class Meta:
        model = Interface
        fields = [
            "id",
            "source",
            "target",
            "first_seen_at",
            "last_seen_at",
            *CATALOGUE_FIELDS,
            "expected_every",
            "totals",
            "days",
        ]

    @extend_schema_field(InterfaceTotalsSerializer)
    def get_totals(self, interface: Interface) -> dict:
        days = interface.days_in_range
        volume = sum(d["volume"] for d in days)
        errors = sum(d["errors"] for d in days)
        p50, p95 = interface.latency_in_range
        return {
            "volume": volume,
            "errors": errors,
            "error_rate": round(100.0 * errors / volume, 2) if volume else None,
            "duplicates": sum(d["duplicates"] for d in days),
            "late": sum(d["late"] for d in days),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
        }


class SystemSerializer(serializers.ModelSerializer):
    """A system seen in correlated traffic, with the hand-overs into and out of it in the requested range."""

    volume_in = serializers.IntegerField(read_only=True)
    volume_out = serializers.IntegerField(read_only=True)
    errors_in = serializers.IntegerField(read_only=True, help_text="failed hand-overs into this system")

    class Meta:
        model = System
        fields = [
            "id",
            "name",
            "first_seen_at",
            "last_seen_at",
            *CATALOGUE_FIELDS,
            "volume_in",
            "volume_out",
            "errors_in",
        ]
