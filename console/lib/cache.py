"""The shared cache, failing open: it holds rate-limit and lockout counts, which guard the console but are not its
store of record. With Redis unreachable, a read finds nothing and a write is dropped (logged, at most once a
minute per process), so ingest still stores and answers truthfully instead of a 500 for every sender."""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
DOWN = (RedisError, OSError)
_last_warning = 0.0


def _warn(operation: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        logger.warning("cache.unavailable", extra={"operation": operation, "error": str(exc)[:200]})


class _OneClientPerPool(RedisCacheClient):
    """Django builds a new `redis.Redis` for every command, and its constructor fills a table of some 200 response
    callbacks: about a quarter of a millisecond per command, four commands per ingest request. A client is
    thread-safe over its connection pool (and the pool notices a fork), so one per pool serves every thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class FailOpenRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict) -> None:
        super().__init__(server, params)
        self._class = _OneClientPerPool

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except DOWN as exc:
            _warn("get", exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict:
        try:
            return super().get_many(keys, version)
        except DOWN as exc:
            _warn("get_many", exc)
            return {}

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except DOWN as exc:
            _warn("set", exc)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except DOWN as exc:
            _warn("add", exc)
            return False

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except DOWN as exc:
            _warn("incr", exc)
            return delta

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except DOWN as exc:
            _warn("delete", exc)
            return False


def window_count(key: str, seconds: int, *, sync_seconds: float = 0.0) -> int:
    """Count one hit in the current fixed window of `seconds` and return the window's count so far (1 for the
    first). On Redis: INCRBY and EXPIRE in one round trip, atomic across every process. When the cache is down the
    count is what this call adds: a rate limit fails open, like the rest of this cache.

    With `sync_seconds`, hits are tallied in this process and added to the shared count at most once per
    `sync_seconds` (and at a window's first hit); in between, the answer is the shared count last read plus this
    process's hits since. A limit may then be overrun by what other processes counted since their own last sync:
    a fraction of a second of traffic, for one round trip a sync instead of one a request.
    """
    window = int(time.time() // seconds)
    if sync_seconds <= 0:
        return _window_add(key, seconds, window, 1)
    from django.core.cache import caches

    tally_key = caches["default"].make_key(key)  # with the cache's prefix: another prefix is another count
    now = time.monotonic()
    with _tallies_lock:
        tally = _tallies.get(tally_key)
        if tally is None or tally.window != window:
            if len(_tallies) >= _TALLIES_KEPT:  # keys are per source: bound what is kept all the same
                _tallies.clear()
            tally = _tallies[tally_key] = _Tally(window)
        tally.pending += 1
        if tally.synced_at is not None and now - tally.synced_at < sync_seconds:
            return tally.shared + tally.pending
        delta, tally.pending, tally.synced_at = tally.pending, 0, now
    shared = _window_add(key, seconds, window, delta)
    with _tallies_lock:
        tally.shared = max(tally.shared, shared)
        return tally.shared + tally.pending


@dataclass
class _Tally:
    window: int
    shared: int = 0
    pending: int = 0
    synced_at: float | None = None


_tallies: dict[str, _Tally] = {}
_tallies_lock = threading.Lock()
_TALLIES_KEPT = 10_000


def _window_add(key: str, seconds: int, window: int, delta: int) -> int:
    from django.core.cache import caches

    cache = caches["default"]  # the backend itself: `django.core.cache.cache` is a proxy to it
    window_key = f"{key}:{window}"
    if isinstance(cache, FailOpenRedisCache):
        full_key = cache.make_and_validate_key(window_key)
        try:
            pipe = cache._cache.get_client(full_key, write=True).pipeline(transaction=False)
            pipe.incrby(full_key, delta)
            pipe.expire(full_key, seconds + 1)
            return int(pipe.execute()[0])
        except DOWN as exc:
            _warn("window_count", exc)
            return delta
    cache.add(window_key, 0, seconds + 1)
    return cache.incr(window_key, delta)


def window_remaining(seconds: int) -> float:
    """Seconds until the current fixed window of `seconds` ends."""
    return seconds - time.time() % seconds
