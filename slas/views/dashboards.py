"""The SLA and ROI dashboards, their CSV downloads, the ROI assumption edit and the drill-down lists.

Figures read daily rollups through `slas.dashboards`; each drill-down list selects exactly the rows a figure
counted, with the filters of `slas.dashboard_filters`. Managers edit ROI assumptions; compliance and admin read.
"""

from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.lib.audit import actor_for, audit_record
from console.lib.capabilities import EDIT_RULES, VIEW_CASES, VIEW_DASHBOARDS, VIEW_TRANSACTIONS
from console.lib.errors import DomainError
from console.lib.exports import csv_response
from slas import charts, dashboard_filters
from slas import dashboards as selectors
from slas.kpis import local_day
from slas.models import SlaClock
from slas.services.assumptions import roi_assumption_set

DEFAULT_DAYS = 84
MAX_DAYS = 400
DRILL_PAGE = 500
AT_RISK_CSV_LIMIT = 100_000


def _period(request: HttpRequest) -> tuple:
    """Local days first..last ending today; `?days=` picks the length (7 to 400, default 12 weeks)."""
    try:
        days = min(max(int(request.GET.get("days", DEFAULT_DAYS)), 7), MAX_DAYS)
    except ValueError:
        days = DEFAULT_DAYS
    today = local_day(timezone.now(), settings.DASHBOARD_TIME_ZONE)
    return today - timedelta(days=days - 1), today, today, days


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


Tables = dict[str, tuple[list[str], Callable[[], Iterable]]]


def _export(request: HttpRequest, page: str, tables: Tables) -> HttpResponse:
    name = request.GET.get("table", "")
    if name not in tables:
        raise Http404("no such table")
    header, rows = tables[name]
    audit_record(
        actor=actor_for(request.user),
        action="dashboard.exported",
        object_type=f"slas.{page}",
        after={"table": name, "filters": {k: v for k, v in request.GET.items() if k not in ("format", "table")}},
    )
    return csv_response(f"{page}-{name}.csv", header, rows())


# ---- SLA dashboard --------------------------------------------------------------------------------------------------


@login_required
@permission_required(VIEW_DASHBOARDS, raise_exception=True)
def sla_dashboard(request: HttpRequest) -> HttpResponse:
    first, last, today, days = _period(request)
    board = selectors.sla_dashboard(first=first, last=last, today=today)
    sort = request.GET.get("sort", "remaining")
    at_risk = selectors.at_risk_clocks(sort=sort)
    if request.GET.get("format") == "csv":
        everything = selectors.at_risk_clocks(sort=sort, limit=AT_RISK_CSV_LIMIT)
        return _export(request, "slas", _sla_tables(board, everything))
    context = {
        "board": board,
        "days": days,
        "sort": sort,
        "at_risk": at_risk,
        "attainment_chart": charts.attainment_chart(board.weekly),
        "breaches_chart": charts.breaches_chart(board.breaches_daily),
        "distribution_chart": charts.distribution_chart(board.distribution),
        "systems_chart": charts.contribution_chart(board.worst_systems, "system", "Breaches by system"),
        "steps_chart": charts.contribution_chart(board.worst_steps, "step", "Breaches by awaited process step"),
    }
    return render(request, "slas/sla_dashboard.html", context)


AT_RISK_HEADER = ["clock", "definition", "transaction", "entity", "started_at", "due_at", "remaining_s", "waiting_for"]
COMPARISON_HEADER = [
    "definition",
    "this_month_pct",
    "this_month_closed",
    "last_month_pct",
    "last_month_closed",
    "change_points",
]


def _at_risk_row(c: SlaClock) -> list:
    return [
        c.pk,
        c.definition.name,
        c.txn_id,
        c.entity,
        c.started_at,
        c.due_at,
        c.remaining_seconds,
        c.waiting_for_step,
    ]


