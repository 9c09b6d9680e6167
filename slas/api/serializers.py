"""Shapes of the SLA API: definitions (read and manager writes) and clocks (read).

Serializers only validate and shape: the model's own checks (start and stop matching one event, pause conditions,
the breach category) run here so that a bad request answers 400 per field; the services write.
"""

from datetime import timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as ModelValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from exceptions.models import Queue
from slas.choices import ClockStatus
from slas.models import BusinessCalendar, SlaClock, SlaDefinition
from transactions.models import ProcessDefinition


class SlaErrorSerializer(serializers.Serializer):
    """Every 4xx answer: a reason to show; invalid input also lists its problems per field."""

    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="invalid input only: the problems per field")


class ClockStatusField(serializers.ChoiceField):
    """A clock's status, documented once as the SlaClockStatusEnum component."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ClockStatus.choices, **kwargs)


class ClockStatusFieldExtension(OpenApiSerializerFieldExtension):
    """A named enum: several components have a `status` with other choices, which spectacular cannot name apart."""

    target_class = ClockStatusField

    def get_name(self) -> str:
        return "SlaClockStatusEnum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict:
        return {
            "type": "string",
            "enum": list(ClockStatus.values),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in ClockStatus.choices),
        }


class BusinessSecondsField(serializers.IntegerField):
    """A duration as whole seconds on the wire (a timedelta in the model)."""

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())

    MINIMUM = 60
    # Ten years: far past any real target, and far inside what timedelta and the database can hold (a larger number
    # was a 500).
    MAXIMUM = 10 * 366 * 24 * 3600

    def to_internal_value(self, data: Any) -> timedelta:
        seconds = super().to_internal_value(data)
        if seconds < self.MINIMUM:
            raise serializers.ValidationError(f"Ensure this value is greater than or equal to {self.MINIMUM}.")
        if seconds > self.MAXIMUM:  # checked before timedelta(), which overflows; max_value runs only after
            self.fail("max_value", max_value=self.MAXIMUM)
        return timedelta(seconds=seconds)


# Fields of the model a definition request may set, besides the related ones and target_seconds.
PLAIN_FIELDS = [
    "slug",
    "name",
    "description",
    "start_system",
    "start_kind",
    "start_status",
    "start_key_type",
    "stop_system",
    "stop_kind",
    "stop_status",
    "stop_key_type",
    "pause_conditions",
    "at_risk_percent",
    "is_active",
]


class SlaDefinitionSerializer(serializers.ModelSerializer):
    """A definition; `version` is what a PATCH must send back (a stale one answers 409)."""

    process = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=ProcessDefinition.objects.all(),
        allow_null=True,
        required=False,
        help_text="process slug; null: any transaction with the start event",
    )
    calendar = serializers.SlugRelatedField(slug_field="slug", queryset=BusinessCalendar.objects.all())
    breach_queue = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Queue.objects.all(),
        allow_null=True,
        required=False,
        help_text="queue slug for breach cases; null: routed by the routing rules",
    )
    breach_category = serializers.CharField(
        source="breach_category_slug", required=False, max_length=40, help_text="case category slug (default control)"
    )
    target_seconds = BusinessSecondsField(source="target", help_text="target in business seconds, at least 60")
    pause_conditions = serializers.JSONField(
        required=False,
        help_text='list of {"case_category": slug} or {"event_kind": glob, "until_kind": glob, "event_system": glob}',
    )

    class Meta:
        model = SlaDefinition
        fields = [
            "id",
            *PLAIN_FIELDS,
            "process",
            "target_seconds",
            "calendar",
            "breach_queue",
            "breach_category",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = self._candidate()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.full_clean()
        except ModelValidationError as exc:
            raise serializers.ValidationError(_api_errors(exc)) from exc
        return attrs

    def _candidate(self) -> SlaDefinition:
        """A detached copy to validate the request on (the stored definition stays as it is until the service)."""
        if self.instance is None:
            return SlaDefinition()
        fields = SlaDefinition._meta.concrete_fields
        candidate = SlaDefinition(**{f.attname: getattr(self.instance, f.attname) for f in fields})
        candidate._state.adding, candidate._state.db = False, self.instance._state.db  # unique checks exclude itself
        return candidate


_API_NAMES = {
    "breach_category_slug": "breach_category",
    "target": "target_seconds",
    NON_FIELD_ERRORS: "non_field_errors",
}


def _api_errors(exc: ModelValidationError) -> dict[str, list[str]]:
    return {_API_NAMES.get(name, name): messages for name, messages in exc.message_dict.items()}


class SlaDefinitionPatchSerializer(SlaDefinitionSerializer):
    """A PATCH: any subset of the fields, and the version it was based on."""

    version = serializers.IntegerField(min_value=1, help_text="the definition version this change is based on")

    class Meta(SlaDefinitionSerializer.Meta):
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        version = attrs.pop("version", None)
        if version is None:
            raise serializers.ValidationError({"version": ["required: the version this change is based on"]})
        attrs = super().validate(attrs)
        attrs["version"] = version
        return attrs


class SlaClockSerializer(serializers.ModelSerializer):
    """A clock: business seconds used, left and paused as of its last evaluation (at most a minute old)."""

    definition = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    process = serializers.CharField(
        source="process_slug", read_only=True, allow_null=True, help_text="the transaction's process slug"
    )
    status = ClockStatusField(read_only=True)
    transaction_url = serializers.SerializerMethodField()

    class Meta:
        model = SlaClock
        fields = [
            "id",
            "definition",
            "txn",
            "transaction_url",
            "process",
            "status",
            "entity",
            "started_at",
            "stopped_at",
            "due_at",
            "elapsed_seconds",
            "remaining_seconds",
            "paused_seconds",
            "paused_since",
            "pause_reason",
            "waiting_for_step",
            "expected_finish_at",
            "at_risk_reason",
            "at_risk_at",
            "breached_at",
            "met_at",
            "breach_case",
            "start_event_id",
            "stop_event_id",
            "pause_event_id",
            "evaluated_at",
        ]
        read_only_fields = fields

    def get_transaction_url(self, clock: SlaClock) -> str:
        return f"/transactions/{clock.txn_id}/"
