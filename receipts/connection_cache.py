"""Webhook connections looked up by slug, cached per process for a few seconds.

Every receipt needs its connection; reading it from the database on every request cost a
sixth of the webhook's time under load (bench/README.md). The cache holds only enabled
connections that exist (random slugs cannot grow it), is cleared in this process whenever a
connection is saved or deleted, and other processes see a change within `TTL_SECONDS`: a
disabled connection or a rotated secret takes at most that long to apply everywhere.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings

from receipts.models import Connection

MAX_ENTRIES = 1024


class ConnectionCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Connection]] = {}
        self._lock = threading.Lock()

    def get(self, slug: str) -> Connection | None:
        """The enabled connection with this slug, or None. Raises DatabaseError on a miss
        when the database is unavailable."""
        ttl = settings.DLR_CONNECTION_CACHE_SECONDS
        now = time.monotonic()
        entry = self._entries.get(slug)
        if entry is not None and now - entry[0] < ttl:
            return entry[1]
        connection = Connection.objects.filter(slug=slug, enabled=True).first()
        with self._lock:
            if connection is None:
                self._entries.pop(slug, None)
            else:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[slug] = (now, connection)
        return connection

    def clear(self, **_: Any) -> None:
        with self._lock:
            self._entries.clear()


connection_cache = ConnectionCache()
