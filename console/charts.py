"""Figures for the console's own pages."""

from console.lib.charts import figure_html


def activity_chart(rows: list[dict]) -> str:
    data = []
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        data.append({"type": "bar", "x": [r["day"] for r in mine], "y": [r["count"] for r in mine], "name": family})
    return figure_html(data, {"barmode": "stack", "title": {"text": "Console activity (audit entries per day)"}})
