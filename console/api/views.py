from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.serializers import AuditEntrySerializer, MeSerializer
from console.filters import AuditEntryFilterSet
from console.lib.api import HasCapability
from console.lib.audit import actor_for
from console.lib.capabilities import EXPORT_LINEAGE, VIEW_AUDIT
from console.selectors import audit_entry_list, lineage_get
from console.views.lineage import lineage_export_response


class MeView(APIView):
    """Who the caller is and which roles they hold."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The hash-chained audit trail (compliance and admin)."""

    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    permission_classes = [HasCapability]
    required_capability = VIEW_AUDIT

    def get_queryset(self):
        return audit_entry_list()


class CSVRenderer(renderers.BaseRenderer):
    """Lets `?format=csv` pass DRF's content negotiation; the CSV itself is streamed by the export."""

    media_type = "text/csv"
    format = "csv"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        return b"" if data is None else str(data).encode()


class LineageView(APIView):
    """Approval lineage of the transactions carrying a business key (or with a transaction id), with the findings."""

    permission_classes = [HasCapability]
    required_capability = EXPORT_LINEAGE
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("business_key", str, required=True, description="any business key or a transaction id"),
            OpenApiParameter("format", str, enum=["json", "csv"], description="json (default) or csv"),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            400: OpenApiResponse(description="no business_key"),
            401: OpenApiResponse(description="not signed in"),
            403: OpenApiResponse(description="lacks the export_lineage capability"),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        key = request.query_params.get("business_key", "").strip()
        if not key:
            raise ValidationError({"business_key": "name a business key or transaction id"})
        fmt = "csv" if request.query_params.get("format") == "csv" else "json"
        return lineage_export_response(result=lineage_get(query=key), fmt=fmt, actor=actor_for(request.user))
