"""Figures for the console's own pages."""

import plotly.graph_objects as go

from console.lib.charts import figure_html


def activity_chart(rows: list[dict]) -> str:
    figure = go.Figure()
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        figure.add_bar(x=[r["day"] for r in mine], y=[r["count"] for r in mine], name=family)
    figure.update_layout(barmode="stack", title="Console activity (audit entries per day)")
    return figure_html(figure)
