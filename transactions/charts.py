"""Plotly figures of the transactions app, built from selector output."""

import math
from datetime import datetime, timedelta
from itertools import pairwise

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
    if item.get("recovered"):
        parts.append("made good by a later attempt")
    if item.get("approval"):
        parts.append("approval: {actor} {decision}".format(**{"actor": "", "decision": "", **item["approval"]}))
    if item.get("critical"):
        parts.append("on the critical path")
    return "<br>".join(parts)


# Idle time longer than this many times the longest busy stretch (and at least MIN_GAP) is drawn compressed, so that
# millisecond spans of a transaction that lasts days are bars, not hairlines.
GAP_FACTOR = 2
MIN_GAP = timedelta(milliseconds=500)
MAX_TICKS = 8
MIN_BAR_SHARE = 0.006  # of the axis: the shortest bar stays visible and clickable


def _end(item: dict) -> datetime:
    return item.get("end") or item["start"] + timedelta(milliseconds=item.get("duration_ms") or 0)


class CompressedAxis:
    """Real time -> axis seconds, piecewise linear: busy stretches at their real scale, each long idle stretch
    squeezed to `cap` seconds and labelled with its real length. A gap-compressed axis, as trace viewers draw long
    asynchronous traces; hover texts keep the real times."""

    def __init__(self, intervals: list[tuple[datetime, datetime]]):
        ordered = sorted(intervals)
        clusters: list[list[datetime]] = []
        longest = max((end - start for start, end in ordered), default=timedelta(0))
        self.cap = max(MIN_GAP, GAP_FACTOR * longest)
        for start, end in ordered:
            if clusters and start - clusters[-1][1] <= self.cap:
                clusters[-1][1] = max(clusters[-1][1], end)
            else:
                clusters.append([start, end])
        self.clusters = clusters
        self.points: list[tuple[datetime, float]] = []  # breakpoints (real, axis)
        self.breaks: list[dict] = []
        position = 0.0
        for index, (start, end) in enumerate(clusters):
            if index:
                idle = start - clusters[index - 1][1]
                self.breaks.append({"at": position + self.cap.total_seconds() / 2, "idle": idle})
                position += self.cap.total_seconds()
            self.points.append((start, position))
            position += (end - start).total_seconds()
            self.points.append((end, position))

    def __call__(self, moment: datetime) -> float:
        points = self.points
        if not points:
            return 0.0
        cap = self.cap.total_seconds()
        if moment <= points[0][0]:
            return points[0][1] - min((points[0][0] - moment).total_seconds(), cap)
        if moment >= points[-1][0]:
            return points[-1][1] + min((moment - points[-1][0]).total_seconds(), cap)
        for (t0, x0), (t1, x1) in pairwise(points):
            if t0 <= moment <= t1:
                span = (t1 - t0).total_seconds()
                return x0 if span == 0 else x0 + (x1 - x0) * (moment - t0).total_seconds() / span
        return points[-1][1]

    def ticks(self) -> tuple[list[float], list[str]]:
        """Labels at the start of busy stretches (and inside a lone one), in real time."""
        moments = [start for start, _ in self.clusters]
        if len(self.clusters) < 3:
            for start, end in self.clusters:
                moments += [start + (end - start) * k / 4 for k in range(1, 5)]
        moments = sorted(set(moments))
        if len(moments) > MAX_TICKS:
            step = (len(moments) - 1) / (MAX_TICKS - 1)
            moments = [moments[round(i * step)] for i in range(MAX_TICKS)]
        one_day = len({m.date() for m in moments}) == 1
        short = self.clusters and all(end - start < timedelta(minutes=1) for start, end in self.clusters)
        fmt = ("%H:%M:%S" if one_day else "%m-%d %H:%M:%S") if short else ("%H:%M" if one_day else "%m-%d %H:%M")
        labels = [
            m.strftime(fmt) + (f".{m.microsecond // 1000:03d}" if short and len(self.clusters) < 3 else "")
            for m in moments
        ]
        return [self(m) for m in moments], labels


def _idle_label(idle: timedelta) -> str:
    seconds = idle.total_seconds()
    if seconds >= 3600:  # to the minute: "1 d 3 h", not "1 d 2 h 59 min" for a gap between two 300 ms spans
        seconds = round(seconds / 60) * 60
    return "⋯ " + duration_label(int(seconds * 1000)).replace(" 0 min", "").replace(" 0 h", "") + " ⋯"


