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

import orjson
from django.conf import settings
from django.db.models import DateField, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast, TruncMonth, TruncWeek
from django.urls import reverse
from django.utils import timezone

from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import Case
from exceptions.selectors import reconciled_transactions_in
from slas import kpis
from slas.choices import ClockStatus
from slas.kpis import ROI_DEFAULTS
from slas.models import AT_RISK_NOW, DailyRollup, RoiAssumption, RollupMetric, SlaClock, SlaDefinition

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


PERIODS = {"month": TruncMonth, "week": TruncWeek}
MEASURES = ("count", "good", "bad", "total_seconds")


def rollup_totals(
    *, metric: str, first: date, last: date, by: tuple[str, ...] = (), period: str = "", **dims: Any
) -> dict[tuple, dict]:
    """The summed measures of one metric over local days first..last, per `by` dimensions and (optionally) per
    `period` ("day", "week": the ISO Monday, or "month": its first day), keyed by (*by values, period).

    Summed by the database: a year of one metric is thousands of rollup rows but only a few dozen groups, and the
    page should pay for the groups. Samples are left out (see `rollup_samples`).
    """
    rows = DailyRollup.objects.filter(metric=metric, day__gte=first, day__lte=last, **dims)
    names = list(by)
    if period == "day":
        names.append("day")
    elif period:
        rows = rows.annotate(period=PERIODS[period]("day", output_field=DateField()))
        names.append("period")
    sums = {f"sum_{m}": Sum(m) for m in MEASURES}
    if not names:  # values() with no names would group by every column
        total = rows.aggregate(**sums)
        return {(): {m: int(total[f"sum_{m}"] or 0) for m in MEASURES}} if total["sum_count"] is not None else {}
    grouped = rows.values(*names).annotate(**sums).order_by()
    return {tuple(row[name] for name in names): {m: int(row[f"sum_{m}"] or 0) for m in MEASURES} for row in grouped}


def rollup_samples(
    *, metric: str, first: date, last: date, by: tuple[str, ...] = (), period: str = "", **dims: Any
) -> dict[tuple, list]:
    """The duration samples of one metric over local days first..last, concatenated per `by` and `period` (keyed as
    in `rollup_totals`); only rows that hold samples are read."""
    rows = DailyRollup.objects.filter(metric=metric, day__gte=first, day__lte=last, **dims).exclude(samples=[])
    # A year of samples is thousands of rows: their JSON text decoded by orjson costs a fifth of JSONField's
    # per-row converter.
    rows = rows.annotate(samples_text=Cast("samples", TextField()))
    out: dict[tuple, list] = {}
    for *values, day, samples in rows.values_list(*by, "day", "samples_text"):
        key = (*values, PERIOD_START[period](day)) if period else tuple(values)
        out.setdefault(key, []).extend(orjson.loads(samples))
    return out


PERIOD_START = {"day": lambda day: day, "week": kpis.week_start, "month": kpis.month_start}


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
    span = {"metric": RollupMetric.SLA_CLOCKS, "first": first, "last": last}

    weekly = rollup_totals(**span, by=("definition_id",), period="week")
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

    by_entity = rollup_totals(**span, by=("definition_id", "entity"))
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

    daily = rollup_totals(**span, by=("definition_id",), period="day", bad__gt=0)
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

    for (definition_id,), samples in rollup_samples(**span, by=("definition_id",)).items():
        definition = definitions[definition_id]
        target = int(definition.target.total_seconds())
        for index, n in enumerate(kpis.ratio_histogram(samples, target)):
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

    by_system = _breaches_by(rollup_totals(**span, by=("system",), bad__gt=0))
    for system, n, percent in kpis.contributions(by_system):
        url = _link("sla-drill-clocks", status=ClockStatus.BREACHED, system=system, **period_params(first, last))
        board.worst_systems.append({"system": system, "breached": n, "share": percent, "url": url})
    by_step = _breaches_by(rollup_totals(**span, by=("step",), bad__gt=0))
    for step, n, percent in kpis.contributions(by_step):
        url = _link("sla-drill-clocks", status=ClockStatus.BREACHED, step=step, **period_params(first, last))
        board.worst_steps.append({"step": step, "breached": n, "share": percent, "url": url})

    board.month, board.previous_month = kpis.month_start(today), kpis.previous_month(today)
    this_end, previous_end = today, kpis.month_end(board.previous_month)
    current = rollup_totals(metric=RollupMetric.SLA_CLOCKS, first=board.month, last=this_end, by=("definition_id",))
    previous = rollup_totals(
        metric=RollupMetric.SLA_CLOCKS, first=board.previous_month, last=previous_end, by=("definition_id",)
    )
    for definition in definitions.values():
        now_m, then_m = current.get((definition.pk,)), previous.get((definition.pk,))
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


