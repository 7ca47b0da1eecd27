"""Celery beat's work, run by a thread of the demo process: the demo has no beat.

The jobs are exactly beat's schedule (settings.CELERY_BEAT_SCHEDULE), so the demo runs what
production runs and nothing else; each task is called directly, which runs it in this thread
(as eager Celery would). Beat's intervals range from 5 s to 10 min; the ticker runs every job
each tick instead: each one only claims what is due and costs a query when nothing is, and a
demo should show a swept receipt or a due retry within seconds. A job that raises is logged
and tried again at the next tick; nothing a job does can stop the thread or the demo.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], object]


@dataclass
class JobStats:
    runs: int = 0
    failures: int = 0


def beat_jobs() -> list[Job]:
    """Beat's schedule as jobs; a task's name is its import path (Celery's default naming)."""
    schedule: dict[str, dict[str, object]] = settings.CELERY_BEAT_SCHEDULE
    return [Job(name, import_string(str(entry["task"]))) for name, entry in schedule.items()]


class Ticker:
    """Runs `jobs`, one after the other, at once and then every `interval` seconds until stopped."""

    def __init__(self, jobs: Sequence[Job], *, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.jobs = list(jobs)
        self.interval = interval
        self.stats = {job.name: JobStats() for job in self.jobs}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-ticker", daemon=True)

    def tick(self) -> None:
        """Run every job once; a failure is logged and counted, and the next job runs anyway."""
        for job in self.jobs:
            if self._stopping.is_set():
                return
            stats = self.stats[job.name]
            stats.runs += 1
            try:
                job.run()
            except Exception:
                stats.failures += 1
                logger.exception("periodic job %s failed; it runs again at the next tick", job.name)
            finally:
                # Drop a connection an error left unusable; on SQLite (CONN_MAX_AGE 0) close it,
                # so this thread holds nothing between ticks.
                close_old_connections()

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the job running now (each is bounded: attempts_run_due by its budget);
        False if the thread was still busy after `timeout`."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def summary(self) -> str:
        return ", ".join(
            f"{name} {s.runs}" + (f" ({s.failures} failed)" if s.failures else "") for name, s in self.stats.items()
        )

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self.tick()
                self._stopping.wait(self.interval)
        finally:
            connections.close_all()  # this thread's connections only
