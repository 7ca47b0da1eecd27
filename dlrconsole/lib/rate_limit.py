"""Counting requests per fixed window in the shared cache (Redis in production), so every web
process counts against the same limit.

One atomic increment per request (Django's cache `incr` on Redis), where a sliding log as
DRF's SimpleRateThrottle keeps stores every request's time and rewrites the whole list each
time: at thousands a minute that list is tens of kilobytes per request. The fixed window lets a
caller burst up to twice the limit across a window's edge, which is fine for what it guards.
"""

from __future__ import annotations

import logging
import math
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)


def window_hit(key: str, *, limit: int, window: int) -> int:
    """Count one request for `key`; 0 if it is within `limit` per `window` seconds, otherwise
    the whole seconds until the window ends (for Retry-After).

    If the cache cannot be reached the request is let through: a cache outage must not take
    the API or the webhooks down with it."""
    now = time.time()
    start = int(now // window) * window
    bucket = f"rate:{key}:{start}"
    try:
        count = _incr(bucket, timeout=window + 1)
    except Exception:
        logger.warning("rate limit not counted for %s: the cache is unreachable", key, exc_info=True)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil(start + window - now))


def _incr(bucket: str, *, timeout: int) -> int:
    try:
        return cache.incr(bucket)
    except ValueError:
        # The window's first request (Django's incr refuses a missing key). Another process
        # may create it between the two calls: then add fails and the increment goes on it.
        if cache.add(bucket, 1, timeout=timeout):
            return 1
        return cache.incr(bucket)
