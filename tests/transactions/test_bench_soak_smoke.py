"""The soak benchmark runs end to end at a tiny size: gunicorn, two Celery workers and beat on the test database
(timings are printed, never asserted; the exact count check is)."""

import os

import pytest

from tests.bench import soak as bench

FIGURES = (
    "events/s held end to end",
    "correlation lag (stored -> batch correlated): p50",
    "classification lag (failed event stored -> exception record): p95",
    "error rate:",
    "RSS (peak): gunicorn",
    "celery worker 1",
    "celery worker 2",
    "celery beat",
)


@pytest.mark.broker
@pytest.mark.postgres(reason="gunicorn and the Celery workers, other processes, read the test database")
@pytest.mark.timeout(240)  # 15 s of load, the fleet's start and the drain
def test_the_soak_benchmark_runs_and_its_count_check_passes(transactional_db):
    lines: list[str] = []
    figures, ok = bench.soak(
        seconds=15,
        rate=120,
        single_rate=2,
        otlp_share=0.3,
        batch=100,
        page_rate=1,
        broker=os.environ["CELERY_BROKER_URL"],
        drain=60,
        write=lines.append,
    )
    text = "\n".join(lines)
    print(text)  # the figures, in the test's output
    assert ok, text
    assert "count check: PASSED" in text
    for figure in FIGURES:
        assert figure in text, figure
    db = figures["db"]
    sent = sum(lane.sent_events for lane in figures["lanes"])
    assert db["stored"] == sent > 1000, text  # 15 s at 120 events/s, every one stored
    assert db["uncorrelated"] == 0 and db["unclassified"] == 0 and db["failed"] > 0, text
    assert {lane.name for lane in figures["lanes"]} == {"native", "single", "otlp"}
    assert figures["pages"].requests >= 10 and figures["pages"].not_ok == 0, text


def test_the_count_check_fails_when_an_event_is_missing():
    lane = bench.Lane("native", "/api/v1/events", "application/json", 10, 10.0, 1, lambda index: b"[]")
    lane.requests, lane.sent_events, lane.accepted, lane.latencies = 1, 10, 10, [0.1]
    db = {
        "stored": 9,  # one accepted event is not in the store
        "correlated_in_window": 9,
        "uncorrelated": 0,
        "correlation_p50": 0.5,
        "correlation_p95": 1.0,
        "failed": 1,
        "unclassified": 0,
        "classification_p95": 2.0,
        "memberships": 9,
        "events_without_transaction": 0,
        "events_in_merged_transactions": 0,
    }
    figures = {
        "seconds": 1.0,
        "offered": 10.0,
        "lanes": [lane],
        "pages": bench.PageReads(1.0, "u", "p"),
        "drain_seconds": 0.0,
        "rss": {"gunicorn": 20.0},
        "failures": [],
        "db": db,
    }
    lines: list[str] = []
    assert not bench.report(figures, write=lines.append)
    assert "count check: FAILED (sent = stored + rejected; accepted answers = stored)" in lines
    db["stored"] = db["correlated_in_window"] = 10  # the tenth is stored but its batch still waits: late, not lost
    db["events_without_transaction"] = db["uncorrelated"] = 1
    lines.clear()
    assert not bench.report(figures, write=lines.append)
    assert "count check: INCOMPLETE (1 events still waiting for correlation after the drain)" in lines
    db["uncorrelated"] = 0  # its batch is marked correlated, yet the event is in no transaction: lost
    lines.clear()
    assert not bench.report(figures, write=lines.append)
    assert "count check: FAILED (every correlated batch's events in a transaction)" in lines
    db["memberships"], db["events_without_transaction"] = 10, 0
    lines.clear()
    assert bench.report(figures, write=lines.append)
    assert any(line.startswith("count check: PASSED") for line in lines)
