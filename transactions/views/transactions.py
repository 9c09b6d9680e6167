"""Console pages of transactions, for everyone who may read them: the searchable list (and its CSV export) and the
timeline of one transaction.

Plain function views: reads through selectors; an export is recorded in the audit trail by console.lib's audited
CSV export before the file streams.
"""

import json

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import reverse

from console.lib.audit import actor_for
from console.lib.capabilities import VIEW_TRANSACTIONS
from console.lib.exports import Keyset, audited_csv_export, export_rows
from console.lib.panels import render_panels
from console.lib.saved_views import saved_view_list
from transactions import charts, selectors
from transactions.filters import TransactionFilterSet
from transactions.models import Transaction

TRANSACTION_PAGE = 50
# The order of selectors.transaction_list: the most recently active first.
NEWEST_ACTIVITY = Keyset("-last_event_at", "-id")
CSV_HEADER = ["id", "process", "status", "started_at", "last_event_at", "events", "errors", "systems", "business_keys"]


def _csv_row(txn: Transaction) -> list:
    keys = "; ".join(f"{t}={','.join(v)}" for t, v in sorted(txn.business_keys.items()))
    return [
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
        return audited_csv_export(
            actor=actor_for(request.user),
            action="transactions.exported",
            object_type="transactions.transaction",
            params=request.GET,
            filename="transactions.csv",
            header=CSV_HEADER,
            rows=export_rows(transactions, _csv_row),
        )
    page, next_cursor = NEWEST_ACTIVITY.page(transactions, cursor=request.GET.get("cursor"), size=TRANSACTION_PAGE)
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("format", None)
    return render(
        request,
        "transactions/transaction_list.html",
        {
            "filter": filterset,
            "transactions": page,
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
