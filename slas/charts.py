"""Plotly figures of the SLA and ROI dashboards, built from dashboard selector output.

Figures are plain trace and layout dicts (`figure_html`): plotly.py's validating objects cost about 100 ms each,
more than a whole dashboard may take. Every bar and point carries its drill-down URL in `customdata`;
static/js/drilldown.js opens it on click.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable

from console.lib.charts import STATUS_COLOURS, figure_html
from slas.kpis import RATIO_BUCKETS

# No <i> or <b> in figure texts: plotly.js draws them as style attributes, which the Content-Security-Policy refuses.
HOVER_LINK = "<br>click to see them"


def _series(rows: Iterable[dict], name_of: Callable[[dict], str]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[name_of(row)].append(row)
    return dict(sorted(grouped.items()))


def number(value: object) -> str:
    """12.00 -> "12", 7.50 -> "7.5": assumption values as people write them."""
    text = f"{value:f}" if not isinstance(value, str) else value
    return text.rstrip("0").rstrip(".") if "." in text else text


def _empty(title: str) -> str:
    layout = {
        "title": {"text": title},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "annotations": [{"text": "No data in this period", "showarrow": False, "font": {"size": 14}}],
    }
    return figure_html([], layout, height=220)


def _bar(x: list, y: list, name: str, urls: list[str], hover: str, **extra: object) -> dict:
    return {"type": "bar", "x": x, "y": y, "name": name, "customdata": urls, "hovertemplate": hover, **extra}


def attainment_chart(weekly: list[dict]) -> str:
    """Attainment % per definition per week (lines); a point opens the week's closed clocks."""
    title = "SLA attainment per week"
    if not weekly:
        return _empty(title)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [r["week"] for r in rows],
            "y": [r["attainment"] for r in rows],
            "name": name,
            "customdata": [r["url"] for r in rows],
            "text": [f"{r['met']} met, {r['breached']} breached" for r in rows],
            "hovertemplate": "%{x|%d %b}: %{y:.1f} %<br>%{text}" + HOVER_LINK + "<extra>" + name + "</extra>",
        }
        for name, rows in _series(weekly, lambda r: r["definition"].name).items()
    ]
    layout = {"title": {"text": title}, "yaxis": {"title": {"text": "% met"}, "range": [0, 105]}}
    return figure_html(data, {**layout, "xaxis": {"title": {"text": "week of"}}})


