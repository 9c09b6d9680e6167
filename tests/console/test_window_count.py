"""The fixed-window counter behind the ingest rate limit: on the shared cache of the run (Redis in CI, local memory
in the quick start)."""

import pytest

from console.lib import cache as shared_cache


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(shared_cache.time, "time", lambda: now["t"])
    return now


def test_counts_hits_within_a_window_and_starts_again_in_the_next(clock):
    assert [shared_cache.window_count("w-test", 60) for _ in range(3)] == [1, 2, 3]
    assert shared_cache.window_count("w-other", 60) == 1  # keys count apart
    clock["t"] += 59.9  # 1_800_000_000 is a multiple of 60: still the same window
    assert shared_cache.window_count("w-test", 60) == 4
    clock["t"] += 0.2
    assert shared_cache.window_count("w-test", 60) == 1


def test_the_wait_is_what_is_left_of_the_window(clock):
    clock["t"] += 45
    assert shared_cache.window_remaining(60) == pytest.approx(15)
