"""The console shell: home dashboard, audit trail page, health probes."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from console.charts import activity_chart
from console.filters import AuditEntryFilterSet
from console.lib.capabilities import (
    ACT_ON_ALL_QUEUES,
    ACT_ON_CASES,
    VIEW_AUDIT,
    VIEW_DASHBOARDS,
    VIEW_TRANSACTIONS,
)
from console.lib.saved_views import saved_view_delete, saved_view_save
from console.selectors import audit_activity_by_day, audit_chain_status, audit_entry_list
from exceptions.selectors import queue_list_for, queue_summaries
from slas.dashboard_selectors import open_control_cases, sla_attainment_summary, worst_breaches
from slas.kpis import local_day
from slas.selectors import sla_clocks_at_risk_for_queue
from transactions.charts import STATUS_ORDER, process_status_chart
from transactions.selectors import transaction_counts_by_process

logger = logging.getLogger(__name__)
PAGE_SIZE = 100


# The at-risk count a home card shows per queue; the queue page's panel lists at most as many.
AT_RISK_SHOWN = 50
# Managers' home: SLA attainment over the last 30 local days.
HOME_SLA_DAYS = 30


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """One home per role: operators their queues, managers SLA attainment and the worst breaches, compliance its
    open control cases and the audit chain; each count links to the page that lists exactly those rows."""
    user = request.user
    context: dict = {"activity_chart": activity_chart(audit_activity_by_day())}
    if user.has_perm(VIEW_TRANSACTIONS):
        rows = transaction_counts_by_process()
        totals = {status: sum(r["n"] for r in rows if r["status"] == status) for status in STATUS_ORDER}
        context.update(process_chart=process_status_chart(rows), totals=totals)
    if user.has_perm(ACT_ON_CASES) and not user.has_perm(ACT_ON_ALL_QUEUES):
        now = timezone.now()
        context["my_queues"] = [
            {
                "summary": summary,
                "at_risk": len(sla_clocks_at_risk_for_queue(queue_id=summary.queue.pk, limit=AT_RISK_SHOWN)),
                "at_risk_more": AT_RISK_SHOWN,
            }
            for summary in queue_summaries(queues=queue_list_for(user=user), now=now)
        ]
    if user.has_perm(VIEW_DASHBOARDS) and user.has_perm(ACT_ON_ALL_QUEUES):
        today = local_day(timezone.now(), settings.DASHBOARD_TIME_ZONE)
        first = today - timedelta(days=HOME_SLA_DAYS - 1)
        context["sla"] = {
            "days": HOME_SLA_DAYS,
            **sla_attainment_summary(first=first, last=today),
            "worst": worst_breaches(limit=3),
        }
    if user.has_perm(VIEW_AUDIT):
        context["compliance"] = {
            "open_control_cases": open_control_cases().count(),
            "open_control_url": f"{reverse('roi-drill-cases')}?category=control&active=true",
            "chain": audit_chain_status(),
        }
    return render(request, "console/home.html", context)


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


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("readyz.database_unreachable", extra={"error": str(exc)})
        checks["database"] = "unreachable"
    if settings.CELERY_BROKER_URL:
        from console.celery import app

        try:
            with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:
            logger.warning("readyz.broker_unreachable", extra={"error": str(exc)})
            checks["broker"] = "unreachable"
    else:
        checks["broker"] = "not configured (tasks run in-process)"
    ready = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


# Pages that offer saved views, and where each lives; a saved view can only point back at one of them.
SAVED_VIEW_PAGES = {"transactions": "transaction-list", "queue": "queue-list"}


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    page = request.POST.get("page", "")
    name = request.POST.get("name", "").strip()
    if page not in SAVED_VIEW_PAGES:
        return HttpResponseBadRequest("unknown page")
    target = reverse(SAVED_VIEW_PAGES[page])
    query = request.POST.get("query", "")
    if not name:
        messages.error(request, "Give the view a name to save it.")
        return redirect(f"{target}?{query}")
    view = saved_view_save(user=request.user, page=page, name=name, query=query)
    messages.success(request, f"Saved view “{view.name}”.")
    return redirect(f"{target}?{view.query}")


@login_required
@require_POST
def saved_view_delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    page = request.POST.get("page", "")
    saved_view_delete(user=request.user, view_id=view_id)
    return redirect(reverse(SAVED_VIEW_PAGES.get(page, "home")))
