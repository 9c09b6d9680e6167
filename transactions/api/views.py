from datetime import date

from django.http import HttpResponsePermanentRedirect
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import FAST_RENDERERS, HasCapability
from console.lib.capabilities import VIEW_TRANSACTIONS
from transactions.api.serializers import (
    InterfaceSerializer,
    SystemSerializer,
    TimelineSerializer,
    TransactionSerializer,
)
from transactions.filters import DayRangeFilterSet, InterfaceFilterSet, SystemFilterSet, TransactionFilterSet
from transactions.models import Transaction
from transactions.selectors import (
    interface_days_attach,
    interface_list,
    system_list,
    transaction_list,
    transaction_resolve,
    transaction_timeline,
)
from transactions.services.interfaces import local_day


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


class IdPagination(CursorPagination):
    """In discovery order; a map has hundreds of systems and interfaces, not millions."""

    ordering = ("id",)
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class DayRangeMixin:
    """The local days the figures cover, from the request's `since` and `until` (checked by the FilterSet)."""

    filterset_class: type[DayRangeFilterSet]

    def day_range(self) -> tuple[date, date]:
        filterset = self.filterset_class(
            self.request.query_params, queryset=self.filterset_class.Meta.model.objects.none()
        )
        return filterset.day_range(local_day(timezone.now()))


class SystemViewSet(DayRangeMixin, viewsets.ReadOnlyModelViewSet):
    """Systems seen in correlated traffic, with the hand-overs into and out of each over a range of local days."""

    serializer_class = SystemSerializer
    filterset_class = SystemFilterSet
    pagination_class = IdPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_TRANSACTIONS

    def get_queryset(self):
        first, last = self.day_range()
        return system_list(first=first, last=last)


class InterfaceViewSet(DayRangeMixin, viewsets.ReadOnlyModelViewSet):
    """Discovered interfaces (source system to target system) with their daily figures over a range of local days."""

    serializer_class = InterfaceSerializer
    filterset_class = InterfaceFilterSet
    pagination_class = IdPagination
    renderer_classes = FAST_RENDERERS
    permission_classes = [HasCapability]
    required_capability = VIEW_TRANSACTIONS

    def get_queryset(self):
        return interface_list()

    # The days are read for the interfaces shown only: the page once it is cut, or the one interface asked for.
    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        first, last = self.day_range()
        interface_days_attach(page or [], first=first, last=last)
        return page

    def get_object(self):
        interface = super().get_object()
        first, last = self.day_range()
        interface_days_attach([interface], first=first, last=last)
        return interface
