from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.filters import AuditEntryFilterSet
from console.lib.capabilities import VIEW_AUDIT
from console.selectors import audit_entry_list

PAGE_SIZE = 100


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    filterset = AuditEntryFilterSet(request.GET, queryset=audit_entry_list())
    entries = filterset.qs
    before = request.GET.get("before", "")
    if before.isdigit():
        entries = entries.filter(id__lt=int(before))
    page = list(entries[: PAGE_SIZE + 1])
    older = page[PAGE_SIZE - 1].id if len(page) > PAGE_SIZE else None
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "console/audit_list.html",
        {"filter": filterset, "entries": page[:PAGE_SIZE], "older": older, "query": query.urlencode()},
    )
