from django.http import HttpResponsePermanentRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import HasCapability
from console.lib.capabilities import VIEW_TRANSACTIONS
from transactions.api.serializers import TimelineSerializer, TransactionSerializer
from transactions.filters import TransactionFilterSet
from transactions.models import Transaction
from transactions.selectors import transaction_list, transaction_resolve, transaction_timeline


class RecentActivityPagination(CursorPagination):
    """Newest activity first, stable under inserts; no COUNT or OFFSET at a million events."""

    ordering = ("-last_event_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class TransactionViewSet(viewsets.ReadOnlyModelViewSet):
    """End-to-end transactions: search by business key, trace id, system, status, process and time."""

    serializer_class = TransactionSerializer
    filterset_class = TransactionFilterSet
    pagination_class = RecentActivityPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_TRANSACTIONS

    def get_queryset(self):
        return transaction_list()

    @extend_schema(
        responses={200: TimelineSerializer, 301: OpenApiResponse(description="merged: moved to the surviving id")}
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """One transaction with its timeline; a merged id answers 301 to the transaction it was merged into."""
        txn = get_object_or_404(Transaction.objects.only("id"), pk=pk)
        survivor = transaction_resolve(txn_id=txn.pk)
        if survivor.pk != txn.pk:
            return HttpResponsePermanentRedirect(f"/api/v1/transactions/{survivor.pk}/")
        return Response(TimelineSerializer(transaction_timeline(txn=survivor)).data)
