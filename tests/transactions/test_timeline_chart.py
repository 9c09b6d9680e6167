"""The timeline chart stays readable on a transaction that lasts days (issue 14.4)."""

import json
from datetime import UTC, datetime, timedelta
from html import unescape

from transactions.charts import CompressedAxis, timeline_chart
from transactions.timeline import build_timeline

T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)


def item(i, system, at: timedelta, duration_ms=None, status="ok", **extra):
    return {
        "id": i,
        "system": system,
        "kind": f"k{i}",
        "status": status,
        "occurred_at": T0 + at,
        **extra,
        "duration_ms": duration_ms,
    }


def figure(timeline: dict) -> dict:
    html = timeline_chart(timeline)
    return json.loads(unescape(html.split('data-figure="', 1)[1].split('"', 1)[0]))


def multi_day() -> dict:
    events = [
        item(1, "crm", timedelta(0), 300, approval={"actor": "j.doe", "decision": "approved"}),
        item(2, "erp", timedelta(days=1, hours=3), 250, status="error", error={"code": "V1", "message": "credit"}),
        item(3, "erp", timedelta(days=2, hours=5), 400),
        item(4, "bank", timedelta(days=6), 120),
    ]
    return build_timeline(events, next_step=None, next_due_at=None, now=T0 + timedelta(days=7))


def test_spans_of_a_multi_day_transaction_are_bars_not_hairlines():
    fig = figure(multi_day())
    bars = next(t for t in fig["data"] if t["type"] == "bar")
    axis_width = max(b + w for b, w in zip(bars["base"], bars["x"], strict=True)) - min(bars["base"])
    # On a real time axis a 250 ms span is 4e-7 of six days; compressed, every span is a visible share of the axis.
    assert min(bars["x"]) / axis_width > 0.02
    idle = [a["text"] for a in fig["layout"]["annotations"]]
    assert len(idle) == 3 and idle[0] == "⋯ 1 d 3 h ⋯"
    assert len(fig["layout"]["xaxis"]["ticktext"]) >= 4 and fig["layout"]["xaxis"]["ticktext"][0] == "05-18 10:00:00"


def test_failed_step_and_approval_have_their_own_markers_and_legend():
    fig = figure(multi_day())
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["failed step"]["marker"]["symbol"] == "x" and by_name["failed step"]["customdata"] == [2]
    assert by_name["failed step"]["marker"]["color"] == "#e03131"
    assert by_name["approval"]["marker"]["symbol"] == "star" and by_name["approval"]["customdata"] == [1]
    assert fig["layout"]["showlegend"] is True


def test_only_a_real_subset_of_events_is_marked_critical_and_a_retried_failure_is_made_good():
    sequential = multi_day()
    assert sequential["critical_path"] == [1, 2, 3, 4]
    assert not any(i["critical"] for i in sequential["items"])  # one step after another: nothing to single out
    assert [i["id"] for i in sequential["items"] if i["recovered"]] == [2]

    parallel = build_timeline(
        [
            item(1, "crm", timedelta(0), 2000),
            item(2, "erp", timedelta(seconds=0.1), 300),
            item(3, "erp", timedelta(seconds=3)),
        ],
        next_step=None,
        next_due_at=None,
        now=T0,
    )
    assert [i["id"] for i in parallel["items"] if i["critical"]] == [1, 3]


def test_the_axis_keeps_busy_time_to_scale_and_squeezes_idle_time():
    axis = CompressedAxis(
        [(T0, T0 + timedelta(seconds=1)), (T0 + timedelta(days=3), T0 + timedelta(days=3, seconds=1))]
    )
    assert axis(T0) == 0 and axis(T0 + timedelta(seconds=1)) == 1
    assert axis(T0 + timedelta(days=3)) == 3  # three days drawn as the 2 s cap
    assert axis(T0 + timedelta(days=3, seconds=0.5)) == 3.5
    assert axis(T0 + timedelta(days=9)) == 4 + 2  # beyond the end (an expected step): capped as well
