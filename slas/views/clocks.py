"""The clocks page: every SLA clock, filtered like GET /api/v1/sla-clocks/ (one FilterSet), newest start first."""

from datetime import datetime

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from console.lib.capabilities import VIEW_CASES
from slas import selectors
from slas.filters import SlaClockFilterSet

CLOCK_PAGE = 100


def _after_cursor(clocks: QuerySet, cursor: str) -> QuerySet:
    """Keyset paging on (started_at, id), descending; an unreadable cursor starts from the top."""
    moment, _, clock_id = cursor.rpartition("_")
    try:
        started = datetime.fromisoformat(moment)
        anchor = int(clock_id)
    except ValueError:
        return clocks
    return clocks.filter(Q(started_at__lt=started) | Q(started_at=started, id__lt=anchor))


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def clock_list(request: HttpRequest) -> HttpResponse:
    filterset = SlaClockFilterSet(request.GET, queryset=selectors.sla_clock_list())
    clocks = filterset.qs if filterset.is_valid() else selectors.sla_clock_list().none()
    if request.GET.get("cursor"):
        clocks = _after_cursor(clocks, request.GET["cursor"])
    page = list(clocks[: CLOCK_PAGE + 1])
    next_cursor = None
    if len(page) > CLOCK_PAGE:
        last = page[CLOCK_PAGE - 1]
        next_cursor = f"{last.started_at.isoformat()}_{last.pk}"
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "filter": filterset,
        "clocks": selectors.sla_clocks_with_times(page[:CLOCK_PAGE], now=timezone.now()),
        "next_cursor": next_cursor,
        "query": query.urlencode(),
        "counts": selectors.sla_clock_counts(),
    }
    return render(request, "slas/clock_list.html", context)
