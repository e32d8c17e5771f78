"""Small per-process TTL caches for values that change rarely and are read on every
request (tenants, client versions, verified tokens).

The process has one set, named; `configure(ttl)` (called by create_app) sets their
lifetime and empties them, so every app starts with nothing cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class TtlCache(Generic[V]):
    """Values kept for `ttl` seconds; at most `size` entries (cleared wholesale beyond it).

    Each gunicorn worker has its own: a change made through one worker reaches the
    others within `ttl`. Misses (None) are not kept, so a new entry is seen at once.
    """

    def __init__(self, ttl: float, size: int = 10_000):
        self.ttl, self.size = ttl, size
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def peek(self, key: Hashable) -> V | None:
        """The live value under `key`, or None."""
        entry = self._entries.get(key, _MISSING)
        if entry is not _MISSING and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, key: Hashable, value: V | None, ttl: float | None = None) -> None:
        """Keep `value` for `ttl` seconds (never longer than the cache's own ttl)."""
        ttl = self.ttl if ttl is None else min(ttl, self.ttl)
        if value is None or ttl <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The value under `key`, loaded (and kept) when missing or stale."""
        value = self.peek(key)
        if value is None:
            value = load()
            self.put(key, value)
        return value


_caches: dict[str, TtlCache] = {}
_ttl = 30.0


def configure(ttl: float) -> None:
    """Set the lifetime of every named cache (CACHE_TTL_SECONDS) and empty them."""
    global _ttl
    _ttl = ttl
    _caches.clear()


def named_cache(name: str) -> TtlCache:
    """The process's cache called `name`."""
    cache = _caches.get(name)
    if cache is None:
        cache = _caches[name] = TtlCache(_ttl)
    return cache
