"""The API of replay targets and outbound webhooks: list, read, create, change (PATCH with the version the change was
based on: a stale one answers 409), disable (PATCH is_active), dry run, and each one's delivery log.

For integration engineers and managers, as the console pages; everything is audited by the services. Secrets are
write-only: answers say where a secret comes from (`encrypted`, `env:NAME`) or null, never its value.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import CreatedCursorPagination, serializer_validated
from console.lib.audit import actor_for
from exceptions import selectors, services
from exceptions.api.serializers import ErrorSerializer, ReplaySerializer
from exceptions.choices import DeliveryStatus, HttpMethod
from exceptions.models import OutboundWebhook, ReplayTarget, WebhookDelivery
from exceptions.outbound import json_path_problem, secret_label
from exceptions.permissions import can_configure_outbound

# Query parameters a list answers to; any other is refused, so that a misspelt filter is not silently ignored.


class CanConfigureOutbound(permissions.BasePermission):
    """Integration engineers (console.manage_ingest) and managers (console.edit_rules)."""

    message = "replay targets and webhooks are configured by integration engineers and managers"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and can_configure_outbound(request.user))


class DeliveryStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=DeliveryStatus.choices, **kwargs)


class DeliveryStatusFieldExtension(OpenApiSerializerFieldExtension):
    """A name of its own: beside the case and replay statuses (also fields named `status`) spectacular would warn."""

    target_class = DeliveryStatusField

    def get_name(self) -> str:
        return "DeliveryStatusEnum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict:
        return {"type": "string", "enum": list(DeliveryStatus.values)}


class WebhookEventField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=services.WEBHOOK_EVENTS, **kwargs)


class WebhookEventFieldExtension(OpenApiSerializerFieldExtension):
    """One name for the events a webhook subscribes to and a dry run shows (spectacular would name them twice)."""

    target_class = WebhookEventField

    def get_name(self) -> str:
        return "WebhookEventEnum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict:
        return {"type": "string", "enum": list(services.WEBHOOK_EVENTS)}


def _source(stored: str) -> str | None:
    return secret_label(stored) or None


# ---- Serializers ----------------------------------------------------------------------------------------------------


class ReplayTargetSerializer(serializers.ModelSerializer):
    """A replay target as configured; `version` is what a change must send back."""

    auth_header = serializers.SerializerMethodField(help_text="where the Authorization value comes from; never it")
    signing_secret = serializers.SerializerMethodField(help_text="where the signing secret comes from; never it")
    business_key_paths = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = ReplayTarget
        fields = [
            "id",
            "system",
            "url",
            "method",
            "auth_header",
            "signing_secret",
            "business_key_paths",
            "max_attempts",
            "is_active",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_auth_header(self, obj: ReplayTarget) -> str | None:
        return _source(obj.auth_secret)

    def get_signing_secret(self, obj: ReplayTarget) -> str | None:
        return _source(obj.signing_secret)


def _paths(value: list[str]) -> list[str]:
    problems = [problem for path in value if (problem := json_path_problem(path))]
    if problems:
        raise serializers.ValidationError(problems)
    return value


STORAGE_INPUT = "plain text (stored encrypted) or env:NAME (read from the environment at send time); write-only"


class ReplayTargetInputSerializer(serializers.Serializer):
    system = serializers.CharField(max_length=100, help_text="the system as events name it, e.g. sap-s4")
    url = serializers.URLField(max_length=500)
    method = serializers.ChoiceField(choices=HttpMethod.choices, default=HttpMethod.POST)
    auth_header = serializers.CharField(
        max_length=500, required=False, allow_blank=True, write_only=True, help_text=f"e.g. Bearer …; {STORAGE_INPUT}"
    )
    signing_secret = serializers.CharField(
        max_length=500, required=False, allow_blank=True, write_only=True, help_text=STORAGE_INPUT
    )
    business_key_paths = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=5,
        help_text='JSON paths naming the business object, e.g. ["$.business_keys.invoice", "$.entity"]',
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=10, default=5)
    is_active = serializers.BooleanField(default=True)

    def validate_business_key_paths(self, value: list[str]) -> list[str]:
        return _paths(value)


class ReplayTargetPatchSerializer(ReplayTargetInputSerializer):
    version = serializers.IntegerField(min_value=1, help_text="the version the change is based on")
    clear_auth_header = serializers.BooleanField(required=False, help_text="remove the Authorization header")
    clear_signing_secret = serializers.BooleanField(required=False, help_text="remove the signing secret")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["system"]  # the target's identity: never changes
        for field in self.fields.values():
            field.required = field.field_name == "version"
            if field.field_name != "version":
                field.default = serializers.empty


class WebhookSerializer(serializers.ModelSerializer):
    signing_secret = serializers.SerializerMethodField(help_text="where the signing secret comes from; never it")
    events = serializers.ListField(child=serializers.CharField(), help_text="empty: every event")

    class Meta:
        model = OutboundWebhook
        fields = [
            "id",
            "name",
            "url",
            "events",
            "signing_secret",
            "max_attempts",
            "is_active",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_signing_secret(self, obj: OutboundWebhook) -> str | None:
        return _source(obj.signing_secret)


class WebhookInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=WebhookEventField(), required=False, help_text="empty: every event")
    signing_secret = serializers.CharField(
        max_length=500, required=False, allow_blank=True, write_only=True, help_text=STORAGE_INPUT
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=10, default=5)
    is_active = serializers.BooleanField(default=True)


class WebhookPatchSerializer(WebhookInputSerializer):
    version = serializers.IntegerField(min_value=1, help_text="the version the change is based on")
    clear_signing_secret = serializers.BooleanField(required=False, help_text="remove the signing secret")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = field.field_name == "version"
            if field.field_name != "version":
                field.default = serializers.empty


class DryRunInputSerializer(serializers.Serializer):
    payload = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text="a record (JSON object); default: the latest failure"
    )

    def validate_payload(self, value: object) -> object:
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value


class WebhookDryRunInputSerializer(serializers.Serializer):
    event = WebhookEventField(default="assigned")


class DryRunSerializer(serializers.Serializer):
    """The exact request that would be sent, secrets masked; nothing was sent or stored."""

    method = serializers.CharField()
    url = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    body = serializers.CharField(help_text="the raw body, as sent")
    problems = serializers.ListField(child=serializers.CharField(), help_text="what would make the send fail")
    source = serializers.CharField(help_text="where the record or event comes from")
    is_active = serializers.BooleanField()
    business_key = serializers.CharField(required=False, allow_null=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    status = DeliveryStatusField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "case",
            "status",
            "attempts",
            "response_status",
            "duration_ms",
            "error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
        ]
        read_only_fields = fields


# ---- Views ----------------------------------------------------------------------------------------------------------


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {
    400: _error("an unknown query parameter (named in detail)"),
    401: _error("not authenticated"),
    403: _error("only integration engineers and managers configure outbound requests"),
}
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such object")}
WRITE_ERRORS = {**DETAIL_ERRORS, 400: _error("invalid input: the problems per field in errors")}
PATCH_ERRORS = {**WRITE_ERRORS, 409: _error("changed since the version sent: reload and decide again")}


class OutboundViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [CanConfigureOutbound]
    pagination_class = CreatedCursorPagination
    # The default filter backend (console.lib.api) answers 400 to an unknown query parameter, as on every list.
    http_method_names = ["get", "post", "patch", "head", "options"]


@extend_schema_view(
    list=extend_schema(
        summary="List replay targets", responses={200: ReplayTargetSerializer(many=True), **READ_ERRORS}
    ),
    retrieve=extend_schema(summary="One replay target", responses={200: ReplayTargetSerializer, **DETAIL_ERRORS}),
)
class ReplayTargetViewSet(OutboundViewSet):
    """Where replays of a system's failed steps go."""

    serializer_class = ReplayTargetSerializer

    def get_queryset(self) -> QuerySet[ReplayTarget]:
        return selectors.replay_target_list()

    @extend_schema(
        summary="Create a replay target",
        request=ReplayTargetInputSerializer,
        responses={201: ReplayTargetSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = dict(serializer_validated(ReplayTargetInputSerializer, request).validated_data)
        target = services.replay_target_create(actor=actor_for(request.user), **data)
        return Response(ReplayTargetSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change or disable a replay target",
        description="Send the fields to change and `version`; an empty secret keeps the stored one. Disabling "
        "(is_active false) refuses new replays; replays in flight fail at their next attempt.",
        request=ReplayTargetPatchSerializer,
        responses={200: ReplayTargetSerializer, **PATCH_ERRORS},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target = self.get_object()
        data = dict(serializer_validated(ReplayTargetPatchSerializer, request).validated_data)
        version = data.pop("version")
        for name in ("auth_header", "signing_secret"):
            if not data.get(name):
                data.pop(name, None)
        updated = services.replay_target_update(
            target=target, actor=actor_for(request.user), expected_version=version, **data
        )
        return Response(ReplayTargetSerializer(updated).data)

    @extend_schema(
        summary="Dry run of a replay",
        description="The exact request a replay to this target would send now (method, URL, headers with secrets "
        "masked, body), for the payload given or the system's latest failed event. Nothing is sent or stored.",
        request=DryRunInputSerializer,
        responses={200: DryRunSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="dry-run", pagination_class=None)
    def dry_run(self, request: Request, pk: str | None = None) -> Response:
        target = self.get_object()
        data = dict(serializer_validated(DryRunInputSerializer, request).validated_data)
        return Response(services.replay_target_dry_run(target=target, payload=data["payload"]))

    @extend_schema(
        summary="Delivery log of a replay target",
        description=f"The latest {selectors.DELIVERY_LOG_LIMIT} replays sent to this target, newest first.",
        responses={200: ReplaySerializer(many=True), **DETAIL_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        return Response(ReplaySerializer(selectors.replay_target_log(target=self.get_object()), many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List outbound webhooks", responses={200: WebhookSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(summary="One outbound webhook", responses={200: WebhookSerializer, **DETAIL_ERRORS}),
)
class WebhookViewSet(OutboundViewSet):
    """URLs notified (signed JSON POST) of case assignments, escalations and reopenings."""

    serializer_class = WebhookSerializer

    def get_queryset(self) -> QuerySet[OutboundWebhook]:
        return selectors.webhook_list()

    @extend_schema(
        summary="Create an outbound webhook",
        request=WebhookInputSerializer,
        responses={201: WebhookSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = dict(serializer_validated(WebhookInputSerializer, request).validated_data)
        webhook = services.webhook_create(actor=actor_for(request.user), **data)
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change or disable an outbound webhook",
        description="Send the fields to change and `version`; an empty secret keeps the stored one.",
        request=WebhookPatchSerializer,
        responses={200: WebhookSerializer, **PATCH_ERRORS},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        webhook = self.get_object()
        data = dict(serializer_validated(WebhookPatchSerializer, request).validated_data)
        version = data.pop("version")
        if not data.get("signing_secret"):
            data.pop("signing_secret", None)
        updated = services.webhook_update(
            webhook=webhook, actor=actor_for(request.user), expected_version=version, **data
        )
        return Response(WebhookSerializer(updated).data)

    @extend_schema(
        summary="Dry run of a webhook notification",
        description="The exact request a notification of `event` would send now (a sample case), secrets masked.",
        request=WebhookDryRunInputSerializer,
        responses={200: DryRunSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="dry-run", pagination_class=None)
    def dry_run(self, request: Request, pk: str | None = None) -> Response:
        webhook = self.get_object()
        data = dict(serializer_validated(WebhookDryRunInputSerializer, request).validated_data)
        return Response(services.webhook_dry_run(webhook=webhook, event=data["event"]))

    @extend_schema(
        summary="Delivery log of a webhook",
        description=f"The latest {selectors.DELIVERY_LOG_LIMIT} deliveries, newest first.",
        responses={200: WebhookDeliverySerializer(many=True), **DETAIL_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        return Response(WebhookDeliverySerializer(selectors.webhook_log(webhook=self.get_object()), many=True).data)
