import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.filters import AuditEntryFilterSet
from console.lib.audit import actor_for
from console.lib.capabilities import VIEW_AUDIT
from console.lib.exports import Keyset
from console.selectors import audit_chain_last_check, audit_entry_list
from console.services import audit_chain_check_record

PAGE_SIZE = 100
NEWEST_FIRST = Keyset("-id")


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def change_rows(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """An entry's change as (field, before, after) for the fields that differ; a value that is not a dict is one row."""
    if not isinstance(before, dict) and not isinstance(after, dict):
        return [] if before is None and after is None else [("", _text(before), _text(after))]
    old, new = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
    return [
        (key, _text(old.get(key)) if key in old else "—", _text(new.get(key)) if key in new else "—")
        for key in sorted(set(old) | set(new), key=lambda k: (list(old).index(k) if k in old else len(old), k))
        if old.get(key) != new.get(key) or key not in old or key not in new
    ]


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    filterset = AuditEntryFilterSet(request.GET, queryset=audit_entry_list())
    entries, older = NEWEST_FIRST.page(filterset.qs, cursor=request.GET.get("before"), size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("before", None)
    rows = [(e, change_rows(e.before, e.after)) for e in entries]
    context = {
        "filter": filterset,
        "rows": rows,
        "older": older,
        "query": query.urlencode(),
        "check": audit_chain_last_check(),
    }
    return render(request, "console/audit_list.html", context)


@login_required
@permission_required(VIEW_AUDIT, raise_exception=True)
@require_POST
def audit_verify_now(request: HttpRequest) -> HttpResponse:
    """Walk the chain now; the result is kept like the hourly check's (reading it changes no audited data)."""
    check = audit_chain_check_record(actor=actor_for(request.user))
    if check.ok:
        messages.success(request, f"Chain verified: {check.checked} entries, head {check.head_hash[:12]}…")
    else:
        messages.error(request, f"Chain broken at entry #{check.break_entry_id}: {check.break_reason}")
    return redirect("audit-list")
