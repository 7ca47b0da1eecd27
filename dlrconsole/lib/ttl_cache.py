"""A per-process cache of values read from the database, kept for a few seconds.

The hot paths read the same small configuration again and again (a webhook's connection, the
rules a decision tries, the error catalog's overrides); each read cost a measurable share of
its path (bench/README.md). Each cache is cleared in this process as soon as what it holds is
saved or deleted (the owning app connects `clear` to the model's signals), and other processes
see a change within `seconds()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 1024


class TtlCache(Generic[K, V]):
    """`load(key)` on a miss or after `seconds()`; values for which `keep` is false are not
    kept (a lookup of a random slug must not grow the cache)."""

    def __init__(
        self,
        load: Callable[[K], V],
        *,
        seconds: Callable[[], float],
        keep: Callable[[V], bool] = lambda value: True,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._load = load
        self._seconds = seconds
        self._keep = keep
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._seconds():
            return entry[1]
        value = self._load(key)
        with self._lock:
            if not self._keep(value):
                self._entries.pop(key, None)
            else:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
                self._entries[key] = (now, value)
        return value

    def peek(self, key: K) -> V | None:
        """What is kept for `key`, however old, without loading it: for a label, where a stale
        value is harmless and a database read is not."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def clear(self, **_: Any) -> None:
        """Forget everything; takes a signal's keyword arguments so it can be connected as is."""
        with self._lock:
            self._entries.clear()


class TtlValue(Generic[V]):
    """One value, loaded by `load()` and kept like a TtlCache entry."""

    def __init__(self, load: Callable[[], V], *, seconds: Callable[[], float]) -> None:
        self._cache: TtlCache[None, V] = TtlCache(lambda _: load(), seconds=seconds, max_entries=1)

    def get(self) -> V:
        return self._cache.get(None)

    def clear(self, **_: Any) -> None:
        self._cache.clear()
