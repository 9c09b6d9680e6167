"""Selectors (reads only) behind the SLA and ROI dashboards and the home page: rollup rows folded into figures,
plus live lists. A neighbour of `slas.selectors` rather than part of it, so the two can grow apart without conflict.

Figures come from `DailyRollup` rows only (bounded by days x dimensions, never by history); the at-risk list and home
counts read live rows through indexes. Every figure carries the drill-down query that selects exactly its rows.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import Case
from slas import kpis
from slas.choices import ClockStatus
from slas.kpis import ROI_DEFAULTS
from slas.models import DailyRollup, RoiAssumption, RollupMetric, SlaClock, SlaDefinition

# Clocks counted in attainment: the ones closed as met or breached.
CLOSED = f"{ClockStatus.MET},{ClockStatus.BREACHED}"


def _tz() -> str:
    return settings.DASHBOARD_TIME_ZONE


@cache
def _path(name: str) -> str:
    return reverse(name)


def _link(name: str, **params: Any) -> str:
    # A dashboard builds hundreds of links: resolve each view's path once.
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    return f"{_path(name)}?{query}" if query else _path(name)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def period_params(first: date, last: date) -> dict[str, str]:
    """The UTC bounds of local days first..last as drill-down query parameters."""
    start, end = kpis.period_bounds(first, last, _tz())
    return {"since": _iso(start), "until": _iso(end)}


def rollup_rows(*, metric: str, first: date, last: date, **dims: Any) -> list[dict]:
    """Rollup rows of one metric for local days first..last, optionally narrowed by dimensions."""
    return list(
        DailyRollup.objects.filter(metric=metric, day__gte=first, day__lte=last, **dims).values(
            "day",
            "process",
            "entity",
            "definition_id",
            "system",
            "category",
            "queue",
            "step",
            "count",
            "good",
            "bad",
            "total_seconds",
            "samples",
        )
    )


# ---- ROI assumptions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumption:
    key: str
    label: str
    value: Decimal
    unit: str
    drives: str
    version: int  # 0: never edited (the default applies)


def roi_assumption_list() -> dict[str, Assumption]:
    """Every ROI assumption with its current value (the stored one, else the default)."""
    stored = {a.key: a for a in RoiAssumption.objects.all()}
    out = {}
    for key, (label, default, unit, drives) in ROI_DEFAULTS.items():
        row = stored.get(key)
        out[key] = Assumption(key, label, row.value if row else default, unit, drives, row.version if row else 0)
    return out


def roi_assumption_get(*, key: str) -> RoiAssumption | None:
    return RoiAssumption.objects.filter(key=key).first()


# ---- SLA dashboard --------------------------------------------------------------------------------------------------


@dataclass
class SlaDashboard:
    first: date
    last: date
    definitions: dict[int, SlaDefinition]
    weeks: list[date]
    weekly: list[dict] = field(default_factory=list)  # one per (definition, week)
    by_entity: list[dict] = field(default_factory=list)
    breaches_daily: list[dict] = field(default_factory=list)
    distribution: list[dict] = field(default_factory=list)  # one per (definition, bucket)
    worst_systems: list[dict] = field(default_factory=list)
    worst_steps: list[dict] = field(default_factory=list)
    comparison: list[dict] = field(default_factory=list)
    month: date | None = None
    previous_month: date | None = None


def _clock_link(definition: SlaDefinition, first: date, last: date, **params: Any) -> str:
    return _link("sla-drill-clocks", definition=definition.slug, **period_params(first, last), **params)


def sla_dashboard(*, first: date, last: date, today: date) -> SlaDashboard:
    """Attainment per definition per week and per entity, breaches per day, time-to-complete against the target,
    breach contributors, and this month against last month; each row carries its drill-down link."""
    definitions = {d.pk: d for d in SlaDefinition.objects.select_related("process").order_by("name")}
    weeks = sorted({kpis.week_start(first + timedelta(days=i)) for i in range((last - first).days + 1)})
    board = SlaDashboard(first=first, last=last, definitions=definitions, weeks=weeks)
    rows = [r for r in rollup_rows(metric=RollupMetric.SLA_CLOCKS, first=first, last=last)]

    weekly = kpis.fold(rows, lambda r: (r["definition_id"], kpis.week_start(r["day"])))
    for definition in definitions.values():
        for week in weeks:
            m = weekly.get((definition.pk, week))
            if m is None:
                continue
            lo, hi = max(week, first), min(week + timedelta(days=6), last)
            board.weekly.append(
                {
                    "definition": definition,
                    "week": week,
                    "met": m["good"],
                    "breached": m["bad"],
                    "attainment": kpis.attainment(m["good"], m["bad"]),
                    "url": _clock_link(definition, lo, hi, status=CLOSED),
                    "breached_url": _clock_link(definition, lo, hi, status=ClockStatus.BREACHED),
                }
            )

    by_entity = kpis.fold(rows, lambda r: (r["definition_id"], r["entity"]))
    for (definition_id, entity), m in sorted(by_entity.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        definition = definitions[definition_id]
        board.by_entity.append(
            {
                "definition": definition,
                "entity": entity,
                "met": m["good"],
                "breached": m["bad"],
                "attainment": kpis.attainment(m["good"], m["bad"]),
                "url": _clock_link(definition, first, last, status=CLOSED, entity=entity or "-"),
            }
        )

    daily = kpis.fold([r for r in rows if r["bad"]], lambda r: (r["definition_id"], r["day"]))
    for (definition_id, day), m in sorted(daily.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        definition = definitions[definition_id]
        board.breaches_daily.append(
            {
                "definition": definition,
                "day": day,
                "breached": m["bad"],
                "url": _clock_link(definition, day, day, status=ClockStatus.BREACHED),
            }
        )

    samples = kpis.fold(rows, lambda r: r["definition_id"])
    for definition_id, m in samples.items():
        definition = definitions[definition_id]
        target = int(definition.target.total_seconds())
        for index, n in enumerate(kpis.ratio_histogram(m["samples"], target)):
            if not n:
                continue
            low, high = kpis.ratio_bucket_range(index, target)
            board.distribution.append(
                {
                    "definition": definition,
                    "bucket": index,
                    "from_percent": index * 100 // (kpis.RATIO_BUCKETS // 2),
                    "count": n,
                    "url": _clock_link(
                        definition,
                        first,
                        last,
                        status=CLOSED,
                        elapsed_min=low,
                        elapsed_max="" if high is None else high,
                    ),
                }
            )

    breached = [r for r in rows if r["bad"]]
    by_system = kpis.fold(breached, lambda r: r["system"] or "-")
    for system, n, percent in kpis.contributions({k: m["bad"] for k, m in by_system.items()}):
        url = _link("sla-drill-clocks", status=ClockStatus.BREACHED, system=system, **period_params(first, last))
        board.worst_systems.append({"system": system, "breached": n, "share": percent, "url": url})
    by_step = kpis.fold(breached, lambda r: r["step"] or "-")
    for step, n, percent in kpis.contributions({k: m["bad"] for k, m in by_step.items()}):
        url = _link("sla-drill-clocks", status=ClockStatus.BREACHED, step=step, **period_params(first, last))
        board.worst_steps.append({"step": step, "breached": n, "share": percent, "url": url})

    board.month, board.previous_month = kpis.month_start(today), kpis.previous_month(today)
    this_end, previous_end = today, kpis.month_end(board.previous_month)
    current = kpis.fold(
        rollup_rows(metric=RollupMetric.SLA_CLOCKS, first=board.month, last=this_end), lambda r: r["definition_id"]
    )
    previous = kpis.fold(
        rollup_rows(metric=RollupMetric.SLA_CLOCKS, first=board.previous_month, last=previous_end),
        lambda r: r["definition_id"],
    )
    for definition in definitions.values():
        now_m, then_m = current.get(definition.pk), previous.get(definition.pk)
        if now_m is None and then_m is None:
            continue
        now_a = kpis.attainment(now_m["good"], now_m["bad"]) if now_m else None
        then_a = kpis.attainment(then_m["good"], then_m["bad"]) if then_m else None
        board.comparison.append(
            {
                "definition": definition,
                "current": now_a,
                "current_closed": (now_m["good"] + now_m["bad"]) if now_m else 0,
                "current_url": _clock_link(definition, board.month, this_end, status=CLOSED),
                "previous": then_a,
                "previous_closed": (then_m["good"] + then_m["bad"]) if then_m else 0,
                "previous_url": _clock_link(definition, board.previous_month, previous_end, status=CLOSED),
                "change": kpis.period_change(now_a, then_a),
            }
        )
    return board


AT_RISK_SORTS = {
    "remaining": ("remaining_seconds", "id"),
    "-remaining": ("-remaining_seconds", "-id"),
    "definition": ("definition__name", "remaining_seconds", "id"),
    "started": ("started_at", "id"),
    "-started": ("-started_at", "-id"),
}


def at_risk_clocks(*, sort: str = "remaining", limit: int = 50) -> list[SlaClock]:
    """Clocks at risk now (also paused ones that were at risk), least time left first by default.

    Live rows only: the partial live-clock index bounds the scan to running clocks, never history.
    """
    order = AT_RISK_SORTS.get(sort, AT_RISK_SORTS["remaining"])
    at_risk = Q(status=ClockStatus.AT_RISK) | Q(status=ClockStatus.PAUSED, at_risk_at__isnull=False)
    return list(SlaClock.objects.filter(at_risk).select_related("definition").order_by(*order)[:limit])


# ---- ROI dashboard --------------------------------------------------------------------------------------------------


def _months(first: date, last: date) -> list[date]:
    months, month = [], kpis.month_start(first)
    while month <= last:
        months.append(month)
        month = kpis.month_end(month) + timedelta(days=1)
    return months


def _month_span(month: date, first: date, last: date) -> tuple[date, date]:
    return max(month, first), min(kpis.month_end(month), last)


@dataclass
class RoiDashboard:
    first: date
    last: date
    assumptions: dict[str, Assumption]
    months: list[date]
    hours: list[dict] = field(default_factory=list)
    touchless: list[dict] = field(default_factory=list)
    exceptions_by_category: list[dict] = field(default_factory=list)
    exceptions_by_system: list[dict] = field(default_factory=list)
    resolve: list[dict] = field(default_factory=list)
    replays: list[dict] = field(default_factory=list)
    milestones: dict[str, list[dict]] = field(default_factory=dict)
    evidence: list[dict] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)


def roi_dashboard(*, first: date, last: date) -> RoiDashboard:
    """Hours avoided, touchless rate, exception volume, time to resolve, replay success, invoice cycle, payment sync
    lag, DSO and evidence completeness, per month of first..last; each row carries its drill-down link."""
    assumptions = roi_assumption_list()
    months = _months(first, last)
    board = RoiDashboard(first=first, last=last, assumptions=assumptions, months=months)
    month_of = lambda r: kpis.month_start(r["day"])  # noqa: E731

    started = kpis.fold(rollup_rows(metric=RollupMetric.TXN_STARTED, first=first, last=last), month_of)
    classified = kpis.fold(rollup_rows(metric=RollupMetric.EXCEPTIONS, first=first, last=last), month_of)
    per_correlation = assumptions["minutes_per_correlation"].value
    per_classification = assumptions["minutes_per_classification"].value
    for month in months:
        lo, hi = _month_span(month, first, last)
        correlated = started.get(month, {}).get("good", 0)
        auto_classified = classified.get(month, {}).get("good", 0)
        board.hours.append(
            {
                "month": month,
                "auto_correlated": correlated,
                "auto_classified": auto_classified,
                "correlation_hours": kpis.hours_avoided(
                    correlated, 0, minutes_per_correlation=per_correlation, minutes_per_classification=Decimal(0)
                ),
                "classification_hours": kpis.hours_avoided(
                    0,
                    auto_classified,
                    minutes_per_correlation=Decimal(0),
                    minutes_per_classification=per_classification,
                ),
                "hours": kpis.hours_avoided(
                    correlated,
                    auto_classified,
                    minutes_per_correlation=per_correlation,
                    minutes_per_classification=per_classification,
                ),
                "correlated_url": _link(
                    "roi-drill-transactions", started="true", multi_system="true", **period_params(lo, hi)
                ),
                "classified_url": _link("roi-drill-occurrences", classified="true", **period_params(lo, hi)),
            }
        )

    completed = kpis.fold(
        rollup_rows(metric=RollupMetric.TXN_COMPLETED, first=first, last=last), lambda r: (r["process"], month_of(r))
    )
    for (process, month), m in sorted(completed.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lo, hi = _month_span(month, first, last)
        base = {"completed": "true", "process": process or "-", **period_params(lo, hi)}
        board.touchless.append(
            {
                "process": process or "-",
                "month": month,
                "completed": m["count"],
                "touchless": m["good"],
                "with_case": m["bad"],
                "rate": kpis.touchless_rate(m["count"], m["good"]),
                "url": _link("roi-drill-transactions", **base),
                "touchless_url": _link("roi-drill-transactions", with_case="false", **base),
                "with_case_url": _link("roi-drill-transactions", with_case="true", **base),
            }
        )

    occurrence_rows = rollup_rows(metric=RollupMetric.EXCEPTIONS, first=first, last=last)
    by_category = kpis.fold(occurrence_rows, lambda r: (r["category"], kpis.week_start(r["day"])))
    for (category, week), m in sorted(by_category.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lo, hi = max(week, first), min(week + timedelta(days=6), last)
        board.exceptions_by_category.append(
            {
                "category": category,
                "week": week,
                "count": m["count"],
                "url": _link("roi-drill-occurrences", category=category, **period_params(lo, hi)),
            }
        )
    by_system = kpis.fold(occurrence_rows, lambda r: (r["system"], r["category"]))
    for (system, category), m in sorted(by_system.items(), key=lambda kv: (-kv[1]["count"], kv[0])):
        board.exceptions_by_system.append(
            {
                "system": system,
                "category": category,
                "count": m["count"],
                "url": _link("roi-drill-occurrences", system=system, category=category, **period_params(first, last)),
            }
        )

    resolved = kpis.fold(rollup_rows(metric=RollupMetric.CASES_RESOLVED, first=first, last=last), lambda r: r["queue"])
    for queue, m in sorted(resolved.items()):
        board.resolve.append(
            {
                "queue": queue,
                "resolved": m["count"],
                "mean_hours": _hours(kpis.mean(m["samples"])),
                "p90_hours": _hours(kpis.percentile(m["samples"], 90)),
                "url": _link("roi-drill-cases", queue=queue, resolved="true", **period_params(first, last)),
            }
        )

    replays = kpis.fold(rollup_rows(metric=RollupMetric.REPLAYS, first=first, last=last), month_of)
    for month, m in sorted(replays.items()):
        lo, hi = _month_span(month, first, last)
        board.replays.append(
            {
                "month": month,
                "succeeded": m["good"],
                "failed": m["bad"],
                "rate": kpis.success_rate(m["good"], m["bad"]),
                "url": _link("roi-drill-replays", **period_params(lo, hi)),
            }
        )

    for metric in (RollupMetric.INVOICE_CYCLE, RollupMetric.PAYMENT_SYNC, RollupMetric.DSO):
        folded = kpis.fold(rollup_rows(metric=metric, first=first, last=last), month_of)
        board.milestones[metric] = []
        for month, m in sorted(folded.items()):
            lo, hi = _month_span(month, first, last)
            board.milestones[metric].append(
                {
                    "month": month,
                    "count": m["count"],
                    "p50_hours": _hours(kpis.percentile(m["samples"], 50)),
                    "p95_hours": _hours(kpis.percentile(m["samples"], 95)),
                    "mean_days": _days(kpis.mean(m["samples"])),
                    "url": _link("roi-drill-transactions", milestone=metric, **period_params(lo, hi)),
                }
            )

    window = float(assumptions["evidence_window_hours"].value) * 3600
    evidence = kpis.fold(rollup_rows(metric=RollupMetric.EVIDENCE, first=first, last=last), month_of)
    for month, m in sorted(evidence.items()):
        lo, hi = _month_span(month, first, last)
        board.evidence.append(
            {
                "month": month,
                "captured": m["count"],
                "within": sum(1 for s in m["samples"] if s <= window),
                "completeness": kpis.within_share(m["samples"], window),
                "url": _link("roi-drill-transactions", milestone=RollupMetric.EVIDENCE, **period_params(lo, hi)),
            }
        )
    board.totals = {
        # From the totals, not a sum of rounded months.
        "hours": kpis.hours_avoided(
            sum(h["auto_correlated"] for h in board.hours),
            sum(h["auto_classified"] for h in board.hours),
            minutes_per_correlation=per_correlation,
            minutes_per_classification=per_classification,
        ),
        "completed": sum(t["completed"] for t in board.touchless),
        "touchless": sum(t["touchless"] for t in board.touchless),
    }
    board.totals["touchless_rate"] = kpis.touchless_rate(board.totals["completed"], board.totals["touchless"])
    return board


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 86400, 1)


# ---- Home page ------------------------------------------------------------------------------------------------------


def sla_attainment_summary(*, first: date, last: date) -> dict[str, Any]:
    """Overall attainment over local days first..last (home page), with its drill-down link."""
    m = kpis.fold(rollup_rows(metric=RollupMetric.SLA_CLOCKS, first=first, last=last), lambda r: "all").get("all")
    met, breached = (m["good"], m["bad"]) if m else (0, 0)
    return {
        "met": met,
        "breached": breached,
        "attainment": kpis.attainment(met, breached),
        "url": _link(
            "sla-drill-clocks", status=f"{ClockStatus.MET},{ClockStatus.BREACHED}", **period_params(first, last)
        ),
    }


def worst_breaches(*, limit: int = 3) -> list[SlaClock]:
    """The breached clocks furthest past their target, among those breached in the last 30 days."""
    return list(
        SlaClock.objects.filter(status=ClockStatus.BREACHED)
        .filter(Q(breached_at__gte=_days_ago(30)))
        .select_related("definition")
        .order_by("remaining_seconds", "id")[:limit]
    )


def _days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


def open_control_cases() -> QuerySet[Case]:
    """Active cases of the `control` category, the compliance home page's count."""
    return Case.objects.filter(category__slug="control", status__in=ACTIVE_STATUSES, merged_into__isnull=True)