def _breaches_by(totals: dict[tuple, dict]) -> dict[str, int]:
    # Rows without the dimension are shown (and drilled into) as "-".
    out: dict[str, int] = {}
    for (name,), m in totals.items():
        out[name or "-"] = out.get(name or "-", 0) + m["bad"]
    return out


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
    return list(SlaClock.objects.filter(AT_RISK_NOW).select_related("definition").order_by(*order)[:limit])


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
    reconciliation: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)


def roi_dashboard(*, first: date, last: date) -> RoiDashboard:
    """Hours avoided, touchless rate, exception volume, time to resolve, replay success, invoice cycle, payment sync
    lag, DSO and evidence completeness, per month of first..last; each row carries its drill-down link."""
    assumptions = roi_assumption_list()
    months = _months(first, last)
    board = RoiDashboard(first=first, last=last, assumptions=assumptions, months=months)
    span = {"first": first, "last": last}

    started = rollup_totals(metric=RollupMetric.TXN_STARTED, **span, period="month")
    classified = rollup_totals(metric=RollupMetric.EXCEPTIONS, **span, period="month")
    per_correlation = assumptions["minutes_per_correlation"].value
    per_classification = assumptions["minutes_per_classification"].value
    for month in months:
        lo, hi = _month_span(month, first, last)
        correlated = started.get((month,), {}).get("good", 0)
        auto_classified = classified.get((month,), {}).get("good", 0)
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

    completed = rollup_totals(metric=RollupMetric.TXN_COMPLETED, **span, by=("process",), period="month")
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

    by_category = rollup_totals(metric=RollupMetric.EXCEPTIONS, **span, by=("category",), period="week")
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
    by_system = rollup_totals(metric=RollupMetric.EXCEPTIONS, **span, by=("system", "category"))
    for (system, category), m in sorted(by_system.items(), key=lambda kv: (-kv[1]["count"], kv[0])):
        board.exceptions_by_system.append(
            {
                "system": system,
                "category": category,
                "count": m["count"],
                "url": _link("roi-drill-occurrences", system=system, category=category, **period_params(first, last)),
            }
        )

    resolved = rollup_totals(metric=RollupMetric.CASES_RESOLVED, **span, by=("queue",))
    resolve_times = rollup_samples(metric=RollupMetric.CASES_RESOLVED, **span, by=("queue",))
    for (queue,), m in sorted(resolved.items()):
        samples = resolve_times.get((queue,), [])
        board.resolve.append(
            {
                "queue": queue,
                "resolved": m["count"],
                "mean_hours": _hours(kpis.mean(samples)),
                "p90_hours": _hours(kpis.percentile(samples, 90)),
                "url": _link("roi-drill-cases", queue=queue, resolved="true", **period_params(first, last)),
            }
        )

    replays = rollup_totals(metric=RollupMetric.REPLAYS, **span, period="month")
    for (month,), m in sorted(replays.items()):
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
        totals = rollup_totals(metric=metric, **span, period="month")
        durations = rollup_samples(metric=metric, **span, period="month")
        board.milestones[metric] = []
        for (month,), m in sorted(totals.items()):
            lo, hi = _month_span(month, first, last)
            samples = durations.get((month,), [])
            board.milestones[metric].append(
                {
                    "month": month,
                    "count": m["count"],
                    "p50_hours": _hours(kpis.percentile(samples, 50)),
                    "p95_hours": _hours(kpis.percentile(samples, 95)),
                    "mean_days": _days(kpis.mean(samples)),
                    "url": _link("roi-drill-transactions", milestone=metric, **period_params(lo, hi)),
                }
            )

    window = float(assumptions["evidence_window_hours"].value) * 3600
    evidence = rollup_totals(metric=RollupMetric.EVIDENCE, **span, period="month")
    delays = rollup_samples(metric=RollupMetric.EVIDENCE, **span, period="month")
    for (month,), m in sorted(evidence.items()):
        lo, hi = _month_span(month, first, last)
        samples = delays.get((month,), [])
        board.evidence.append(
            {
                "month": month,
                "captured": m["count"],
                "within": sum(1 for s in samples if s <= window),
                "completeness": kpis.within_share(samples, window),
                "url": _link("roi-drill-transactions", milestone=RollupMetric.EVIDENCE, **period_params(lo, hi)),
            }
        )
    reconciled = reconciled_transactions_in(first=first, last=last)
    per_reconciliation = assumptions["minutes_per_reconciliation"].value
    board.reconciliation = {
        "reconciled": reconciled,
        "hours": kpis.reconciliation_hours_avoided(reconciled, minutes_per_reconciliation=per_reconciliation),
        "url": _link("reconciliation", days=(last - first).days + 1),
    }
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
    m = rollup_totals(metric=RollupMetric.SLA_CLOCKS, first=first, last=last).get(())
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
