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


def test_synchronised_counting_tallies_here_and_adds_to_the_shared_count_once_per_interval(clock, monkeypatch):
    steady = {"t": 500.0}
    monkeypatch.setattr(shared_cache.time, "monotonic", lambda: steady["t"])
    adds = []
    real_add = shared_cache._window_add
    monkeypatch.setattr(
        shared_cache, "_window_add", lambda key, s, w, delta: adds.append(delta) or real_add(key, s, w, delta)
    )
    assert [shared_cache.window_count("w-sync", 60, sync_seconds=0.25) for _ in range(4)] == [1, 2, 3, 4]
    assert adds == [1]  # the window's first hit went to the shared count; the next three were tallied here
    shared_cache.window_count("w-sync", 60)  # another process's hit, straight to the shared count (now 2)
    steady["t"] += 0.3
    assert shared_cache.window_count("w-sync", 60, sync_seconds=0.25) == 6  # 2 shared + this process's 3 + 1
    assert adds == [1, 1, 4]
    clock["t"] += 60  # a new window starts from zero, here and in the shared cache
    assert shared_cache.window_count("w-sync", 60, sync_seconds=0.25) == 1
