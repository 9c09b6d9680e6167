"""The monitors API: both kinds in one list (GET /api/v1/monitors/), and each kind's list, detail and manager writes.

Reads need console.view_transactions; writes console.edit_rules (403 before any other check). A PATCH sends the
`version` it was based on: a stale one answers 409. Invalid input answers 400 with the problems per field, and
nothing is saved.
"""

import base64
import binascii
import json
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError as ModelValidationError
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from console.lib.api import HasCapability, refuse_unknown_parameters
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_TRANSACTIONS
from console.lib.errors import NotPermitted
from exceptions.models import Queue
from slas.api.serializers import SlaErrorSerializer
from slas.choices import EvidenceDirection, VolumeMode
from slas.filters import EvidenceMonitorFilterSet, VolumeMonitorFilterSet
from slas.models import BusinessCalendar, EvidenceMonitor, VolumeMonitor
from slas.selectors import (
    MONITOR_TYPES,
    MonitorRow,
    evidence_monitor_list,
    monitor_page,
    volume_monitor_list,
)
from slas.services import monitors as monitor_services
from transactions.models import ProcessDefinition

# ---- Serializers ----------------------------------------------------------------------------------------------------

_API_NAMES = {"category_slug": "category", "window": "window_seconds", "__all__": "non_field_errors"}


def _api_errors(problems: dict[str, Any]) -> dict[str, list[str]]:
    return {
        _API_NAMES.get(name, name): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
        for name, messages in problems.items()
    }


class SecondsField(serializers.IntegerField):
    """A duration as whole seconds on the wire (at least a minute)."""

    MINIMUM = 60
    # Ten years: far inside what timedelta and the database can hold (a larger number was a 500).
    MAXIMUM = 10 * 366 * 24 * 3600

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())

    def to_internal_value(self, data: Any) -> timedelta:
        seconds = super().to_internal_value(data)
        if seconds < self.MINIMUM:
            self.fail("min_value", min_value=self.MINIMUM)
        if seconds > self.MAXIMUM:  # checked before timedelta(), which overflows; max_value runs only after
            self.fail("max_value", max_value=self.MAXIMUM)
        return timedelta(seconds=seconds)


class _MonitorSerializer(serializers.ModelSerializer):
    """Shared by both kinds: slugs for related rows, the window in seconds, validation by the service's own rules."""

    calendar = serializers.SlugRelatedField(slug_field="slug", queryset=BusinessCalendar.objects.all())
    queue = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Queue.objects.all(),
        allow_null=True,
        required=False,
        help_text="queue slug; null: the routing rules decide",
    )
    category = serializers.CharField(
        source="category_slug", required=False, max_length=40, help_text="case category slug"
    )
    problems = staticmethod(lambda monitor: {})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = self._candidate()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        problems = type(self).problems(candidate)
        if problems:
            raise serializers.ValidationError(_api_errors(problems))
        try:
            candidate.full_clean(validate_constraints=False)
        except ModelValidationError as exc:
            raise serializers.ValidationError(_api_errors(exc.message_dict)) from exc
        return attrs

    def _candidate(self) -> Any:
        """A detached copy to validate on; the stored monitor changes only in the service."""
        model = self.Meta.model
        if self.instance is None:
            return model()
        copy = model(**{f.attname: getattr(self.instance, f.attname) for f in model._meta.concrete_fields})
        copy._state.adding = False  # it is the stored row: its own slug and id are not duplicates
        return copy


class VolumeMonitorSerializer(_MonitorSerializer):
    """A volume monitor and its state; `version` is what a PATCH must send back."""

    window_seconds = SecondsField(
        source="window", required=False, allow_null=True, help_text="window mode: the window, in seconds"
    )
    mode = serializers.ChoiceField(choices=VolumeMode.choices, required=False)
    problems = staticmethod(monitor_services.volume_monitor_problems)

    class Meta:
        model = VolumeMonitor
        fields = [
            "id",
            "slug",
            "name",
            "system",
            "kind",
            "entity",
            "calendar",
            "mode",
            "window_seconds",
            "deadline_time",
            "min_count",
            "max_count",
            "working_hours_only",
            "queue",
            "category",
            "is_active",
            "version",
            "currently_violated",
            "violated_since",
            "last_count",
            "last_evaluated_at",
            "case",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "version",
            "currently_violated",
            "violated_since",
            "last_count",
            "last_evaluated_at",
            "case",
            "created_at",
            "updated_at",
        ]