def _sla_tables(board: selectors.SlaDashboard, at_risk: list) -> Tables:
    return {
        "weekly": (
            ["definition", "week", "met", "breached", "attainment_pct"],
            lambda: (
                [r["definition"].name, r["week"], r["met"], r["breached"], _pct(r["attainment"])] for r in board.weekly
            ),
        ),
        "entity": (
            ["definition", "entity", "met", "breached", "attainment_pct"],
            lambda: (
                [r["definition"].name, r["entity"], r["met"], r["breached"], _pct(r["attainment"])]
                for r in board.by_entity
            ),
        ),
        "breaches": (
            ["definition", "day", "breached"],
            lambda: ([r["definition"].name, r["day"], r["breached"]] for r in board.breaches_daily),
        ),
        "at_risk": (
            [
                "clock",
                "definition",
                "transaction",
                "entity",
                "started_at",
                "due_at",
                "remaining_seconds",
                "waiting_for",
            ],
            lambda: (_at_risk_row(c) for c in at_risk),
        ),
        "distribution": (
            ["definition", "from_pct_of_target", "clocks"],
            lambda: ([r["definition"].name, r["from_percent"], r["count"]] for r in board.distribution),
        ),
        "systems": (
            ["system", "breached", "share_pct"],
            lambda: ([r["system"], r["breached"], _pct(r["share"])] for r in board.worst_systems),
        ),
        "steps": (
            ["step", "breached", "share_pct"],
            lambda: ([r["step"], r["breached"], _pct(r["share"])] for r in board.worst_steps),
        ),
        "comparison": (
            [
                "definition",
                "this_month_pct",
                "this_month_closed",
                "last_month_pct",
                "last_month_closed",
                "change_points",
            ],
            lambda: (
                [
                    r["definition"].name,
                    _pct(r["current"]),
                    r["current_closed"],
                    _pct(r["previous"]),
                    r["previous_closed"],
                    _pct(r["change"]),
                ]
                for r in board.comparison
            ),
        ),
    }


# ---- ROI dashboard --------------------------------------------------------------------------------------------------


MILESTONE_TITLES = {
    "invoice_cycle": "Invoice cycle time (contract approved to invoice posted)",
    "payment_sync": "Payment sync lag (payment received to applied in the ERP)",
    "dso": "Days sales outstanding (invoice posted to payment received)",
}


@login_required
@permission_required(VIEW_DASHBOARDS, raise_exception=True)
def roi_dashboard(request: HttpRequest) -> HttpResponse:
    first, last, _, days = _period(request)
    board = selectors.roi_dashboard(first=first, last=last)
    if request.GET.get("format") == "csv":
        return _export(request, "roi", _roi_tables(board))
    a = board.assumptions
    context = {
        "board": board,
        "days": days,
        "can_edit": request.user.has_perm(EDIT_RULES),
        "a": a,
        "hours_chart": charts.hours_chart(
            board.hours,
            per_correlation=a["minutes_per_correlation"].value,
            per_classification=a["minutes_per_classification"].value,
        ),
        "touchless_chart": charts.touchless_chart(board.touchless),
        "exceptions_chart": charts.exceptions_chart(board.exceptions_by_category),
        "milestone_charts": [
            (metric, MILESTONE_TITLES[metric], charts.milestone_chart(rows, MILESTONE_TITLES[metric]), rows)
            for metric, rows in board.milestones.items()
        ],
        "evidence_chart": charts.evidence_chart(board.evidence, a["evidence_window_hours"].value),
    }
    return render(request, "slas/roi_dashboard.html", context)


def _roi_tables(board: selectors.RoiDashboard) -> Tables:
    tables = {
        "hours": (
            ["month", "auto_correlated", "auto_classified", "hours_avoided"],
            lambda: ([h["month"], h["auto_correlated"], h["auto_classified"], h["hours"]] for h in board.hours),
        ),
        "reconciliation": (
            ["reconciled_transactions", "minutes_each", "hours_avoided"],
            lambda: [
                [
                    board.reconciliation["reconciled"],
                    board.assumptions["minutes_per_reconciliation"].value,
                    board.reconciliation["hours"],
                ]
            ],
        ),
        "touchless": (
            ["process", "month", "completed", "touchless", "with_case", "touchless_pct"],
            lambda: (
                [r["process"], r["month"], r["completed"], r["touchless"], r["with_case"], _pct(r["rate"])]
                for r in board.touchless
            ),
        ),
        "exceptions_category": (
            ["category", "week", "occurrences"],
            lambda: ([r["category"], r["week"], r["count"]] for r in board.exceptions_by_category),
        ),
        "exceptions_system": (
            ["system", "category", "occurrences"],
            lambda: ([r["system"], r["category"], r["count"]] for r in board.exceptions_by_system),
        ),
        "resolve": (
            ["queue", "resolved", "mean_hours", "p90_hours"],
            lambda: ([r["queue"], r["resolved"], r["mean_hours"], r["p90_hours"]] for r in board.resolve),
        ),
        "replays": (
            ["month", "succeeded", "failed", "success_pct"],
            lambda: ([r["month"], r["succeeded"], r["failed"], _pct(r["rate"])] for r in board.replays),
        ),
        "evidence": (
            ["month", "captured", "within_window", "completeness_pct"],
            lambda: ([r["month"], r["captured"], r["within"], _pct(r["completeness"])] for r in board.evidence),
        ),
    }
    for metric, rows in board.milestones.items():
        tables[metric] = (
            ["month", "transactions", "p50_hours", "p95_hours", "mean_days"],
            lambda rows=rows: ([r["month"], r["count"], r["p50_hours"], r["p95_hours"], r["mean_days"]] for r in rows),
        )
    return tables


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def roi_assumption_edit(request: HttpRequest, key: str) -> HttpResponse:
    try:
        value = Decimal(request.POST.get("value", "").strip())
        version = int(request.POST.get("version", ""))
    except (InvalidOperation, ValueError):
        messages.error(request, "Enter a number.")
        return redirect(f"{reverse('roi-dashboard')}#assumption-{key}")
    try:
        saved = roi_assumption_set(key=key, value=value, actor=actor_for(request.user), version=version)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{saved.label}: now {saved.value} {saved.unit}.")
    return redirect(f"{reverse('roi-dashboard')}#assumption-{key}")