def breaches_chart(daily: list[dict]) -> str:
    """Breaches per day, stacked by definition; a bar opens that day's breached clocks."""
    title = "Breaches per day"
    if not daily:
        return _empty(title)
    data = [
        _bar(
            [r["day"] for r in rows],
            [r["breached"] for r in rows],
            name,
            [r["url"] for r in rows],
            "%{x|%d %b}: %{y} breached" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
        for name, rows in _series(daily, lambda r: r["definition"].name).items()
    ]
    return figure_html(data, {"title": {"text": title}, "barmode": "stack", "yaxis": {"title": {"text": "breaches"}}})


def distribution_chart(distribution: list[dict]) -> str:
    """Time to complete as a share of the target (10 % buckets), per definition; 100 % is the target."""
    title = "Time to complete against the target"
    if not distribution:
        return _empty(title)
    labels = [f"{i * 10}%" if i < RATIO_BUCKETS else "≥200%" for i in range(RATIO_BUCKETS + 1)]
    data = [
        _bar(
            [labels[r["bucket"]] for r in rows],
            [r["count"] for r in rows],
            name,
            [r["url"] for r in rows],
            "from %{x} of the target: %{y}" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
        for name, rows in _series(distribution, lambda r: r["definition"].name).items()
    ]
    target = labels[RATIO_BUCKETS // 2]
    layout = {
        "title": {"text": title},
        "barmode": "stack",
        "xaxis": {
            "categoryorder": "array",
            "categoryarray": labels,
            "title": {"text": "elapsed business time / target"},
        },
        "yaxis": {"title": {"text": "clocks"}},
        "shapes": [
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": target,
                "x1": target,
                "y0": 0,
                "y1": 1,
                "line": {"color": STATUS_COLOURS["error"], "dash": "dash"},
            }
        ],
    }
    return figure_html(data, layout)


def contribution_chart(rows: list[dict], label: str, title: str) -> str:
    """Horizontal bars of breach contributors, biggest on top; a bar opens the breached clocks charged to it."""
    if not rows:
        return _empty(title)
    ordered = list(reversed(rows))
    data = [
        _bar(
            [r["breached"] for r in ordered],
            [r[label] for r in ordered],
            "breaches",
            [r["url"] for r in ordered],
            "%{y}: %{x} breaches (%{text})" + HOVER_LINK + "<extra></extra>",
            orientation="h",
            marker={"color": STATUS_COLOURS["error"]},
            text=[f"{r['share']:.0f} %" for r in ordered],
        )
    ]
    layout = {"title": {"text": title}, "showlegend": False, "xaxis": {"title": {"text": "breaches"}}}
    return figure_html(data, layout, height=max(220, 60 + 28 * len(rows)))


MONTHS = {"tickformat": "%b %Y"}


def hours_chart(hours: list[dict], *, per_correlation: object, per_classification: object) -> str:
    """Hours avoided per month: auto-correlated transactions and auto-classified exceptions, stacked."""
    title = "Manual reconciliation hours avoided"
    if not any(h["auto_correlated"] or h["auto_classified"] for h in hours):
        return _empty(title)
    months = [h["month"] for h in hours]
    data = [
        _bar(
            months,
            [float(h["auto_correlated"] * per_correlation / 60) for h in hours],
            f"auto-correlated x {number(per_correlation)} min",
            [h["correlated_url"] for h in hours],
            "%{x|%b %Y}: %{y:.1f} h (%{text} transactions)" + HOVER_LINK + "<extra></extra>",
            text=[h["auto_correlated"] for h in hours],
        ),
        _bar(
            months,
            [float(h["auto_classified"] * per_classification / 60) for h in hours],
            f"auto-classified x {number(per_classification)} min",
            [h["classified_url"] for h in hours],
            "%{x|%b %Y}: %{y:.1f} h (%{text} exceptions)" + HOVER_LINK + "<extra></extra>",
            text=[h["auto_classified"] for h in hours],
        ),
    ]
    layout = {"title": {"text": title}, "barmode": "stack", "yaxis": {"title": {"text": "hours"}}, "xaxis": MONTHS}
    return figure_html(data, layout)


def touchless_chart(rows: list[dict]) -> str:
    """Touchless rate per process and month (grouped bars); a bar opens the touchless transactions."""
    title = "Touchless rate (completed without any case)"
    if not rows:
        return _empty(title)
    data = [
        _bar(
            [r["month"] for r in items],
            [r["rate"] for r in items],
            process,
            [r["touchless_url"] for r in items],
            "%{x|%b %Y}: %{y:.1f} % (%{text})" + HOVER_LINK + "<extra>" + process + "</extra>",
            text=[f"{r['touchless']} of {r['completed']}" for r in items],
        )
        for process, items in _series(rows, lambda r: r["process"]).items()
    ]
    layout = {"title": {"text": title}, "barmode": "group", "yaxis": {"title": {"text": "%"}, "range": [0, 105]}}
    return figure_html(data, {**layout, "xaxis": MONTHS})


def exceptions_chart(rows: list[dict]) -> str:
    """Exception occurrences per week, stacked by taxonomy category."""
    title = "Exceptions per week by category"
    if not rows:
        return _empty(title)
    data = [
        _bar(
            [r["week"] for r in items],
            [r["count"] for r in items],
            category,
            [r["url"] for r in items],
            "week of %{x|%d %b}: %{y}" + HOVER_LINK + "<extra>" + category + "</extra>",
        )
        for category, items in _series(rows, lambda r: r["category"]).items()
    ]
    layout = {"title": {"text": title}, "barmode": "stack", "yaxis": {"title": {"text": "occurrences"}}}
    return figure_html(data, layout)


def milestone_chart(rows: list[dict], title: str) -> str:
    """p50 and p95 per month of a milestone duration, in hours; a point opens the transactions behind the month."""
    if not rows:
        return _empty(title)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [r["month"] for r in rows],
            "y": [r[key] for r in rows],
            "name": name,
            "customdata": [r["url"] for r in rows],
            "text": [r["count"] for r in rows],
            "hovertemplate": "%{x|%b %Y}: %{y} h (%{text} transactions)" + HOVER_LINK + "<extra>" + name + "</extra>",
        }
        for key, name in (("p50_hours", "p50"), ("p95_hours", "p95"))
    ]
    layout = {"title": {"text": title}, "yaxis": {"title": {"text": "hours"}}, "xaxis": MONTHS}
    return figure_html(data, layout, height=260)


def evidence_chart(rows: list[dict], window_hours: object) -> str:
    """Evidence captured within the window, % per month."""
    title = f"Close evidence completeness (within {number(window_hours)} h)"
    if not rows:
        return _empty(title)
    data = [
        _bar(
            [r["month"] for r in rows],
            [r["completeness"] for r in rows],
            "within window",
            [r["url"] for r in rows],
            "%{x|%b %Y}: %{y:.1f} % (%{text})" + HOVER_LINK + "<extra></extra>",
            marker={"color": STATUS_COLOURS["ok"]},
            text=[f"{r['within']} of {r['captured']}" for r in rows],
        )
    ]
    layout = {"title": {"text": title}, "yaxis": {"title": {"text": "%"}, "range": [0, 105]}, "xaxis": MONTHS}
    return figure_html(data, layout, height=260)