class EvidenceMonitorSerializer(_MonitorSerializer):
    """An evidence monitor with its pending and recently missing checks; `version` is what a PATCH sends back."""

    window_seconds = SecondsField(source="window", help_text="business seconds between trigger and evidence")
    direction = serializers.ChoiceField(choices=EvidenceDirection.choices, required=False)
    process = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=ProcessDefinition.objects.all(),
        allow_null=True,
        required=False,
        help_text="process slug; null: any transaction",
    )
    pending_checks = serializers.IntegerField(source="pending_count", read_only=True, default=0)
    missing_last_7_days = serializers.IntegerField(source="missing_count", read_only=True, default=0)
    problems = staticmethod(monitor_services.evidence_monitor_problems)

    class Meta:
        model = EvidenceMonitor
        fields = [
            "id",
            "slug",
            "name",
            "process",
            "trigger_system",
            "trigger_kind",
            "trigger_status",
            "evidence_system",
            "evidence_kind",
            "evidence_approval_step",
            "direction",
            "window_seconds",
            "calendar",
            "queue",
            "category",
            "is_active",
            "version",
            "pending_checks",
            "missing_last_7_days",
            "last_evaluated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "last_evaluated_at", "created_at", "updated_at"]


class _VersionMixin(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="the monitor version this change is based on")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH makes every field optional, this one included; without it a change cannot be checked for staleness.
        if "version" not in attrs:
            raise serializers.ValidationError({"version": ["required: the version this change is based on"]})
        version = attrs.pop("version")
        attrs = super().validate(attrs)
        attrs["version"] = version
        return attrs


class VolumeMonitorPatchSerializer(_VersionMixin, VolumeMonitorSerializer):
    """A PATCH: any subset of the fields, and the version it was based on."""

    class Meta(VolumeMonitorSerializer.Meta):
        read_only_fields = [f for f in VolumeMonitorSerializer.Meta.read_only_fields if f != "version"]


class EvidenceMonitorPatchSerializer(_VersionMixin, EvidenceMonitorSerializer):
    """A PATCH: any subset of the fields, and the version it was based on."""

    class Meta(EvidenceMonitorSerializer.Meta):
        read_only_fields = [f for f in EvidenceMonitorSerializer.Meta.read_only_fields if f != "version"]


class MonitorSummarySerializer(serializers.Serializer):
    """Either kind, as the combined list shows it; `url` leads to the kind's own detail."""

    type = serializers.ChoiceField(choices=[(t, t) for t in MONITOR_TYPES])
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    calendar = serializers.CharField(help_text="calendar slug")
    category = serializers.CharField()
    is_active = serializers.BooleanField()
    violated = serializers.BooleanField(help_text="volume: violated now; evidence: evidence missing in the last 7 days")
    summary = serializers.CharField(help_text="what it expects, in words")
    version = serializers.IntegerField()
    url = serializers.CharField()


class MonitorPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="the next page, or null on the last one")
    results = MonitorSummarySerializer(many=True)


# ---- Views ----------------------------------------------------------------------------------------------------------


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(SlaErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error("the caller lacks console.view_transactions")}
LIST_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="an invalid filter value: the problems per filter"),
    **READ_ERRORS,
}
WRITE_ERRORS = {
    400: _error("invalid input: the problems per field in errors (nothing is saved)"),
    401: _error("not authenticated"),
    403: _error("the caller may not edit monitors (console.edit_rules)"),
}
PATCH_ERRORS = {
    **WRITE_ERRORS,
    404: _error("no such monitor"),
    409: _error("the monitor changed since the version sent: reload it and decide again"),
}


