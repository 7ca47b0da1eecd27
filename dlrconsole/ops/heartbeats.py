"""Workers and beat say they are alive by writing the time into the shared cache (Redis):
workers every WORKER_BEAT_SECONDS from a step of their own (dlrconsole/celery.py), beat at
each turn of its loop while it sends (dlrconsole/beat.py); /readyz reads both.

The cache rather than Celery's own heartbeats: those are events, off unless every worker runs
with -E, and reading them takes a listener; and rather than a ping: a broadcast waits its whole
timeout for replies on every probe. Beat's own record of its runs (the periodic tasks'
last_run_at, what dlr_beat_last_run_age_seconds reports) is saved only every 3 minutes and not
at all in beat's first 3, too coarse to say whether it is up. A process whose main loop is stuck
stops writing too.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

WORKER_SEEN_KEY = "ops:worker-seen"
BEAT_SEEN_KEY = "ops:beat-seen"
WORKER_BEAT_SECONDS = 10.0
# Long enough for any readiness window (at most an hour).
KEEP_SECONDS = 2 * 3600


def seen_now(key: str) -> None:
    """Record that the process `key` names is alive; a cache that cannot be reached is logged,
    not raised (the process's work does not depend on it)."""
    try:
        cache.set(key, time.time(), timeout=KEEP_SECONDS)
    except Exception:
        logger.warning("could not record a heartbeat (%s) in the cache", key, exc_info=True)


def worker_seen_now() -> None:
    seen_now(WORKER_SEEN_KEY)


def last_seen(key: str) -> float | None:
    """When the process `key` names last said it was alive (Unix time), or None. Raises if the
    cache cannot be reached."""
    value = cache.get(key)
    return float(value) if isinstance(value, int | float) else None