# ---- Drill-down lists -----------------------------------------------------------------------------------------------


DRILLS = {
    # name -> (filterset, permission, title, template columns, CSV header, CSV row)
    "clocks": (
        dashboard_filters.ClockDrillFilterSet,
        VIEW_TRANSACTIONS,
        "SLA clocks",
        ["clock", "definition", "transaction", "status", "entity", "started_at", "closed_at", "elapsed_s", "step"],
        lambda c: [
            c.pk,
            c.definition.name,
            c.txn_id,
            c.status,
            c.entity,
            c.started_at,
            c.met_at or c.breached_at,
            c.elapsed_seconds,
            c.waiting_for_step,
        ],
    ),
    "transactions": (
        dashboard_filters.TransactionDrillFilterSet,
        VIEW_TRANSACTIONS,
        "Transactions",
        ["transaction", "process", "status", "started_at", "last_event_at", "systems"],
        lambda t: [
            t.pk,
            t.process.slug if t.process else "",
            t.status,
            t.started_at,
            t.last_event_at,
            ", ".join(t.systems or []),
        ],
    ),
    "occurrences": (
        dashboard_filters.OccurrenceDrillFilterSet,
        VIEW_CASES,
        "Exception occurrences",
        ["occurrence", "case", "category", "system", "kind", "occurred_at", "transaction"],
        lambda o: [o.pk, o.case_id, o.category.slug, o.system, o.kind, o.occurred_at, o.txn_id],
    ),
    "cases": (
        dashboard_filters.CaseDrillFilterSet,
        VIEW_CASES,
        "Cases",
        ["case", "title", "queue", "category", "status", "first_seen", "resolved_at"],
        lambda c: [c.pk, c.title, c.queue.slug, c.category.slug, c.status, c.first_seen, c.resolved_at],
    ),
    "replays": (
        dashboard_filters.ReplayDrillFilterSet,
        VIEW_CASES,
        "Replays",
        ["replay", "case", "system", "status", "created_at", "outcome"],
        lambda r: [r.pk, r.case_id, r.case.system, r.status, r.created_at, r.outcome],
    ),
}


@login_required
def drill_list(request: HttpRequest, drill: str) -> HttpResponse:
    filterset_class, permission, title, header, row = DRILLS[drill]
    if not request.user.has_perm(permission):
        raise PermissionDenied
    filterset = filterset_class(request.GET, queryset=filterset_class._meta.model.objects.all())
    items = filterset.qs if filterset.is_valid() else filterset_class._meta.model.objects.none()
    if request.GET.get("format") == "csv":
        audit_record(
            actor=actor_for(request.user),
            action="dashboard.drill_exported",
            object_type=f"slas.drill.{drill}",
            after={"filters": {k: v for k, v in request.GET.items() if k != "format"}},
        )
        return csv_response(f"{drill}.csv", header, (row(i) for i in items.iterator()))
    total = items.count()
    query = request.GET.copy()
    query.pop("format", None)
    return render(
        request,
        "slas/drill_list.html",
        {
            "drill": drill,
            "title": title,
            "filter": filterset,
            "total": total,
            "header": header,
            "rows": [(i, row(i)) for i in items[:DRILL_PAGE]],
            "truncated": total > DRILL_PAGE,
            "query": query.urlencode(),
        },
    )
