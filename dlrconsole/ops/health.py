"""Liveness and readiness.

`/healthz` says only that this process answers (no database, no Redis): a load balancer or a
supervisor restarts a process that does not, and must not restart every web process because
PostgreSQL blinked. `/readyz` checks what the deployment needs to do its work: the database,
Redis, a Celery worker seen recently and beat's last run. Both are public, so they say only
"ok" or "failing" per check: no host names, versions, counts or error messages (those go to
the log, where django-health-check writes each failure).

The database and Redis checks are django-health-check's; the worker and beat checks are ours,
in its frame (a check raises ServiceUnavailable), reading the heartbeats the worker and beat
write into the cache (dlrconsole/ops/heartbeats.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from redis.asyncio import Redis as RedisClient

from dlrconsole.ops.heartbeats import BEAT_SEEN_KEY, WORKER_SEEN_KEY, last_seen

logger = logging.getLogger(__name__)

# Each check's own budget: a probe that hangs is a failing check, not a hanging probe.
CHECK_TIMEOUT = dt.timedelta(seconds=3)


@dataclasses.dataclass
class WorkerSeen(HealthCheck):
    """A Celery worker said it was alive within DLR_READY_WORKER_MAX_AGE_SECONDS."""

    timeout = CHECK_TIMEOUT

    def run(self) -> None:
        seen = last_seen(WORKER_SEEN_KEY)
        if seen is None or time.time() - seen > settings.DLR_READY_WORKER_MAX_AGE_SECONDS:
            raise ServiceUnavailable("no worker seen recently")


@dataclasses.dataclass
class BeatRan(HealthCheck):
    """Beat's loop last ran within DLR_READY_BEAT_MAX_AGE_SECONDS (it records each turn)."""

    timeout = CHECK_TIMEOUT

    def run(self) -> None:
        seen = last_seen(BEAT_SEEN_KEY)
        if seen is None or time.time() - seen > settings.DLR_READY_BEAT_MAX_AGE_SECONDS:
            raise ServiceUnavailable("beat has not run recently")


def readiness_checks() -> dict[str, HealthCheck]:
    checks: dict[str, HealthCheck] = {"database": Database()}
    if settings.REDIS_URL:
        redis_url = settings.REDIS_URL
        checks["redis"] = Redis(
            client_factory=lambda: RedisClient.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
        )
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # the demo runs tasks, and beat's schedule, in-process
        checks["worker"] = WorkerSeen()
        checks["beat"] = BeatRan()
    for check in checks.values():
        check.timeout = CHECK_TIMEOUT
    return checks


async def _run_all(checks: dict[str, HealthCheck]) -> dict[str, HealthCheckResult]:
    results = await asyncio.gather(*(check.get_result() for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def healthz(request: HttpRequest) -> JsonResponse:
    return _never_cached(JsonResponse({"status": "ok"}))


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, 503 otherwise; each check "ok" or "failing"."""
    # The library's checks are coroutines: run them on a loop of their own, in a thread of
    # their own, whatever loop the calling thread may have.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz") as pool:
        results = pool.submit(asyncio.run, _run_all(readiness_checks())).result()
    states = {name: "failing" if result.error else "ok" for name, result in results.items()}
    ready = all(state == "ok" for state in states.values())
    body: dict[str, Any] = {"status": "ok" if ready else "failing", "checks": states}
    response = JsonResponse(body, status=200 if ready else 503)
    if not ready:
        logger.warning("not ready: %s", ", ".join(name for name, state in states.items() if state != "ok"))
        # Not a server error to report (Django logs every 5xx as an error, mailed to ADMINS):
        # a probe repeats it every few seconds, and the line above says it once per probe.
        response._has_been_logged = True  # type: ignore[attr-defined]
    return _never_cached(response)


def _never_cached(response: JsonResponse) -> JsonResponse:
    add_never_cache_headers(response)
    return response
