"""One beat per deployment, even when two are started.

Beat sends the periodic tasks; two of them would send each twice (harmless, as every task is
idempotent, but twice the load and confusing logs), and none at all is worse: so a deployment can
run a standby beat on a second host. Whichever beat holds a lock in Redis sends the schedule; the
others tick idle, and one of them takes over within the lock's lifetime once the holder stops
renewing it (stopped, killed, its host gone). The lock is Redis's because the broker is Redis: a
beat that cannot reach Redis could not send anything anyway. A PostgreSQL advisory lock would not
survive a transaction-pooling PgBouncer (docs/SCALING.md), which hands each transaction its own
server session.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from contextlib import suppress
from typing import Any

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler
from redis.exceptions import LockError, RedisError

from dlrconsole.ops.heartbeats import BEAT_SEEN_KEY, seen_now

logger = logging.getLogger(__name__)

LOCK_KEY = "dlrconsole:beat:lock"
# Beat's loop turns at least every 5 s (django-celery-beat's longest sleep); recording that it
# is alive once in this many seconds is enough for /readyz's window of a minute or more.
RECORD_EVERY_SECONDS = 10.0


class BeatLock:
    """A lock in Redis held for `seconds` and renewed by its holder; `hold()` says, each tick,
    whether this process may send. Owner tokens are unique per process, so a beat whose lock
    expired and was taken over can never renew the new holder's."""

    def __init__(self, url: str, *, seconds: float, key: str = LOCK_KEY) -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.seconds = seconds
        self._lock = client.lock(key, timeout=seconds, blocking=False, thread_local=False)
        self._token = token.encode()
        self.held = False

    def hold(self) -> bool:
        try:
            if self.held:
                self._lock.reacquire()  # raises if it expired (and maybe went to another beat)
            else:
                self.held = bool(self._lock.acquire(blocking=False, token=self._token))
                if self.held:
                    logger.info("beat: this process now sends the periodic tasks")
        except LockError:
            self.held = False
            logger.warning("beat: the lock expired before it was renewed; another beat may send now")
        except RedisError as exc:
            # Unknown whether another beat took over: stop sending until Redis answers again.
            if self.held:
                logger.warning("beat: cannot renew the lock (%s); not sending until Redis answers", exc)
            self.held = False
        return self.held

    def release(self) -> None:
        if self.held:
            with suppress(LockError, RedisError):  # expired or unreachable: it lapses on its own
                self._lock.release()
            self.held = False


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, sending only while it holds the beat lock, and recording
    while it sends that the deployment's beat is alive (for /readyz; a standby says nothing)."""

    _recorded_at = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        seconds = settings.DLR_BEAT_LOCK_SECONDS
        self.lock = BeatLock(settings.CELERY_BROKER_URL, seconds=seconds) if settings.REDIS_URL else None
        # Renew well within the lock's lifetime, however long the next task is away.
        self.renew_every = seconds / 3
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is None:  # no Redis: nothing to coordinate with (a single-process set-up)
            self._record_alive()
            return float(super().tick(*args, **kwargs))
        was_held = self.lock.held
        if not self.lock.hold():
            return self.renew_every
        if not was_held:
            # Taking over: read the schedule afresh, as the previous holder left it.
            self._initial_read = True
            self._heap = None
        self._record_alive()
        return min(float(super().tick(*args, **kwargs)), self.renew_every)

    def _record_alive(self) -> None:
        now = time.monotonic()
        if now - self._recorded_at >= RECORD_EVERY_SECONDS:
            seen_now(BEAT_SEEN_KEY)
            self._recorded_at = now

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.lock is not None:
                self.lock.release()
