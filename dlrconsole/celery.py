"""The Celery app: configuration comes from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlrconsole.settings")

app = Celery("dlrconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _replace_unusable_connections(task: Any = None, **kwargs: Any) -> None:
    """As Django does around a request: drop connections that broke or passed CONN_MAX_AGE.
    Not for a task run eagerly inside the caller's transaction (the demo, tests)."""
    from django.db import connections

    if task is not None and task.request.is_eager:
        return
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes "a worker is alive" into the shared cache every few seconds, from the worker's
    own timer (its main loop), for /readyz (dlrconsole/ops/heartbeats.py)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        from dlrconsole.ops.heartbeats import WORKER_BEAT_SECONDS, worker_seen_now

        worker_seen_now()
        self.tref = worker.timer.call_repeatedly(WORKER_BEAT_SECONDS, worker_seen_now)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.steps["worker"].add(WorkerHeartbeat)
