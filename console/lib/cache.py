"""The shared cache, failing open: it holds rate-limit and lockout counts, which guard the console but are not its
store of record. With Redis unreachable, a read finds nothing and a write is dropped (logged, at most once a
minute per process), so ingest still stores and answers truthfully instead of a 500 for every sender."""

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
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


class FailOpenRedisCache(RedisCache):
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
