"""The integration map: the estate's systems and the interfaces discovered between them, with their figures over a
range of local days (from the daily rollups). Read-only; everyone who reads transactions may see it.

Plain function views: reads through selectors; every system and interface links to its transactions (and a system to
its cases), in the figure and in the table, so nothing depends on the figure's script.
"""

from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, MANAGE_INGEST, VIEW_TRANSACTIONS
from console.lib.errors import DomainError, StaleVersion
from console.lib.exports import audited_csv_export
from console.lib.views import get_or_404, posted
from transactions import charts, selectors, services
from transactions.forms import CatalogueForm, CatalogueImportForm, MapRangeForm
from transactions.services.catalogue import catalogue_snapshot
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
    catalogued = selectors.catalogue_entries()
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
            "may_edit": may_edit_catalogue(request.user),
            "interfaces": [
                {
                    "f": f,
                    "i": catalogued.get(("i", f.id)),
                    "url": interface_urls[f.id],
                    "cases_url": _cases_url(f.target),
                    "p50": charts.duration_label(None if f.latency_p50_ms is None else round(f.latency_p50_ms)),
                    "p95": charts.duration_label(None if f.latency_p95_ms is None else round(f.latency_p95_ms)),
                }
                for f in table
            ],
            "systems": [
                {"s": s, "o": catalogued.get(("s", s.id)), "url": system_urls[s.name], "cases_url": _cases_url(s.name)}
                for s in systems
            ],
            "chart": charts.interface_map_chart(
                systems, interfaces, system_urls=system_urls, interface_urls=interface_urls, colour_by=colour
            )
            if systems
            else "",
        },
        status=200 if valid else 400,
    )


def may_edit_catalogue(user) -> bool:
    """Managers and integration engineers keep the catalogue."""
    return user.has_perm(EDIT_RULES) or user.has_perm(MANAGE_INGEST)


def _editor_only(request: HttpRequest) -> None:
    if not may_edit_catalogue(request.user):
        raise PermissionDenied("only managers and integration engineers edit the integration catalogue")


def _entry_initial(obj) -> dict:
    return {**catalogue_snapshot(obj), "data_objects": "; ".join(obj.data_objects), "version": obj.version}


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def catalogue_entry_edit(request: HttpRequest, kind: str, obj_id: int) -> HttpResponse:
    _editor_only(request)  # first: a reader learns nothing about which entries exist
    if kind not in ("systems", "interfaces"):
        raise Http404("no such kind of catalogue entry")
    if kind == "systems":
        obj = get_or_404(selectors.system_get, system_id=obj_id)
        title = obj.name
    else:
        obj = get_or_404(selectors.interface_get, interface_id=obj_id)
        title = f"{obj.source.name} → {obj.target.name}"
    form = CatalogueForm(posted(request), initial=_entry_initial(obj))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.catalogue_entry_update(
                    obj=obj, entry=form.entry(), actor=actor_for(request.user), version=form.cleaned_data["version"]
                )
            except StaleVersion as exc:
                form.add_error(None, str(exc))
                status = 409
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved the catalogue entry of {title}.")
                return redirect("integration-map")
    return render(
        request, "transactions/catalogue_edit.html", {"form": form, "title": title, "kind": kind}, status=status
    )


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def catalogue(request: HttpRequest) -> HttpResponse:
    """GET ?format=csv: the catalogue as CSV (every reader); otherwise the import (managers and integration)."""
    if request.method == "GET" and request.GET.get("format") == "csv":
        return audited_csv_export(
            actor=actor_for(request.user),
            action="catalogue.exported",
            object_type="transactions.interface",
            params=request.GET,
            filename="integration-catalogue.csv",
            header=services.CATALOGUE_COLUMNS,
            rows=selectors.catalogue_rows(),
        )
    _editor_only(request)
    form = CatalogueImportForm(posted(request), request.FILES or None)
    problems: list[str] = []
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            header, rows = form.cleaned_data["file"]
            try:
                result = services.catalogue_import(header=header, rows=rows, actor=actor_for(request.user))
            except services.CatalogueImportError as exc:
                problems = exc.problems
            else:
                messages.success(request, f"Imported {result['rows']} rows ({result['changed']} changed).")
                return redirect("integration-map")
    return render(request, "transactions/catalogue_import.html", {"form": form, "problems": problems}, status=status)
