from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.serializers import AuditEntrySerializer, MeSerializer
from console.filters import AuditEntryFilterSet
from console.lib.api import HasCapability
from console.lib.capabilities import VIEW_AUDIT
from console.selectors import audit_entry_list


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
