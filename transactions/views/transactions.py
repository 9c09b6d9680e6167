"""Console pages of transactions, for everyone who may read them: the searchable list (and its CSV export) and the
timeline of one transaction.

Plain function views: reads through selectors; the export's audit entry is written by a service.
"""

import json
from collections.abc import Iterator
from datetime import datetime

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import reverse

from console.lib.audit import actor_for
from console.lib.capabilities import VIEW_TRANSACTIONS
from console.lib.exports import csv_response
from console.lib.panels import render_panels
from console.lib.saved_views import saved_view_list
from transactions import charts, selectors, services
from transactions.filters import TransactionFilterSet
from transactions.models import Transaction

TRANSACTION_PAGE = 50
CSV_LIMIT = 100_000
CSV_HEADER = ["id", "process", "status", "started_at", "last_event_at", "events", "errors", "systems", "business_keys"]


def _after_cursor(queryset: QuerySet, cursor: str) -> QuerySet:
    """Keyset pagination on (last_event_at, id) descending: the page after the row the cursor names."""
    stamp, _, txn_id = cursor.rpartition("_")
    try:
        moment = datetime.fromisoformat(stamp)
        last_id = int(txn_id)
    except ValueError:
        return queryset
    return queryset.filter(Q(last_event_at__lt=moment) | Q(last_event_at=moment, id__lt=last_id))


def _csv_rows(queryset: QuerySet) -> Iterator[list]:
    for txn in queryset[:CSV_LIMIT].iterator(chunk_size=2000):
        keys = "; ".join(f"{t}={','.join(v)}" for t, v in sorted(txn.business_keys.items()))
        yield [
            txn.pk,
            txn.process.name if txn.process else "",
            txn.status,
            txn.started_at.isoformat(),
            txn.last_event_at.isoformat(),
            txn.event_count,
            txn.error_count,
            " ".join(txn.systems),
            keys,
        ]


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def transaction_list(request: HttpRequest) -> HttpResponse:
    filterset = TransactionFilterSet(request.GET, queryset=selectors.transaction_list())
    transactions = filterset.qs if filterset.is_valid() else selectors.transaction_list().none()
    if request.GET.get("format") == "csv":
        services.transactions_export_record(
            actor=actor_for(request.user), filters={k: v for k, v in request.GET.items() if k != "format"}
        )
        return csv_response("transactions.csv", CSV_HEADER, _csv_rows(transactions))
    if request.GET.get("cursor"):
        transactions = _after_cursor(transactions, request.GET["cursor"])
    page = list(transactions[: TRANSACTION_PAGE + 1])
    next_cursor = None
    if len(page) > TRANSACTION_PAGE:
        last = page[TRANSACTION_PAGE - 1]
        next_cursor = f"{last.last_event_at.isoformat()}_{last.pk}"
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("format", None)
    return render(
        request,
        "transactions/transaction_list.html",
        {
            "filter": filterset,
            "transactions": page[:TRANSACTION_PAGE],
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "saved_views": saved_view_list(user=request.user, page="transactions"),
            "saved_view_page": "transactions",
        },
    )


def _matches(item: dict, needle: str) -> bool:
    haystack = " ".join(
        str(item.get(field) or "") for field in ("id", "event_id", "span_id", "trace_id", "system", "kind")
    )
    haystack += " " + json.dumps(item.get("attributes") or {}, default=str) + json.dumps(item.get("error") or {})
    return needle in haystack.lower()


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def transaction_detail(request: HttpRequest, txn_id: int) -> HttpResponse:
    try:
        txn = selectors.transaction_resolve(txn_id=txn_id)
    except Transaction.DoesNotExist as exc:
        raise Http404("no such transaction") from exc
    if txn.pk != txn_id:
        return HttpResponsePermanentRedirect(reverse("transaction-detail", args=[txn.pk]))
    timeline = selectors.transaction_timeline(txn=txn)
    needle = request.GET.get("q", "").strip().lower()
    shown = [i for i in timeline["items"] if _matches(i, needle)] if needle else timeline["items"]
    return render(
        request,
        "transactions/transaction_detail.html",
        {
            "txn": txn,
            "timeline": timeline,
            "items": shown,
            "q": request.GET.get("q", ""),
            "chart": charts.timeline_chart(timeline),
            "duration": charts.duration_label(timeline["end_to_end_ms"]),
            "panels": render_panels("transaction_detail", request=request, txn=txn),
        },
    )
