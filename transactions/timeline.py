"""The timeline of one transaction, built from its events: lanes, gaps between systems, critical path, duration.

Pure: plain dicts in, plain dicts out; the page, the chart and GET /api/v1/transactions/<id>/ all render this.
"""

from bisect import bisect_right
from datetime import datetime, timedelta
from typing import Any

# Events closer than this are treated as simultaneous when chaining the critical path (clock skew between systems).
SKEW = timedelta(milliseconds=5)


def _end(item: dict) -> datetime:
    return item["start"] + timedelta(milliseconds=item["duration_ms"] or 0)


def critical_path(items: list[dict]) -> list[int]:
    """Ids of the chain that decides the end-to-end duration: from the last event to finish, each step back is the
    event that finished last before it started (across systems and asynchronous hops). O(n log n) for big traces."""
    ordered = sorted(items, key=lambda i: (_end(i), i["id"]))
    ends = [_end(i) for i in ordered]
    index = len(ordered) - 1
    path = []
    while index >= 0:
        path.append(ordered[index]["id"])
        # Strictly earlier in the order, so that simultaneous events cannot chain back and forth.
        index = min(bisect_right(ends, ordered[index]["start"] + SKEW), index) - 1
    return list(reversed(path))


def gaps_between_systems(items: list[dict]) -> list[dict]:
    """Idle time where the work passes from one system to the next: the waits an operator wants to see."""
    ordered = sorted(items, key=lambda i: (i["start"], i["id"]))
    gaps = []
    last_done: dict | None = None  # the event that finished last so far
    for following in ordered:
        if last_done is not None and last_done["system"] != following["system"]:
            idle = following["start"] - _end(last_done)
            if idle > timedelta(0):
                gaps.append(
                    {
                        "from_system": last_done["system"],
                        "to_system": following["system"],
                        "start": _end(last_done),
                        "end": following["start"],
                        "seconds": idle.total_seconds(),
                    }
                )
        if last_done is None or _end(following) >= _end(last_done):
            last_done = following
    return gaps


def build_timeline(
    events: list[dict[str, Any]], *, next_step: dict | None, next_due_at: datetime | None, now: datetime
) -> dict:
    """`events`: dicts with id, occurred_at, duration_ms, system, kind, status, and the rest shown as they are."""
    items = [{**e, "start": e["occurred_at"], "is_span": e.get("duration_ms") is not None} for e in events]
    items.sort(key=lambda i: (i["start"], i["id"]))
    for item in items:
        item["end"] = _end(item)
    lanes = list(dict.fromkeys(i["system"] for i in items))
    path = critical_path(items)
    # Marked only where it tells something: when every event is on the path (one step after another), a mark on
    # each of them says nothing, so none is marked; `critical_path` still lists them.
    on_path = set(path) if len(path) < len(items) else set()
    latest_ok: dict[str, datetime] = {}
    for item in items:
        item["critical"] = item["id"] in on_path
        if item["status"] != "error":
            latest_ok[item["system"]] = max(latest_ok.get(item["system"], item["start"]), item["start"])
    for item in items:
        # A failure a later success of the same system made good (the retry), as transactions.correlation judges it.
        item["recovered"] = item["status"] == "error" and latest_ok.get(item["system"], item["start"]) > item["start"]
    start = min((i["start"] for i in items), default=None)
    end = max((i["end"] for i in items), default=None)
    expected = None
    if next_step:
        expected = {**next_step, "due_at": next_due_at, "overdue": bool(next_due_at and next_due_at < now)}
    return {
        "lanes": lanes,
        "items": items,
        "gaps": gaps_between_systems(items),
        "critical_path": path,
        "started_at": start,
        "ended_at": end,
        "end_to_end_ms": int((end - start).total_seconds() * 1000) if start and end else None,
        "expected_next": expected,
    }
