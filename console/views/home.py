from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.charts import activity_chart
from console.lib.capabilities import VIEW_TRANSACTIONS
from console.selectors import audit_activity_by_day
from transactions.charts import STATUS_ORDER, process_status_chart
from transactions.selectors import transaction_counts_by_process


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context: dict = {"activity_chart": activity_chart(audit_activity_by_day())}
    if request.user.has_perm(VIEW_TRANSACTIONS):
        rows = transaction_counts_by_process()
        totals = {status: sum(r["n"] for r in rows if r["status"] == status) for status in STATUS_ORDER}
        context.update(process_chart=process_status_chart(rows), totals=totals)
    return render(request, "console/home.html", context)
