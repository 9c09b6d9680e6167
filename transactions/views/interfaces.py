"""The integration map: the estate's systems and the interfaces discovered between them, with their figures over a
range of local days (from the daily rollups). Read-only; everyone who reads transactions may see it.

Plain function views: reads through selectors; every system and interface links to its transactions (and a system to
its cases), in the figure and in the table, so nothing depends on the figure's script.
"""

from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from console.lib.capabilities import VIEW_TRANSACTIONS
from transactions import charts, selectors
from transactions.forms import MapRangeForm
from transactions.services.interfaces import day_bounds, local_day

DEFAULT_DAYS = 7
# Table columns: (sort key, label, numeric).
COLUMNS = (
    ("source", "From", False),
    ("target", "To", False),
    ("volume", "Volume", True),
    ("errors", "Failed", True),
    ("error_rate", "Error %", True),
    ("duplicates", "Duplicates", True),
    ("late", "Late", True),
    ("latency_p50_ms", "p50 latency", True),
    ("latency_p95_ms", "p95 latency", True),
)


def _headers(base: str, sort: str, descending: bool) -> list[dict]:
    headers = []
    for key, label, numeric in COLUMNS:
        current = key == sort
        # The first click on a figure shows the largest first; on a name, A to Z.
        desc = (not descending) if current else numeric
        query = f"{base}&" if base else ""
        headers.append(
            {
                "key": key,
                "label": label,
                "numeric": numeric,
                "href": f"?{query}{urlencode({'sort': key, **({'desc': 'on'} if desc else {})})}",
                "state": ("descending" if descending else "ascending") if current else "none",
                "arrow": (" ↓" if descending else " ↑") if current else "",
            }
        )
    return headers


def _cases_url(system: str) -> str:
    # The cases list belongs to the exceptions app (above this one): linked by URL name only, when it is installed.
    try:
        return f"{reverse('queue-list')}?{urlencode({'system': system})}"
    except NoReverseMatch:
        return ""


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def integration_map(request: HttpRequest) -> HttpResponse:
    form = MapRangeForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    data = form.cleaned_data if request.GET and valid else {}
    today = local_day(timezone.now())
    until = data.get("until") or today
    since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        since = until
    colour = data.get("colour") or "errors"
    sort = data.get("sort") or "volume"
    descending = bool(data.get("desc")) if "sort" in request.GET else sort == "volume"

    interfaces = selectors.interface_figures_list(first=since, last=until) if valid else []
    systems = selectors.system_figures_list(first=since, last=until, interfaces=interfaces) if valid else []
    start, end = day_bounds(since, until)
    # The transactions list's own range filters: active since the first day began, started before the last one ended.
    window = {"since": start.astimezone(UTC).isoformat(), "until": end.astimezone(UTC).isoformat()}
    transactions = reverse("transaction-list")
    system_urls = {s.name: f"{transactions}?{urlencode({'system': s.name, **window})}" for s in systems}
    interface_urls = {i.id: f"{transactions}?{urlencode({'interface': i.id, **window})}" for i in interfaces}

    def order(f) -> tuple:
        value = getattr(f, sort)
        # Interfaces without a figure (silent in the range) go last either way.
        return (value is None, value if value is not None else 0)

    table = sorted(interfaces, key=order, reverse=descending)
    if descending:
        table = [f for f in table if getattr(f, sort) is not None] + [f for f in table if getattr(f, sort) is None]
    base = request.GET.copy()
    base.pop("sort", None)
    base.pop("desc", None)
    return render(
        request,
        "transactions/integration_map.html",
        {
            "form": form,
            "since": since,
            "until": until,
            "colour": colour,
            "sort": sort,
            "descending": descending,
            "headers": _headers(base.urlencode(), sort, descending),
            "interfaces": [{"f": f, "url": interface_urls[f.id], "cases_url": _cases_url(f.target)} for f in table],
            "systems": [{"s": s, "url": system_urls[s.name], "cases_url": _cases_url(s.name)} for s in systems],
            "chart": charts.interface_map_chart(
                systems, interfaces, system_urls=system_urls, interface_urls=interface_urls, colour_by=colour
            )
            if systems
            else "",
        },
        status=200 if valid else 400,
    )
