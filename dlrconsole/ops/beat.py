"""Production's beat scheduler: django-celery-beat's, which keeps the periodic tasks in the
database, and which also records at each turn of beat's loop that beat is alive, for /readyz
(dlrconsole/ops/heartbeats.py)."""

from __future__ import annotations

import time
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from dlrconsole.ops.heartbeats import BEAT_SEEN_KEY, seen_now

# Beat's loop turns at least every 5 s (django-celery-beat's longest sleep); once in this
# many seconds is enough for a readiness window of a minute or more.
RECORD_EVERY_SECONDS = 10.0


class Scheduler(DatabaseScheduler):
    _recorded_at = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._recorded_at >= RECORD_EVERY_SECONDS:
            seen_now(BEAT_SEEN_KEY)
            self._recorded_at = now
        return float(super().tick(*args, **kwargs))
