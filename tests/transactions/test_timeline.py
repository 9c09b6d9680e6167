from datetime import UTC, datetime, timedelta

from transactions.timeline import build_timeline, critical_path

T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)


def item(i, system, start_s, duration_ms=None, status="ok"):
    return {
        "id": i,
        "system": system,
        "kind": f"k{i}",
        "status": status,
        "occurred_at": T0 + timedelta(seconds=start_s),
        "duration_ms": duration_ms,
    }


def test_timeline_lanes_gaps_duration_and_expected_step():
    events = [item(1, "crm", 0, 1000), item(2, "ipaas", 5, 2000), item(3, "erp", 60), item(4, "ipaas", 6, 500)]
    timeline = build_timeline(
        events,
        next_step={"position": 3, "name": "Invoice", "system": "", "kind": "invoice.posted"},
        next_due_at=T0 + timedelta(hours=1),
        now=T0 + timedelta(hours=2),
    )
    assert timeline["lanes"] == ["crm", "ipaas", "erp"]
    assert timeline["end_to_end_ms"] == 60_000
    assert [(g["from_system"], g["to_system"], g["seconds"]) for g in timeline["gaps"]] == [
        ("crm", "ipaas", 4.0),
        ("ipaas", "erp", 53.0),
    ]
    assert timeline["critical_path"] == [1, 2, 3]  # the 0.5 s call inside the 2 s span is not on it
    assert timeline["expected_next"]["overdue"] is True


def test_critical_path_of_a_large_trace_is_fast_and_sound():
    events = [item(i, f"s{i % 7}", i * 0.01, 5) for i in range(20_000)]
    path = critical_path([{**e, "start": e["occurred_at"]} for e in events])
    assert path[-1] == 19_999 and len(path) > 1000
    assert path == sorted(path)


def test_empty_timeline():
    timeline = build_timeline([], next_step=None, next_due_at=None, now=T0)
    assert timeline["items"] == [] and timeline["end_to_end_ms"] is None and timeline["expected_next"] is None
