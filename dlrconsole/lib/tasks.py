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
from django.core.cache import cache

logger = logging.getLogger(__name__)

_pending: ContextVar[set[str] | None] = ContextVar("pending_kicks", default=None)
# A kicked task still waiting in the broker will find all the work committed before it starts:
# another kick meanwhile is redundant, and under load there were hundreds, each a task that
# cost a worker ~8 ms for nothing (bench/README.md, decision latency). The shared cache marks a
# kick as waiting until its task starts (`kick_taken`), or for this long at most: a kick lost
# with the broker is sent again then, and beat's passes cover the rest.
KICK_WAITING_SECONDS = 10


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


def kick_taken(task_name: str) -> None:
    """A kicked task's first step: from now on a kick must send it again, as this run may
    already have looked for the work the kick is about."""
    try:
        cache.delete(_waiting_key(task_name))
    except Exception as exc:  # no shared cache: kicks are then never held back either
        logger.warning("could not clear the waiting kick of %s (%s)", task_name, exc)


def _waiting_key(task_name: str) -> str:
    return f"kick-waiting:{task_name}"


def mark_waiting(task_name: str) -> bool:
    """Whether the caller should send the task: True when none is marked as waiting in the
    broker (it is marked now, until `kick_taken` or KICK_WAITING_SECONDS) or when the shared
    cache cannot tell; False when one waits already and will find the work."""
    try:
        return bool(cache.add(_waiting_key(task_name), 1, KICK_WAITING_SECONDS))
    except Exception as exc:  # no shared cache: send all the same
        logger.warning("could not mark %s as waiting (%s)", task_name, exc)
        return True


def _send(task_name: str) -> None:
    if not mark_waiting(task_name):
        return  # one is waiting in the broker already
    try:
        # No publish retries: a dead broker must fail this at once, not hold the worker.
        task_by_name(task_name).apply_async(retry=False)
    except Exception as exc:  # any broker failure only delays the work to the beat's next pass
        logger.warning("could not ask for %s to run now (%s); the next beat pass will", task_name, exc)
        kick_taken(task_name)
