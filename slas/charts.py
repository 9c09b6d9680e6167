"""Plotly figures of the SLA and ROI dashboards, built from dashboard selector output.

Every bar and point carries its drill-down URL in `customdata`; static/js/drilldown.js opens it on click.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable

import plotly.graph_objects as go

from console.lib.charts import STATUS_COLOURS, figure_html
from slas.kpis import RATIO_BUCKETS

HOVER_LINK = "<br><i>click to see them</i>"


def _series(rows: Iterable[dict], name_of: Callable[[dict], str]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[name_of(row)].append(row)
    return dict(sorted(grouped.items()))


def _empty(title: str) -> str:
    figure = go.Figure()
    figure.update_layout(
        title=title,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": "No data in this period", "showarrow": False, "font": {"size": 14}}],
    )
    return figure_html(figure, height=220)


def attainment_chart(weekly: list[dict]) -> str:
    """Attainment % per definition per week (lines); a point opens the week's closed clocks."""
    title = "SLA attainment per week"
    if not weekly:
        return _empty(title)
    figure = go.Figure()
    for name, rows in _series(weekly, lambda r: r["definition"].name).items():
        figure.add_scatter(
            x=[r["week"] for r in rows],
            y=[r["attainment"] for r in rows],
            mode="lines+markers",
            name=name,
            customdata=[r["url"] for r in rows],
            text=[f"{r['met']} met, {r['breached']} breached" for r in rows],
            hovertemplate="%{x|%d %b}: %{y:.1f} %<br>%{text}" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
    figure.update_layout(title=title, yaxis={"title": "% met", "range": [0, 105]}, xaxis={"title": "week of"})
    return figure_html(figure)


def breaches_chart(daily: list[dict]) -> str:
    """Breaches per day, stacked by definition; a bar opens that day's breached clocks."""
    title = "Breaches per day"
    if not daily:
        return _empty(title)
    figure = go.Figure()
    for name, rows in _series(daily, lambda r: r["definition"].name).items():
        figure.add_bar(
            x=[r["day"] for r in rows],
            y=[r["breached"] for r in rows],
            name=name,
            customdata=[r["url"] for r in rows],
            hovertemplate="%{x|%d %b}: %{y} breached" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
    figure.update_layout(title=title, barmode="stack", yaxis={"title": "breaches"})
    return figure_html(figure)


def distribution_chart(distribution: list[dict]) -> str:
    """Time to complete as a share of the target (10 % buckets), per definition; 100 % is the target."""
    title = "Time to complete against the target"
    if not distribution:
        return _empty(title)
    figure = go.Figure()
    labels = [f"{i * 10}%" if i < RATIO_BUCKETS else "≥200%" for i in range(RATIO_BUCKETS + 1)]
    for name, rows in _series(distribution, lambda r: r["definition"].name).items():
        figure.add_bar(
            x=[labels[r["bucket"]] for r in rows],
            y=[r["count"] for r in rows],
            name=name,
            customdata=[r["url"] for r in rows],
            hovertemplate="from %{x} of the target: %{y}" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
    figure.add_vline(x=labels[RATIO_BUCKETS // 2], line={"color": STATUS_COLOURS["error"], "dash": "dash"})
    figure.update_layout(
        title=title,
        barmode="stack",
        xaxis={"categoryorder": "array", "categoryarray": labels, "title": "elapsed business time / target"},
        yaxis={"title": "clocks"},
    )
    return figure_html(figure)


def contribution_chart(rows: list[dict], label: str, title: str) -> str:
    """Horizontal bars of breach contributors, biggest on top; a bar opens the breached clocks charged to it."""
    if not rows:
        return _empty(title)
    figure = go.Figure()
    ordered = list(reversed(rows))
    figure.add_bar(
        x=[r["breached"] for r in ordered],
        y=[r[label] for r in ordered],
        orientation="h",
        marker_color=STATUS_COLOURS["error"],
        customdata=[r["url"] for r in ordered],
        text=[f"{r['share']:.0f} %" for r in ordered],
        hovertemplate="%{y}: %{x} breaches (%{text})" + HOVER_LINK + "<extra></extra>",
        name="breaches",
    )
    figure.update_layout(title=title, showlegend=False, xaxis={"title": "breaches"})
    return figure_html(figure, height=max(220, 60 + 28 * len(rows)))


def hours_chart(hours: list[dict], *, per_correlation: object, per_classification: object) -> str:
    """Hours avoided per month: auto-correlated transactions and auto-classified exceptions, stacked."""
    title = "Manual reconciliation hours avoided"
    if not any(h["auto_correlated"] or h["auto_classified"] for h in hours):
        return _empty(title)
    figure = go.Figure()
    figure.add_bar(
        x=[h["month"] for h in hours],
        y=[float(h["auto_correlated"] * per_correlation / 60) for h in hours],
        name=f"auto-correlated x {per_correlation} min",
        customdata=[h["correlated_url"] for h in hours],
        text=[h["auto_correlated"] for h in hours],
        hovertemplate="%{x|%b %Y}: %{y:.1f} h (%{text} transactions)" + HOVER_LINK + "<extra></extra>",
    )
    figure.add_bar(
        x=[h["month"] for h in hours],
        y=[float(h["auto_classified"] * per_classification / 60) for h in hours],
        name=f"auto-classified x {per_classification} min",
        customdata=[h["classified_url"] for h in hours],
        text=[h["auto_classified"] for h in hours],
        hovertemplate="%{x|%b %Y}: %{y:.1f} h (%{text} exceptions)" + HOVER_LINK + "<extra></extra>",
    )
    figure.update_layout(title=title, barmode="stack", yaxis={"title": "hours"}, xaxis={"tickformat": "%b %Y"})
    return figure_html(figure)


def touchless_chart(rows: list[dict]) -> str:
    """Touchless rate per process and month (grouped bars); a bar opens the touchless transactions."""
    title = "Touchless rate (completed without any case)"
    if not rows:
        return _empty(title)
    figure = go.Figure()
    for process, items in _series(rows, lambda r: r["process"]).items():
        figure.add_bar(
            x=[r["month"] for r in items],
            y=[r["rate"] for r in items],
            name=process,
            customdata=[r["touchless_url"] for r in items],
            text=[f"{r['touchless']} of {r['completed']}" for r in items],
            hovertemplate="%{x|%b %Y}: %{y:.1f} % (%{text})" + HOVER_LINK + "<extra>" + process + "</extra>",
        )
    figure.update_layout(
        title=title, barmode="group", yaxis={"title": "%", "range": [0, 105]}, xaxis={"tickformat": "%b %Y"}
    )
    return figure_html(figure)


def exceptions_chart(rows: list[dict]) -> str:
    """Exception occurrences per week, stacked by taxonomy category."""
    title = "Exceptions per week by category"
    if not rows:
        return _empty(title)
    figure = go.Figure()
    for category, items in _series(rows, lambda r: r["category"]).items():
        figure.add_bar(
            x=[r["week"] for r in items],
            y=[r["count"] for r in items],
            name=category,
            customdata=[r["url"] for r in items],
            hovertemplate="week of %{x|%d %b}: %{y}" + HOVER_LINK + "<extra>" + category + "</extra>",
        )
    figure.update_layout(title=title, barmode="stack", yaxis={"title": "occurrences"})
    return figure_html(figure)


def milestone_chart(rows: list[dict], title: str) -> str:
    """p50 and p95 per month of a milestone duration, in hours; a point opens the transactions behind the month."""
    if not rows:
        return _empty(title)
    figure = go.Figure()
    for key, name in (("p50_hours", "p50"), ("p95_hours", "p95")):
        figure.add_scatter(
            x=[r["month"] for r in rows],
            y=[r[key] for r in rows],
            mode="lines+markers",
            name=name,
            customdata=[r["url"] for r in rows],
            text=[r["count"] for r in rows],
            hovertemplate="%{x|%b %Y}: %{y} h (%{text} transactions)" + HOVER_LINK + "<extra>" + name + "</extra>",
        )
    figure.update_layout(title=title, yaxis={"title": "hours"}, xaxis={"tickformat": "%b %Y"})
    return figure_html(figure, height=260)


def evidence_chart(rows: list[dict], window_hours: object) -> str:
    """Evidence captured within the window, % per month."""
    title = f"Close evidence completeness (within {window_hours} h)"
    if not rows:
        return _empty(title)
    figure = go.Figure()
    figure.add_bar(
        x=[r["month"] for r in rows],
        y=[r["completeness"] for r in rows],
        marker_color=STATUS_COLOURS["ok"],
        customdata=[r["url"] for r in rows],
        text=[f"{r['within']} of {r['captured']}" for r in rows],
        hovertemplate="%{x|%b %Y}: %{y:.1f} % (%{text})" + HOVER_LINK + "<extra></extra>",
        name="within window",
    )
    figure.update_layout(title=title, yaxis={"title": "%", "range": [0, 105]}, xaxis={"tickformat": "%b %Y"})
    return figure_html(figure, height=260)
