"""Workers say they are alive by writing the time into the shared cache (Redis) every
WORKER_BEAT_SECONDS, from a step of their own (dlrconsole/celery.py); /readyz reads it.

The cache rather than Celery's own heartbeats: those are events, off unless every worker runs
with -E, and reading them takes a listener; and rather than a ping: a broadcast waits its whole
timeout for replies on every probe. A worker whose main loop is stuck stops writing too.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WORKER_SEEN_KEY = "ops:worker-seen"
WORKER_BEAT_SECONDS = 10.0
# Long enough for any readiness window (DLR_READY_WORKER_MAX_AGE_SECONDS is at most an hour).
KEEP_SECONDS = 2 * 3600


def worker_seen_now() -> None:
    """Record that a worker is alive; a cache that cannot be reached is logged, not raised
    (the worker's work does not depend on it)."""
    try:
        cache.set(WORKER_SEEN_KEY, time.time(), timeout=KEEP_SECONDS)
    except Exception:
        logger.warning("could not record the worker's heartbeat in the cache", exc_info=True)


def worker_last_seen() -> float | None:
    """When a worker last said it was alive (Unix time), or None. Raises if the cache cannot
    be reached."""
    value = cache.get(WORKER_SEEN_KEY)
    return float(value) if isinstance(value, int | float) else None
