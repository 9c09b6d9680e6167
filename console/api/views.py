from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.serializers import (
    AuditEntrySerializer,
    EvidenceJobRequestSerializer,
    EvidenceJobSerializer,
    MeSerializer,
)
from console.filters import AuditEntryFilterSet
from console.lib.api import HasCapability, refuse_unknown_parameters
from console.lib.audit import actor_for
from console.lib.capabilities import EXPORT_LINEAGE, VIEW_AUDIT
from console.models import EvidenceJob
from console.selectors import audit_entry_list, evidence_job_get, lineage_get
from console.services import evidence_job_create
from console.views.lineage import evidence_job_file, lineage_export_response


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
        refuse_unknown_parameters(request, {"business_key"})
        key = request.query_params.get("business_key", "").strip()
        if not key:
            raise ValidationError({"business_key": "name a business key or transaction id"})
        fmt = "csv" if request.query_params.get("format") == "csv" else "json"
        return lineage_export_response(result=lineage_get(query=key), fmt=fmt, actor=actor_for(request.user))


class EvidencePackageCreateView(APIView):
    """Queue an auditor's sample: the lineage of every transaction started in a period (optionally of one entity)."""

    permission_classes = [HasCapability]
    required_capability = EXPORT_LINEAGE

    @extend_schema(request=EvidenceJobRequestSerializer, responses={202: EvidenceJobSerializer})
    def post(self, request: Request) -> Response:
        data = EvidenceJobRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = evidence_job_create(actor=actor_for(request.user), **data.validated_data)
        return Response(EvidenceJobSerializer(job, context={"request": None}).data, status=202)


class EvidencePackageView(APIView):
    """A bulk evidence package: its status while it is built (202), then the zip itself (200, application/zip)."""

    permission_classes = [HasCapability]
    required_capability = EXPORT_LINEAGE

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            (202, "application/json"): EvidenceJobSerializer,
            404: OpenApiResponse(description="no such job"),
        }
    )
    def get(self, request: Request, job_id: str) -> HttpResponse:
        try:
            job = evidence_job_get(job_id=job_id)
        except EvidenceJob.DoesNotExist as exc:
            raise NotFound("no such evidence package") from exc
        if job.status == EvidenceJob.Status.DONE:
            return evidence_job_file(job)
        return Response(EvidenceJobSerializer(job, context={"request": request}).data, status=202)
