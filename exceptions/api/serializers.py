"""Shapes of the cases API: read serializers for cases and what hangs off them, input serializers for the actions.

Input serializers only validate; the services decide (a stale version, a forbidden queue, a move the status machine
does not allow).
"""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

# Re-exported: the 4xx shape lives in console.lib.api now; modules of this package still name it from here.
from console.lib.api import ErrorSerializer as ErrorSerializer
from exceptions.choices import CaseStatus
from exceptions.models import Case, CaseActivity, ExceptionRecord, Replay


class CaseStatusField(serializers.ChoiceField):
    """A case's status, documented once as the CaseStatusEnum component (see the extension below)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CaseStatus.choices, **kwargs)


class CaseStatusFieldExtension(OpenApiSerializerFieldExtension):
    """One named enum for case statuses: left inline in several components next to the replay and transaction
    statuses (also fields named `status`), spectacular could not name the choice sets apart and warns."""

    target_class = CaseStatusField

    def get_name(self) -> str:
        return "CaseStatusEnum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict:
        return {
            "type": "string",
            "enum": list(CaseStatus.values),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in CaseStatus.choices),
        }


class CaseSerializer(serializers.ModelSerializer):
    """A case as lists show it; `version` is what an action must send back."""

    url = serializers.SerializerMethodField()
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    assignee = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="username of whoever works it; null: nobody"
    )
    status = CaseStatusField(read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "url",
            "title",
            "category",
            "system",
            "kind",
            "queue",
            "assignee",
            "priority",
            "status",
            "occurrence_count",
            "amount_at_stake",
            "currency",
            "first_seen",
            "last_seen",
            "triage_due_at",
            "resolve_due_at",
            "escalation_level",
            "version",
        ]
        read_only_fields = fields

    def get_url(self, case: Case) -> str:
        return f"/cases/{case.pk}/"


class OccurrenceSerializer(serializers.ModelSerializer):
    """One occurrence: a failed event (`event_id`) or a signal such as an SLA's silence (`signal_key`)."""

    rule = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="the classification rule that matched"
    )
    txn = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = ExceptionRecord
        fields = [
            "id",
            "event_id",
            "signal_key",
            "txn",
            "occurred_at",
            "system",
            "kind",
            "error_code",
            "error_type",
            "error_message",
            "entity",
            "amount",
            "currency",
            "rule",
            "explanation",
        ]


class ActivitySerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseActivity
        fields = ["id", "created_at", "actor", "kind", "body", "data"]


class ReplaySerializer(serializers.ModelSerializer):
    """A replay; the target received its idempotency_key (derived from the occurrence and the payload) as
    Idempotency-Key and its id as Closeloop-Replay-Id."""

    class Meta:
        model = Replay
        fields = [
            "id",
            "case",
            "occurrence",
            "previous",
            "status",
            "payload",
            "payload_before",
            "target_url",
            "idempotency_key",
            "business_key",
            "reason",
            "attempts",
            "duration_ms",
            "response_status",
            "response_body",
            "outcome",
            "requested_by",
            "created_at",
            "claimed_at",
            "sent_at",
            "succeeded_at",
        ]


class CaseDetailSerializer(CaseSerializer):
    """A case with why it was classified and routed, what to do about it, and its recent history."""

    rule = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="the classification rule that matched"
    )
    routing_rule = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="the routing rule that chose the queue"
    )
    severity = serializers.CharField(source="category.severity", read_only=True)
    retryable = serializers.BooleanField(source="category.retryable", read_only=True)
    suggested_action = serializers.CharField(source="category.suggested_action", read_only=True)
    occurrences = OccurrenceSerializer(
        source="latest_occurrences", many=True, read_only=True, help_text="the latest 50, newest first"
    )
    activities = ActivitySerializer(
        source="latest_activities", many=True, read_only=True, help_text="the latest 200, newest first"
    )
    replays = ReplaySerializer(source="latest_replays", many=True, read_only=True, help_text="the latest 20")

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "explanation",
            "rule",
            "routing_rule",
            "error_signature",
            "severity",
            "retryable",
            "suggested_action",
            "snooze_until",
            "snooze_occurrences",
            "resolved_at",
            "merged_into",
            "occurrences",
            "activities",
            "replays",
        ]
        read_only_fields = fields


