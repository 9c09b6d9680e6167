"""Values derived from database rows, kept in each process and dropped when their topic changes.

Ingest reads the same few rows on every request (a source's extraction and redaction rules, its aliases, the token
it presents): about a third of a single-event request's time went to those queries. A `TopicMemo` keeps what was
derived from them per key; whoever changes the rows calls `topic_changed`, which drops this process's copy at once
and writes a new version of the topic to the shared cache (Redis in production), which every other process checks
at most once every `CHECK_SECONDS`. So a change (a revoked token, an edited rule) holds everywhere within a second,
and in the process that made it at once. With the shared cache unreachable, versions cannot be read: the memo then
keeps nothing and every call computes afresh.
"""

import threading
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction

CHECK_SECONDS = 1.0
MAX_ENTRIES = 10_000
T = TypeVar("T")

_memos: dict[str, "TopicMemo"] = {}


class TopicMemo:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}
        self._version: str | None = None
        self._checked_at = float("-inf")
        _memos[topic] = self

    @property
    def _cache_key(self) -> str:
        return f"memo-version:{self.topic}"

    def _current_version(self) -> str | None:
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS and self._version is not None:
            return self._version
        version = cache.get(self._cache_key)
        if version is None:
            # First use anywhere, or the cache lost it (restart, eviction, unreachable): start a version now.
            version = uuid.uuid4().hex
            if not cache.add(self._cache_key, version, timeout=None):
                version = cache.get(self._cache_key)
        with self._lock:
            if version != self._version:
                self._values.clear()
                self._version = version
            self._checked_at = now
        return version

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The memoised value of `key`, computed (and kept) when this topic changed since it was kept."""
        if self._current_version() is None:
            return compute()
        try:
            return self._values[key]
        except KeyError:
            pass
        value = compute()
        with self._lock:
            if len(self._values) >= MAX_ENTRIES:
                self._values.clear()
            self._values[key] = value
        return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)

    def forget(self) -> None:
        with self._lock:
            self._values.clear()
            self._version = None
            self._checked_at = float("-inf")


def topic_changed(topic: str) -> None:
    """Rows behind `topic` changed: every process drops what it derived from them (this one at once, others within
    CHECK_SECONDS). Called again when the change commits, so that a process reading between the write and the commit
    does not keep the old rows under the new version."""

    def announce() -> None:
        cache.set(f"memo-version:{topic}", uuid.uuid4().hex, timeout=None)
        memo = _memos.get(topic)
        if memo is not None:
            memo.forget()

    announce()
    transaction.on_commit(announce)
