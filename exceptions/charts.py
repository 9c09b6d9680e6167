"""Plotly figures of the reconciliation page, built from its selector output (plain dicts, as slas/charts.py does).

Every bar and point carries the drill-down URL of the mismatched results it counts in `customdata`; static/js/
drilldown.js opens it on click.
"""

from console.lib.charts import STATUS_COLOURS, figure_html

HOVER_LINK = "<br>click to see the mismatches"
TITLES = {
    "rule": "Match rate by rule",
    "system_pair": "Match rate by system pair",
    "entity": "Match rate by legal entity",
    "week": "Match rate by week",
}


def _empty(title: str) -> str:
    layout = {
        "title": {"text": title},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "annotations": [{"text": "No reconciliation result in this period", "showarrow": False, "font": {"size": 14}}],
    }
    return figure_html([], layout, height=220)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(100 * rate, 1)


def match_rate_chart(rows: list[dict], by: str) -> str:
    """Match rate (matched of matched + mismatched) per group: bars, or a line per week; a click opens the group's
    mismatches."""
    title = TITLES[by]
    rows = [r for r in rows if r["match_rate"] is not None]
    if not rows:
        return _empty(title)
    text = [f"{r['matched']} matched, {r['mismatched']} mismatched" for r in rows]
    trace: dict = {
        "x": [r["label"] for r in rows],
        "y": [_percent(r["match_rate"]) for r in rows],
        "customdata": [r["links"]["mismatched"] for r in rows],
        "text": text,
        "hovertemplate": "%{x}: %{y:.1f} % matched<br>%{text}" + HOVER_LINK + "<extra></extra>",
        "name": "match rate",
    }
    if by == "week":
        trace |= {"type": "scatter", "mode": "lines+markers", "line": {"color": STATUS_COLOURS["info"]}}
    else:
        trace |= {"type": "bar", "marker": {"color": STATUS_COLOURS["ok"]}, "textposition": "none"}
    layout = {
        "title": {"text": title},
        "yaxis": {"title": {"text": "% matched"}, "range": [0, 105]},
        "xaxis": {"type": "category", "automargin": True},
        "showlegend": False,
    }
    return figure_html([trace], layout, height=300)