# ---- Action inputs --------------------------------------------------------------------------------------------------


class VersionedSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="the case version this action is based on")


class UsernameField(serializers.CharField):
    """A username resolved to the user; null unassigns."""

    def to_internal_value(self, data: object) -> object:
        username = super().to_internal_value(data)
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"no active user named {username!r}")
        return user


class AssignSerializer(VersionedSerializer):
    assignee = UsernameField(allow_null=True, help_text="username; null unassigns")


class CommentSerializer(VersionedSerializer):
    body = serializers.CharField(max_length=5000, trim_whitespace=True)


class TransitionSerializer(VersionedSerializer):
    status = CaseStatusField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    snooze_until = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="ignored only")
    snooze_occurrences = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="ignored only: wake after N more"
    )


class ReplayRequestSerializer(VersionedSerializer):
    occurrence = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="default: latest")
    payload = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text="a repaired record (JSON object) to send instead"
    )

    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text="why to send it although an earlier replay of the occurrence (or of its business object) got "
        "through; without one such a replay is refused (400). Audited and shown in the case's activity",
    )

    def validate_payload(self, value: object) -> object:
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value


class MergeSerializer(VersionedSerializer):
    cases = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        allow_empty=False,
        max_length=100,
        help_text="ids of the cases to fold into this one; the version is this case's",
    )


class SplitSerializer(VersionedSerializer):
    occurrence = serializers.IntegerField(min_value=1, help_text="id of one of this case's occurrences")
    message_contains = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="future occurrences whose message contains this text follow the new case (default: the whole "
        "message)",
    )


class BulkCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    version = serializers.IntegerField(min_value=1)


class BulkSerializer(serializers.Serializer):
    """One action on many cases; the parameters are those of the single action."""

    action = serializers.ChoiceField(choices=["assign", "transition", "comment"])
    cases = BulkCaseSerializer(many=True, allow_empty=False, max_length=500)
    assignee = UsernameField(required=False, allow_null=True, help_text="assign: username; null unassigns")
    body = serializers.CharField(required=False, max_length=5000, help_text="comment: the text")
    status = CaseStatusField(required=False, help_text="transition")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="transition")
    snooze_until = serializers.DateTimeField(required=False, allow_null=True, help_text="transition to ignored")
    snooze_occurrences = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="transition to ignored"
    )

    REQUIRED = {"assign": ["assignee"], "comment": ["body"], "transition": ["status"]}
    PARAMS = {
        "assign": ["assignee"],
        "comment": ["body"],
        "transition": ["status", "note", "snooze_until", "snooze_occurrences"],
    }

    def validate_cases(self, value: list[dict]) -> list[dict]:
        ids = [c["id"] for c in value]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("a case is listed twice")
        return value

    def validate(self, attrs: dict) -> dict:
        missing = [name for name in self.REQUIRED[attrs["action"]] if name not in attrs]
        if missing:
            raise serializers.ValidationError({name: f"required for {attrs['action']}" for name in missing})
        return attrs

    def params(self) -> dict:
        """The keyword arguments of the action's service."""
        data = self.validated_data
        return {name: data[name] for name in self.PARAMS[data["action"]] if name in data}


class BulkResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.IntegerField(), help_text="ids of the cases changed")
    failed = serializers.DictField(child=serializers.CharField(), help_text="case id -> why it was not changed")


class ReplayBulkSerializer(serializers.Serializer):
    filters = serializers.DictField(
        help_text="the filters of GET /cases/ (queue, status, category, priority, assignee, system, q...); "
        "at least one; values are strings or lists of strings"
    )


class ReplayDoneSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    replay = serializers.UUIDField()


class ReplayBulkResultSerializer(serializers.Serializer):
    done = ReplayDoneSerializer(many=True)
    failed = serializers.DictField(child=serializers.CharField(), help_text="case id -> why no replay was requested")
