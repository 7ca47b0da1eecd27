"""Celery tasks by their registered name, so that the app that sends a task need not import the
module defining it (which usually imports the sender back).

Kicks run due work now instead of at the next beat tick (attempts due at once, feed deliveries
just published). Best effort, after commit: the beat's next pass covers a failure.

Within `kicks_coalesced()` (a batch of outbox events), each task is sent once, at the end: one
task per event queued thousands of tasks at load that mostly found nothing to do
(bench/README.md, decision latency). Tasks are named, not imported, so the app that kicks need
not import the module that defines the task (which usually imports it back).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import import_module

from celery import Task, current_app

logger = logging.getLogger(__name__)

_pending: ContextVar[set[str] | None] = ContextVar("pending_kicks", default=None)


@contextmanager
def kicks_coalesced() -> Iterator[None]:
    pending: set[str] = set()
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        for task_name in sorted(pending):  # what committed before an error is kicked all the same
            _send(task_name)


def kick(task_name: str) -> None:
    """Ask a worker to run the task (by its registered name) now, or once at the end of the
    current coalescing batch."""
    pending = _pending.get()
    if pending is not None:
        pending.add(task_name)
    else:
        _send(task_name)


def task_by_name(task_name: str) -> Task:
    """The registered task; its module is imported first, as web processes do not import task
    modules up front (workers do). Raises LookupError for an unknown task."""
    try:
        import_module(task_name.rpartition(".")[0])
        return current_app.tasks[task_name]
    except (ImportError, KeyError):
        raise LookupError(f"no task named {task_name!r}") from None


def _send(task_name: str) -> None:
    try:
        # No publish retries: a dead broker must fail this at once, not hold the worker.
        task_by_name(task_name).apply_async(retry=False)
    except Exception as exc:  # any broker failure only delays the work to the beat's next pass
        logger.warning("could not ask for %s to run now (%s); the next beat pass will", task_name, exc)
