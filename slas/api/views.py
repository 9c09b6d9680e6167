"""The SLA API: definitions (read; managers create and PATCH with a version check) and clocks (read, filtered like
the clocks page). Reads need console.view_cases; writes console.edit_rules (403 otherwise, before any other check).
"""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import HasCapability
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_CASES
from console.lib.errors import NotPermitted
from slas.api.serializers import (
    SlaClockSerializer,
    SlaDefinitionPatchSerializer,
    SlaDefinitionSerializer,
    SlaErrorSerializer,
)
from slas.filters import SlaClockFilterSet
from slas.models import SlaClock, SlaDefinition
from slas.selectors import sla_clock_list, sla_clocks_with_times, sla_definition_list
from slas.services.definitions import sla_definition_create, sla_definition_update


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(SlaErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error("the caller lacks console.view_cases")}
LIST_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="an invalid filter value: the problems per filter"),
    **READ_ERRORS,
}
WRITE_ERRORS = {
    400: _error("invalid input: the problems per field in errors (e.g. start and stop matching one event)"),
    401: _error("not authenticated"),
    403: _error("the caller may not edit SLA definitions (console.edit_rules)"),
}


def _invalid(serializer: Any) -> ValidationError:
    reasons = "; ".join(f"{name}: {' '.join(map(str, problems))}" for name, problems in serializer.errors.items())
    return ValidationError({"detail": reasons, "errors": serializer.errors})


def _require_editor(request: Request) -> None:
    if not request.user.has_perm(EDIT_RULES):
        raise NotPermitted("your role may read SLA definitions but not change them")


class SlugPagination(CursorPagination):
    ordering = ("slug",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StartedPagination(CursorPagination):
    """Newest start first, stable under inserts; no COUNT or OFFSET at 100,000 clocks."""

    ordering = ("-started_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SlaDefinitionViewSet(viewsets.ReadOnlyModelViewSet):
    """Business SLAs: what starts and stops a clock, its target on which calendar, and where breaches go."""

    serializer_class = SlaDefinitionSerializer
    pagination_class = SlugPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_CASES
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[SlaDefinition]:
        return sla_definition_list()

    @extend_schema(summary="List SLA definitions", responses={200: SlaDefinitionSerializer(many=True), **READ_ERRORS})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One SLA definition", responses={200: SlaDefinitionSerializer, **READ_ERRORS, 404: _error("no such")}
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create an SLA definition",
        request=SlaDefinitionSerializer,
        responses={201: SlaDefinitionSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_editor(request)
        serializer = SlaDefinitionSerializer(data=request.data)
        if not serializer.is_valid():
            raise _invalid(serializer)
        definition = sla_definition_create(actor=actor_for(request.user), **serializer.validated_data)
        return Response(SlaDefinitionSerializer(definition).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change an SLA definition",
        description="Send the fields to change and the `version` the change is based on; a stale version answers "
        "409 (reload and decide again). Every change is audited with before and after.",
        request=SlaDefinitionPatchSerializer,
        responses={
            200: SlaDefinitionSerializer,
            **WRITE_ERRORS,
            404: _error("no such definition"),
            409: _error("the definition changed since the version sent"),
        },
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_editor(request)
        definition = self.get_object()
        serializer = SlaDefinitionPatchSerializer(definition, data=request.data, partial=True)
        if not serializer.is_valid():
            raise _invalid(serializer)
        fields = dict(serializer.validated_data)
        version = fields.pop("version")
        updated = sla_definition_update(
            definition=definition, actor=actor_for(request.user), expected_version=version, **fields
        )
        return Response(SlaDefinitionSerializer(sla_definition_list().get(pk=updated.pk)).data)


class SlaClockViewSet(viewsets.ReadOnlyModelViewSet):
    """SLA clocks per transaction: filter by definition, status, process, entity and start time."""

    serializer_class = SlaClockSerializer
    filterset_class = SlaClockFilterSet
    pagination_class = StartedPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_CASES

    def get_queryset(self) -> QuerySet[SlaClock]:
        return sla_clock_list()

    def paginate_queryset(self, queryset: QuerySet[SlaClock]) -> list[SlaClock] | None:
        page = super().paginate_queryset(queryset)
        return None if page is None else sla_clocks_with_times(page, now=timezone.now())

    def get_object(self) -> SlaClock:
        return sla_clocks_with_times([super().get_object()], now=timezone.now())[0]

    @extend_schema(
        summary="List SLA clocks",
        description="Newest start first, cursor-paginated; e.g. ?status=at_risk&definition=invoice-after-contract.",
        responses={200: SlaClockSerializer(many=True), **LIST_ERRORS},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One SLA clock", responses={200: SlaClockSerializer, **READ_ERRORS, 404: _error("no such")})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)
