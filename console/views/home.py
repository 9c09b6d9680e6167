"""The home page: one per role, every count a link to the page that lists exactly those rows."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from console.charts import activity_chart
from console.lib.capabilities import ACT_ON_ALL_QUEUES, ACT_ON_CASES, VIEW_AUDIT, VIEW_DASHBOARDS, VIEW_TRANSACTIONS
from console.selectors import audit_activity_by_day, audit_chain_last_check
from exceptions.selectors import queue_list_for, queue_summaries
from slas.dashboards import open_control_cases, sla_attainment_summary, worst_breaches
from slas.kpis import local_day
from slas.selectors import sla_clocks_at_risk_for_queue
from transactions.charts import STATUS_ORDER, process_status_chart
from transactions.selectors import transaction_counts_by_process

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
            "chain": audit_chain_last_check(),
        }
    return render(request, "console/home.html", context)
