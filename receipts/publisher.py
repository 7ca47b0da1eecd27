"""Publishing outbox events to Celery from a background thread of the web process.

A webhook must answer fast and must never wait on the broker (Telnyx wants a 2xx within 2 s;
a dead Redis must not hang a request). So the request only hands committed outbox ids to this
publisher and returns. One thread per process drains the hand-off queue and hands each batch
over (receipts/outbox.py: one task, or none while a task already waits in the broker, as that
task takes every event committed before it starts). A batch that cannot be published
is marked undispatched in the database, where the sweeper (`outbox_redispatch`) finds it.
Each id travels with the request id of the webhook that committed it, so that the task's log
lines about that event carry it (a batch holds many requests' events).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable

from django.db import close_old_connections, connections

from dlrconsole.lib.request_id import current_request_id

logger = logging.getLogger(__name__)

MAX_BATCH = 500
# How long the thread waits for more events before publishing a batch. Decisions do not need
# millisecond latency; under load this turns hundreds of broker publishes into a few.
LINGER_SECONDS = 0.05


class OutboxPublisher:
    def __init__(
        self, publish: Callable[[list[int], dict[int, str]], None], on_failure: Callable[[list[int]], None]
    ) -> None:
        self._publish = publish
        self._on_failure = on_failure
        self._queue: queue.SimpleQueue[tuple[int, str | None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, event_ids: Iterable[int]) -> None:
        ids = list(event_ids)
        if not ids:
            return
        request_id = current_request_id()  # the submitting thread's; the publisher has none
        with self._lock:
            self._ensure_thread()
            self._pending += len(ids)
        for event_id in ids:
            self._queue.put((event_id, request_id))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted id was published or given up on (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop(self, timeout: float) -> None:
        """Let the thread finish what it has and close its database connection."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._pid != os.getpid():
            return
        self._queue.put(None)
        thread.join(timeout)

    def _ensure_thread(self) -> None:
        # gunicorn forks workers after import: a thread started in the parent does not exist
        # in the child, so each process starts its own on first use.
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self._thread.start()
        # A worker that exits (gunicorn's graceful restart) publishes what it holds first;
        # whatever a killed process held is found by the sweeper.
        atexit.register(self.stop, 5.0)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[int] = []
            request_ids: dict[int, str] = {}
            item = self._queue.get()
            deadline = time.monotonic() + LINGER_SECONDS
            while item is not None:
                batch.append(item[0])
                if item[1] is not None:
                    request_ids[item[0]] = item[1]
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            stopping = item is None
            if batch:
                self._publish_batch(batch, request_ids)
        connections.close_all()  # this thread's connections only

    def _publish_batch(self, batch: list[int], request_ids: dict[int, str]) -> None:
        try:
            self._publish(batch, request_ids)
        except Exception:
            logger.warning("outbox batch of %d not published; the sweeper will retry", len(batch), exc_info=True)
            try:
                self._on_failure(batch)
            except Exception:
                # Even the database is gone: the rows look dispatched, and the sweeper
                # publishes them again once they are old enough to count as lost.
                logger.exception("outbox batch of %d not marked unpublished", len(batch))
                close_old_connections()
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()