def _invalid(errors: dict[str, Any]) -> ValidationError:
    reasons = "; ".join(f"{name}: {' '.join(map(str, problems))}" for name, problems in errors.items())
    return ValidationError({"detail": reasons, "errors": errors})


def _require_editor(request: Request) -> None:
    if not request.user.has_perm(EDIT_RULES):
        raise NotPermitted("your role may read monitors but not change them")


class SlugPagination(CursorPagination):
    ordering = ("slug",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _MonitorViewSet(viewsets.ReadOnlyModelViewSet):
    pagination_class = SlugPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_TRANSACTIONS
    http_method_names = ["get", "post", "patch", "head", "options"]
    write_serializer: type[_MonitorSerializer]
    patch_serializer: type[_MonitorSerializer]

    def _save(self, request: Request, *, instance: Any = None) -> Response:
        _require_editor(request)
        cls = self.patch_serializer if instance is not None else self.write_serializer
        serializer = cls(instance, data=request.data, partial=instance is not None)
        if not serializer.is_valid():
            raise _invalid(serializer.errors)
        fields = dict(serializer.validated_data)
        actor = actor_for(request.user)
        try:
            if instance is None:
                monitor = self.create_monitor(actor=actor, **fields)
            else:
                version = fields.pop("version")
                monitor = self.update_monitor(monitor=instance, actor=actor, expected_version=version, **fields)
        except ModelValidationError as exc:
            raise _invalid(_api_errors(exc.message_dict)) from exc
        body = self.serializer_class(self.get_queryset().get(pk=monitor.pk)).data
        return Response(body, status=status.HTTP_201_CREATED if instance is None else status.HTTP_200_OK)


class VolumeMonitorViewSet(_MonitorViewSet):
    """Volume monitors ("non-events"): expected counts of matching events per window or by a daily deadline."""

    serializer_class = VolumeMonitorSerializer
    write_serializer = VolumeMonitorSerializer
    patch_serializer = VolumeMonitorPatchSerializer
    filterset_class = VolumeMonitorFilterSet
    create_monitor = staticmethod(monitor_services.volume_monitor_create)
    update_monitor = staticmethod(monitor_services.volume_monitor_update)

    def get_queryset(self) -> models.QuerySet[VolumeMonitor]:
        return volume_monitor_list()

    @extend_schema(summary="List volume monitors", responses={200: VolumeMonitorSerializer(many=True), **LIST_ERRORS})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One volume monitor", responses={200: VolumeMonitorSerializer, **READ_ERRORS, 404: _error("no such")}
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create a volume monitor",
        request=VolumeMonitorSerializer,
        responses={201: VolumeMonitorSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request)

    @extend_schema(
        summary="Change a volume monitor",
        description="Send the fields to change and the `version` the change is based on; a stale version answers "
        "409. Every change is audited with before and after.",
        request=VolumeMonitorPatchSerializer,
        responses={200: VolumeMonitorSerializer, **PATCH_ERRORS},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_editor(request)
        return self._save(request, instance=self.get_object())


class EvidenceMonitorViewSet(_MonitorViewSet):
    """Control-evidence monitors: evidence that must come before or after a trigger event within business time."""

    serializer_class = EvidenceMonitorSerializer
    write_serializer = EvidenceMonitorSerializer
    patch_serializer = EvidenceMonitorPatchSerializer
    filterset_class = EvidenceMonitorFilterSet
    create_monitor = staticmethod(monitor_services.evidence_monitor_create)
    update_monitor = staticmethod(monitor_services.evidence_monitor_update)

    def get_queryset(self) -> models.QuerySet[EvidenceMonitor]:
        return evidence_monitor_list()

    @extend_schema(
        summary="List evidence monitors", responses={200: EvidenceMonitorSerializer(many=True), **LIST_ERRORS}
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One evidence monitor",
        responses={200: EvidenceMonitorSerializer, **READ_ERRORS, 404: _error("no such")},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create an evidence monitor",
        request=EvidenceMonitorSerializer,
        responses={201: EvidenceMonitorSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(request)

    @extend_schema(
        summary="Change an evidence monitor",
        description="Send the fields to change and the `version` the change is based on; a stale version answers "
        "409. Every change is audited with before and after.",
        request=EvidenceMonitorPatchSerializer,
        responses={200: EvidenceMonitorSerializer, **PATCH_ERRORS},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_editor(request)
        return self._save(request, instance=self.get_object())


class MonitorQuerySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[(t, t) for t in MONITOR_TYPES], required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    violated = serializers.BooleanField(required=False, allow_null=True, default=None)
    calendar = serializers.SlugField(required=False, default="")
    category = serializers.SlugField(required=False, default="")
    q = serializers.CharField(required=False, default="", max_length=100)
    cursor = serializers.CharField(required=False, default="", max_length=400)
    page_size = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[str, str] | None:
    if not text:
        return None
    try:
        slug, kind = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise _invalid({"cursor": ["invalid cursor"]}) from None
    if not isinstance(slug, str) or kind not in MONITOR_TYPES:
        raise _invalid({"cursor": ["invalid cursor"]})
    return slug, kind


class MonitorListView(generics.GenericAPIView):
    """Both kinds of monitor in one list, by slug: volume ("non-events") and control evidence."""

    permission_classes = [HasCapability]
    required_capability = VIEW_TRANSACTIONS
    serializer_class = MonitorPageSerializer

    @extend_schema(
        summary="List monitors of both kinds",
        description="Ordered by slug, cursor-paginated (follow `next`); e.g. ?violated=true or ?type=volume. Each "
        "row's `url` is the kind's own detail, where managers PATCH with the version.",
        parameters=[
            OpenApiParameter("type", str, enum=list(MONITOR_TYPES), description="only this kind"),
            OpenApiParameter("is_active", bool),
            OpenApiParameter("violated", bool, description="volume: violated now; evidence: missing in 7 days"),
            OpenApiParameter("calendar", str, description="calendar slug"),
            OpenApiParameter("category", str, description="case category slug"),
            OpenApiParameter("q", str, description="name or slug contains"),
            OpenApiParameter("cursor", str, description="the cursor of the page to read (from `next`)"),
            OpenApiParameter("page_size", int, description="1-500, default 50"),
        ],
        responses={200: MonitorPageSerializer, **LIST_ERRORS},
    )
    def get(self, request: Request) -> Response:
        refuse_unknown_parameters(request, set(MonitorQuerySerializer().fields))
        query = MonitorQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise _invalid(query.errors)
        params = query.validated_data
        rows, more = monitor_page(
            types=(params["type"],) if params.get("type") else MONITOR_TYPES,
            after=_decode_cursor(params["cursor"]),
            limit=params["page_size"],
            is_active=params["is_active"],
            violated=params["violated"],
            calendar=params["calendar"],
            category=params["category"],
            q=params["q"].strip(),
        )
        next_url = None
        if more and rows:
            query_params = request.query_params.copy()
            query_params["cursor"] = _encode_cursor(rows[-1].key)
            next_url = request.build_absolute_uri(f"{request.path}?{query_params.urlencode()}")
        return Response({"next": next_url, "results": [self._row(request, row) for row in rows]})

    def _row(self, request: Request, row: MonitorRow) -> dict:
        m = row.monitor
        name = "api-volume-monitor-detail" if row.type == "volume" else "api-evidence-monitor-detail"
        return {
            "type": row.type,
            "id": m.pk,
            "slug": m.slug,
            "name": m.name,
            "calendar": m.calendar.slug,
            "category": m.category_slug,
            "is_active": m.is_active,
            "violated": row.violated,
            "summary": row.summary,
            "version": m.version,
            "url": reverse(name, kwargs={"pk": m.pk}, request=request),
        }


__all__ = ["EvidenceMonitorViewSet", "MonitorListView", "VolumeMonitorViewSet"]
