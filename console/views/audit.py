from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.filters import AuditEntryFilterSet
from console.lib.capabilities import VIEW_AUDIT
from console.lib.exports import Keyset
from console.selectors import audit_entry_list

PAGE_SIZE = 100
NEWEST_FIRST = Keyset("-id")


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    filterset = AuditEntryFilterSet(request.GET, queryset=audit_entry_list())
    entries, older = NEWEST_FIRST.page(filterset.qs, cursor=request.GET.get("before"), size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "console/audit_list.html",
        {"filter": filterset, "entries": entries, "older": older, "query": query.urlencode()},
    )
