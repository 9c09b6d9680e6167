"""Monitors: both kinds in one list with their state, create and edit (audited), and each monitor's state.

Reading needs console.view_transactions; every change needs console.edit_rules and goes through the services.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_TRANSACTIONS
from console.lib.errors import DomainError
from console.lib.views import get_or_404, posted
from slas import selectors
from slas.forms import EvidenceMonitorForm, VolumeMonitorForm
from slas.services import monitors as services

PAGE = 100
KINDS: dict[str, dict[str, Any]] = {
    selectors.VOLUME: {
        "form": VolumeMonitorForm,
        "get": selectors.volume_monitor_get,
        "create": services.volume_monitor_create,
        "update": services.volume_monitor_update,
        "label": "volume monitor",
    },
    selectors.EVIDENCE: {
        "form": EvidenceMonitorForm,
        "get": selectors.evidence_monitor_get,
        "create": services.evidence_monitor_create,
        "update": services.evidence_monitor_update,
        "label": "evidence monitor",
    },
}


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get((value or "").lower())


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def monitor_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("type", "")
    after_slug, after_type = request.GET.get("after_slug", ""), request.GET.get("after_type", "")
    rows, more = selectors.monitor_page(
        types=(kind,) if kind in selectors.MONITOR_TYPES else selectors.MONITOR_TYPES,
        after=(after_slug, after_type) if after_slug and after_type in selectors.MONITOR_TYPES else None,
        limit=PAGE,
        is_active=_flag(request.GET.get("is_active")),
        violated=_flag(request.GET.get("violated")),
        q=request.GET.get("q", "").strip(),
    )
    following = None
    if more and rows:
        query = request.GET.copy()
        query["after_slug"], query["after_type"] = rows[-1].key
        following = query.urlencode()
    context = {
        "rows": rows,
        "following": following,
        "filters": request.GET,
        "can_edit": request.user.has_perm(EDIT_RULES),
    }
    return render(request, "slas/monitor_list.html", context)


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def monitor_detail(request: HttpRequest, kind: str, monitor_id: int) -> HttpResponse:
    monitor = get_or_404(KINDS[kind]["get"], monitor_id=monitor_id)
    checks = selectors.evidence_check_list(monitor=monitor) if kind == selectors.EVIDENCE else []
    context = {
        "kind": kind,
        "monitor": monitor,
        "row": selectors.MonitorRow(kind, monitor),
        "checks": checks,
        "can_edit": request.user.has_perm(EDIT_RULES),
    }
    return render(request, "slas/monitor_detail.html", context)


def _save(request: HttpRequest, kind: str, monitor: Any) -> HttpResponse:
    spec = KINDS[kind]
    form = spec["form"](posted(request), instance=monitor)
    if request.method == "POST" and form.is_valid():
        actor = actor_for(request.user)
        try:
            if monitor is None:
                saved = spec["create"](actor=actor, **form.service_kwargs())
            else:
                stored = spec["get"](monitor_id=monitor.pk)
                version = form.cleaned_data.get("version")
                saved = spec["update"](monitor=stored, actor=actor, expected_version=version, **form.service_kwargs())
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{spec['label'].capitalize()} {saved.name} saved.")
            return redirect("sla-monitor-detail", kind=kind, monitor_id=saved.pk)
    # A failed save left the form's instance changed in memory: name the stored monitor.
    stored = spec["get"](monitor_id=monitor.pk) if monitor is not None else None
    context = {"form": form, "monitor": stored, "kind": kind, "label": spec["label"]}
    return render(request, "slas/monitor_form.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def monitor_create(request: HttpRequest, kind: str) -> HttpResponse:
    return _save(request, kind, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def monitor_edit(request: HttpRequest, kind: str, monitor_id: int) -> HttpResponse:
    return _save(request, kind, get_or_404(KINDS[kind]["get"], monitor_id=monitor_id))
