"""The reconciliation page (/reconciliation/): match rates by rule, system pair, entity and week, the open mismatches
with the amounts at stake, CSV downloads of every table, and the drill-down list of the results behind each figure.

Read-only, for everyone who reads cases (finance operations, managers, compliance). Figures come from
`exceptions.selectors.reconciliation_dashboard`; the drill-down filters (`exceptions.dashboard_filters`) select exactly
the rows a figure counted. Every CSV download is audited and formula-safe (console.lib.exports).
"""

from collections.abc import Callable, Iterable
from datetime import date, timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from console.lib.audit import actor_for, audit_record
from console.lib.capabilities import VIEW_CASES
from console.lib.exports import csv_response
from exceptions import charts
from exceptions.dashboard_filters import ReconciliationDrillFilterSet
from exceptions.models import ReconciliationResult
from exceptions.selectors import reconciliation_result_list
from exceptions.selectors.reconciliation_dashboard import BY, ReconciliationDashboard, reconciliation_dashboard
from transactions.services.interfaces import local_day

DEFAULT_DAYS = 84
PERIODS = (7, 28, 84, 182, 365)
DRILL_PAGE = 500
Tables = dict[str, tuple[list[str], Callable[[], Iterable]]]


def _period(request: HttpRequest) -> tuple[date, date, int]:
    """The last `?days=` local days (7 to 365, default 12 weeks) up to today, in the dashboards' time zone (the
    rollup's days)."""
    try:
        days = min(max(int(request.GET.get("days", DEFAULT_DAYS)), 7), 365)
    except ValueError:
        days = DEFAULT_DAYS
    today = local_day(timezone.now())
    return today - timedelta(days=days - 1), today, days


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{100 * rate:.1f}"


def _group_row(row: dict) -> list:
    return [
        row["label"],
        row["matched"],
        row["mismatched"],
        row["incomplete"],
        row["error"],
        row["total"],
        _pct(row["match_rate"]),
        row["amount_at_stake"],
    ]


GROUP_HEADER = ["matched", "mismatched", "incomplete", "error", "total", "match_rate_pct", "amount_at_stake"]
RESULT_HEADER = [
    "transaction",
    "rule",
    "status",
    "left_value",
    "right_value",
    "left_system",
    "right_system",
    "entity",
    "amount_at_stake",
    "currency",
    "occurred_at",
    "case",
    "reason",
]


def _result_row(r: ReconciliationResult) -> list:
    return [
        r.txn_id,
        r.rule.name,
        r.status,
        r.left_value,
        r.right_value,
        r.left_system,
        r.right_system,
        r.entity,
        r.amount_at_stake,
        r.currency,
        r.occurred_at,
        r.case_id,
        r.reason,
    ]


def _tables(board: ReconciliationDashboard) -> Tables:
    tables: Tables = {
        by: ([by, *GROUP_HEADER], lambda rows=board.groups[by]: (_group_row(r) for r in rows)) for by in BY
    }
    tables["open_mismatches"] = (RESULT_HEADER, lambda: (_result_row(r) for r in board.open_mismatches))
    return tables


@require_safe
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def reconciliation_page(request: HttpRequest) -> HttpResponse:
    first, last, days = _period(request)
    board = reconciliation_dashboard(first=first, last=last)
    if request.GET.get("format") == "csv":
        tables = _tables(board)
        name = request.GET.get("table", "")
        if name not in tables:
            raise Http404("no such table")
        audit_record(
            actor=actor_for(request.user),
            action="dashboard.exported",
            object_type="exceptions.reconciliation",
            after={"table": name, "days": days},
        )
        header, rows = tables[name]
        return csv_response(f"reconciliation-{name}.csv", header, rows())
    context = {
        "board": board,
        "days": days,
        "periods": PERIODS,
        "sections": [
            (by, charts.TITLES[by], charts.match_rate_chart(board.groups[by], by), board.groups[by]) for by in BY
        ],
    }
    return render(request, "exceptions/reconciliation_page.html", context)


@require_safe
@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def reconciliation_drill(request: HttpRequest) -> HttpResponse:
    """The results behind a figure, each with its transaction; the CSV has every row."""
    filterset = ReconciliationDrillFilterSet(request.GET, queryset=reconciliation_result_list().select_related("case"))
    items = filterset.qs if filterset.is_valid() else ReconciliationResult.objects.none()
    if request.GET.get("format") == "csv":
        audit_record(
            actor=actor_for(request.user),
            action="dashboard.drill_exported",
            object_type="exceptions.reconciliation.drill",
            after={"filters": {k: v for k, v in request.GET.lists() if k != "format"}},
        )
        return csv_response("reconciliation-results.csv", RESULT_HEADER, (_result_row(r) for r in items.iterator()))
    total = items.count()
    query = request.GET.copy()
    query.pop("format", None)
    return render(
        request,
        "exceptions/reconciliation_drill.html",
        {
            "filter": filterset,
            "total": total,
            "rows": list(items[:DRILL_PAGE]),
            "truncated": total > DRILL_PAGE,
            "query": query.urlencode(),
        },
    )
