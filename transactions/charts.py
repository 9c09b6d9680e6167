"""Plotly figures of the transactions app, built from selector output."""

from datetime import timedelta

from console.lib.charts import STATUS_COLOURS, figure_html

STATUS_ORDER = ["in_flight", "stalled", "failed", "recovered", "completed"]
STATUS_CHART_COLOURS = {
    "in_flight": STATUS_COLOURS["info"],
    "stalled": STATUS_COLOURS["warning"],
    "failed": STATUS_COLOURS["error"],
    "recovered": "#66a80f",  # a lighter green: finished, but someone or something had to retry
    "completed": STATUS_COLOURS["ok"],
}
EXPECTED_LANE = "expected next step"


def _hover(item: dict) -> str:
    parts = [
        item["kind"],  # plain: plotly.js draws <b> as a style attribute, which the Content-Security-Policy refuses
        f"{item['system']} · {item['status']}",
        item["start"].strftime("%Y-%m-%d %H:%M:%S"),
    ]
    if item.get("duration_ms") is not None:
        parts.append(f"{item['duration_ms']} ms")
    if item.get("error"):
        parts.append(f"error: {(item['error'].get('code') or '')} {(item['error'].get('message') or '')[:120]}")
    if item.get("approval"):
        parts.append("approval: {actor} {decision}".format(**{"actor": "", "decision": "", **item["approval"]}))
    if item.get("critical"):
        parts.append("on the critical path")
    return "<br>".join(parts)


def timeline_chart(timeline: dict) -> str:
    """Gantt across systems: one lane per system, spans as bars, point events as markers, errors red, approvals ★."""
    items = timeline["items"]
    data: list[dict] = []
    shapes: list[dict] = []
    spans = [i for i in items if i["is_span"]]
    points = [i for i in items if not i["is_span"]]
    if spans:
        data.append(
            {
                "type": "bar",
                "base": [i["start"] for i in spans],
                "x": [max(i["duration_ms"], 1) for i in spans],
                "y": [i["system"] for i in spans],
                "orientation": "h",
                "marker": {
                    "color": [STATUS_COLOURS["error" if i["status"] == "error" else "ok"] for i in spans],
                    "line": {"color": ["#212529" if i["critical"] else "rgba(0,0,0,0)" for i in spans], "width": 2},
                },
                "customdata": [i["id"] for i in spans],
                "hovertext": [_hover(i) for i in spans],
                "hoverinfo": "text",
                "name": "spans",
            }
        )
    if points:
        data.append(
            {
                "type": "scatter",
                "x": [i["start"] for i in points],
                "y": [i["system"] for i in points],
                "mode": "markers",
                "marker": {
                    "size": [14 if i.get("approval") else 10 for i in points],
                    "symbol": ["star" if i.get("approval") else "circle" for i in points],
                    "color": [STATUS_COLOURS["error" if i["status"] == "error" else "ok"] for i in points],
                    "line": {"color": ["#212529" if i["critical"] else "#ffffff" for i in points], "width": 2},
                },
                "customdata": [i["id"] for i in points],
                "hovertext": [_hover(i) for i in points],
                "hoverinfo": "text",
                "name": "events",
            }
        )
    for gap in timeline["gaps"]:
        shapes.append(
            {
                "type": "line",
                "x0": gap["start"],
                "x1": gap["end"],
                "y0": gap["from_system"],
                "y1": gap["to_system"],
                "line": {"color": STATUS_COLOURS["muted"], "dash": "dot", "width": 1},
            }
        )
    expected = timeline.get("expected_next")
    lanes = list(timeline["lanes"])
    if expected and expected.get("due_at"):
        lane = expected["system"] or EXPECTED_LANE
        if lane not in lanes:
            lanes.append(lane)
        data.append(
            {
                "type": "scatter",
                "x": [expected["due_at"]],
                "y": [lane],
                "mode": "markers+text",
                "marker": {"symbol": "x-open", "size": 14, "color": STATUS_COLOURS["warning"]},
                "text": [f"expected: {expected['name']}" + (" (overdue)" if expected["overdue"] else "")],
                "textposition": "top center",
                "hovertext": [
                    f"expected by {expected['due_at']:%Y-%m-%d %H:%M}: {expected['name']} ({expected['kind']})"
                ],
                "hoverinfo": "text",
                "name": "expected next step",
            }
        )
    layout = {
        "barmode": "overlay",
        "showlegend": False,
        "shapes": shapes,
        "xaxis": {"type": "date", "title": None},
        "yaxis": {"categoryorder": "array", "categoryarray": list(reversed(lanes)), "title": None},
    }
    return figure_html(data, layout, height=max(220, 60 + 45 * len(lanes)))


def process_status_chart(rows: list[dict]) -> str:
    """Transactions per process, stacked by status (home dashboard)."""
    processes = sorted({r["process__name"] or "unrecognised" for r in rows})
    data = []
    for status in STATUS_ORDER:
        counts = {(r["process__name"] or "unrecognised"): r["n"] for r in rows if r["status"] == status}
        data.append(
            {
                "type": "bar",
                "x": processes,
                "y": [counts.get(p, 0) for p in processes],
                "name": status.replace("_", " "),
                "marker": {"color": STATUS_CHART_COLOURS[status]},
            }
        )
    return figure_html(data, {"barmode": "stack", "title": {"text": "Transactions by process and status"}})


def duration_label(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    delta = timedelta(milliseconds=milliseconds)
    if delta < timedelta(seconds=1):
        return f"{milliseconds} ms"
    if delta < timedelta(minutes=1):
        return f"{delta.total_seconds():.1f} s"
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return (f"{days} d " if days else "") + f"{hours} h {minutes} min"


def feed_chart(buckets: list) -> str:
    """Accepted and rejected records per bucket of one ingest source (feed health)."""
    starts = [b.start for b in buckets]
    data = [
        {
            "type": "bar",
            "x": starts,
            "y": [b.accepted for b in buckets],
            "name": "accepted",
            "marker": {"color": STATUS_COLOURS["ok"]},
        },
        {
            "type": "bar",
            "x": starts,
            "y": [b.rejected for b in buckets],
            "name": "rejected",
            "marker": {"color": STATUS_COLOURS["error"]},
        },
    ]
    return figure_html(data, {"barmode": "stack", "showlegend": True}, height=200)
