"""Derived copies of database rows per process, dropped when their topic changes (console.lib.memo)."""

from console.lib import memo as memo_module
from console.lib.memo import CHECK_SECONDS, TopicMemo, topic_changed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_change_holds_in_this_process_at_once_and_in_others_within_the_check_interval(monkeypatch, db):
    clock = Clock()
    monkeypatch.setattr(memo_module.time, "monotonic", clock)
    here, elsewhere = TopicMemo("test-topic"), TopicMemo("test-topic-elsewhere")
    # Two processes share the cache but not memory: the second memo reads the same version key.
    monkeypatch.setattr(TopicMemo, "_cache_key", property(lambda self: "memo-version:shared"))
    rows = {"value": "old"}
    assert here.get("k", lambda: rows["value"]) == "old"
    assert elsewhere.get("k", lambda: rows["value"]) == "old"
    rows["value"] = "new"
    memo_module._memos["shared"] = here
    topic_changed("shared")  # the change, made by the process holding `here`
    assert here.get("k", lambda: rows["value"]) == "new"  # at once where it was made
    clock.now += CHECK_SECONDS / 2
    assert elsewhere.get("k", lambda: rows["value"]) == "old"  # not yet checked again
    clock.now += CHECK_SECONDS
    assert elsewhere.get("k", lambda: rows["value"]) == "new"  # within the check interval


def test_without_a_readable_version_nothing_is_kept(monkeypatch, db):
    class Unreachable:  # what FailOpenRedisCache answers with Redis down
        def get(self, *args, **kwargs):
            return None

        def add(self, *args, **kwargs):
            return False

    monkeypatch.setattr(memo_module, "cache", Unreachable())
    calls = []
    memo = TopicMemo("unreachable")
    for _ in range(3):
        memo.get("k", lambda: calls.append(1) or len(calls))
    assert len(calls) == 3