def timeline_chart(timeline: dict) -> str:
    """Gantt across systems on a gap-compressed time axis: one lane per system, spans as bars, point events as dots,
    ✕ a failed step (red), ★ an approval, the critical path outlined when it is not simply every event."""
    items = timeline["items"]
    expected = timeline.get("expected_next")
    axis = CompressedAxis([(i["start"], _end(i)) for i in items])
    data: list[dict] = []
    shapes: list[dict] = []
    annotations: list[dict] = []
    spans = [i for i in items if i["is_span"]]
    points = [i for i in items if not i["is_span"] and not i.get("approval") and i["status"] != "error"]
    failed = [i for i in items if i["status"] == "error"]
    approvals = [i for i in items if i.get("approval")]
    lanes = list(timeline["lanes"])
    extent = max((axis(_end(i)) for i in items), default=0.0) - min((axis(i["start"]) for i in items), default=0.0)
    min_bar = max(extent * MIN_BAR_SHARE, 0.001)

    def middle(item: dict) -> float:
        return (axis(item["start"]) + axis(_end(item))) / 2

    if spans:
        data.append(
            {
                "type": "bar",
                "base": [axis(i["start"]) for i in spans],
                "x": [max(axis(_end(i)) - axis(i["start"]), min_bar) for i in spans],
                "y": [i["system"] for i in spans],
                "orientation": "h",
                "marker": {
                    "color": [STATUS_COLOURS["error" if i["status"] == "error" else "ok"] for i in spans],
                    "line": {"color": ["#212529" if i["critical"] else "rgba(0,0,0,0)" for i in spans], "width": 2},
                },
                "customdata": [i["id"] for i in spans],
                "hovertext": [_hover(i) for i in spans],
                "hoverinfo": "text",
                "name": "span",
            }
        )
    for name, chosen, marker in (
        (
            "event",
            points,
            {
                "symbol": "circle",
                "size": 10,
                "color": STATUS_COLOURS["ok"],
                "line": {"color": ["#212529" if i["critical"] else "#ffffff" for i in points], "width": 2},
            },
        ),
        # Drawn over the bars, so that a failed or approving span shows its marker whatever its length.
        (
            "failed step",
            failed,
            # Outlined in white: the marker sits on the failed span's own red bar.
            {"symbol": "x", "size": 15, "color": STATUS_COLOURS["error"], "line": {"color": "#ffffff", "width": 2}},
        ),
        (
            "approval",
            approvals,
            {"symbol": "star", "size": 17, "color": "#fab005", "line": {"color": "#212529", "width": 1}},
        ),
    ):
        if chosen:
            data.append(
                {
                    "type": "scatter",
                    "x": [middle(i) for i in chosen],
                    "y": [i["system"] for i in chosen],
                    "mode": "markers",
                    "marker": marker,
                    "customdata": [i["id"] for i in chosen],
                    "hovertext": [_hover(i) for i in chosen],
                    "hoverinfo": "text",
                    "name": name,
                }
            )
    for gap in timeline["gaps"]:
        shapes.append(
            {
                "type": "line",
                "x0": axis(gap["start"]),
                "x1": axis(gap["end"]),
                "y0": gap["from_system"],
                "y1": gap["to_system"],
                "line": {"color": STATUS_COLOURS["muted"], "dash": "dot", "width": 1},
            }
        )
    for cut in axis.breaks:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": cut["at"],
                "x1": cut["at"],
                "y0": 0,
                "y1": 1,
                "line": {"color": STATUS_COLOURS["muted"], "dash": "dash", "width": 1},
            }
        )
        annotations.append(
            {
                "x": cut["at"],
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "text": _idle_label(cut["idle"]),
                "font": {"size": 10, "color": STATUS_COLOURS["muted"]},
            }
        )
    if expected and expected.get("due_at"):
        lane = expected["system"] or EXPECTED_LANE
        if lane not in lanes:
            lanes.append(lane)
        data.append(
            {
                "type": "scatter",
                "x": [axis(expected["due_at"])],
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
    tickvals, ticktext = axis.ticks()
    layout = {
        "barmode": "overlay",
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.25, "font": {"size": 11}},
        "shapes": shapes,
        "annotations": annotations,
        "margin": {"l": 40, "r": 10, "t": 34 if annotations else 20, "b": 60},
        "xaxis": {"type": "linear", "title": None, "tickvals": tickvals, "ticktext": ticktext, "zeroline": False},
        "yaxis": {"categoryorder": "array", "categoryarray": list(reversed(lanes)), "title": None, "automargin": True},
        "meta": {"compressed_gaps": len(axis.breaks)},
    }
    return figure_html(data, layout, height=max(240, 100 + 45 * len(lanes)))


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


# ---- the integration map ---------------------------------------------------------------------------------------

# Error-rate bands of an interface (% of hand-overs failing): under 1 % is healthy, 5 % and over needs someone.
ERROR_BANDS = ((1.0, STATUS_COLOURS["ok"]), (5.0, STATUS_COLOURS["warning"]), (float("inf"), STATUS_COLOURS["error"]))
# Latency bands (p95 of the hop, seconds): a minute is an API call or a queue, an hour a batch, more is a backlog.
LATENCY_BANDS = (
    (60.0, STATUS_COLOURS["ok"]),
    (3600.0, STATUS_COLOURS["warning"]),
    (float("inf"), STATUS_COLOURS["error"]),
)
MAX_EDGE_WIDTH = 12


def _band(value: float | None, bands: tuple) -> str:
    if value is None:
        return STATUS_COLOURS["muted"]
    return next(colour for limit, colour in bands if value < limit)


def _whole(ms: float | None) -> int | None:
    return None if ms is None else round(ms)


def system_positions(names: list[str]) -> dict[str, tuple[float, float]]:
    """Systems on a circle, in name order, so a system keeps its place when the range changes."""
    count = max(1, len(names))
    return {n: (math.cos(2 * math.pi * i / count), math.sin(2 * math.pi * i / count)) for i, n in enumerate(names)}


def interface_map_chart(
    systems: list, interfaces: list, *, system_urls: dict[str, str], interface_urls: dict[int, str], colour_by: str
) -> str:
    """The estate as a network: systems as markers on a circle, interfaces as lines whose width is the volume and
    whose colour is the error rate (or p95 latency). Every marker and line point carries its drill-down URL."""
    places = system_positions([s.name for s in systems])
    busiest = max((i.volume for i in interfaces), default=0) or 1
    data: list[dict] = []
    mid_x, mid_y, mid_text, mid_urls, mid_colours = [], [], [], [], []
    for f in interfaces:
        # Silent in the range (or a pair seen only while a transaction was half-correlated): in the table, not drawn.
        if not f.volume or f.source not in places or f.target not in places:
            continue
        (x0, y0), (x1, y1) = places[f.source], places[f.target]
        # Bend each line to the right of its direction, so A -> B and B -> A are two lines, not one over the other.
        mx, my = (x0 + x1) / 2 + (y1 - y0) * 0.12, (y0 + y1) / 2 - (x1 - x0) * 0.12
        if colour_by == "latency":
            p95 = f.latency_p95_ms / 1000 if f.latency_p95_ms is not None else None
            colour = _band(p95 if f.volume else None, LATENCY_BANDS)
        else:
            colour = _band(f.error_rate, ERROR_BANDS)
        hover = (
            f"{f.source} → {f.target}<br>{f.volume} hand-overs · {f.errors} failed"
            f"{f' ({f.error_rate} %)' if f.error_rate is not None else ''}<br>"
            f"p50 {duration_label(_whole(f.latency_p50_ms))} · p95 {duration_label(_whole(f.latency_p95_ms))}<br>"
            f"{', '.join(list(f.kinds)[:4]) or 'no traffic in range'}"
        )
        url = interface_urls[f.id]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [x0, mx, x1],
                "y": [y0, my, y1],
                "line": {"width": 1 + (MAX_EDGE_WIDTH - 1) * f.volume / busiest, "color": colour, "shape": "spline"},
                "hoverinfo": "text",
                "text": [hover] * 3,
                "customdata": [url] * 3,
                "showlegend": False,
            }
        )
        mid_x.append(mx)
        mid_y.append(my)
        mid_text.append(hover)
        mid_urls.append(url)
        mid_colours.append(colour)
    # A marker at each line's bend: an easy target to hover and click, and the arrow-free sign of its direction
    # (it sits on the right-hand side of the way the data flows).
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": mid_x,
            "y": mid_y,
            "marker": {"size": 9, "color": mid_colours, "symbol": "diamond"},
            "hoverinfo": "text",
            "text": mid_text,
            "customdata": mid_urls,
            "name": "interfaces",
            "showlegend": False,
        }
    )
    data.append(
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": [places[s.name][0] for s in systems],
            "y": [places[s.name][1] for s in systems],
            "text": [s.name for s in systems],
            "textposition": "top center",
            "hovertext": [
                f"{s.name}<br>in {s.volume_in} · out {s.volume_out} · failed in {s.errors_in}" for s in systems
            ],
            "hoverinfo": "text",
            "customdata": [system_urls[s.name] for s in systems],
            "marker": {"size": 18, "color": STATUS_COLOURS["info"], "line": {"width": 1, "color": "#fff"}},
            "name": "systems",
            "showlegend": False,
        }
    )
    axis = {"visible": False, "range": [-1.4, 1.4]}
    return figure_html(
        data,
        {
            "xaxis": axis,
            "yaxis": {**axis, "scaleanchor": "x"},
            "hovermode": "closest",
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        },
        height=520,
    )
