"""Run due work now instead of at the next beat tick: attempts due at once, feed deliveries
just published. Both are best effort, after commit: the beat's next pass covers a failure.

Within `kicks_coalesced()` (a batch of outbox events), each kind of kick is sent once, at the
end: one task per event queued thousands of tasks at load that mostly found nothing to do
(bench/README.md, decision latency).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger(__name__)

ATTEMPTS = "attempts"
FEED = "feed"
_pending: ContextVar[set[str] | None] = ContextVar("pending_kicks", default=None)


@contextmanager
def kicks_coalesced() -> Iterator[None]:
    pending: set[str] = set()
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        for kind in sorted(pending):  # what committed before an error is kicked all the same
            _send(kind)


def kick_attempt_runner() -> None:
    _kick(ATTEMPTS)


def kick_feed_deliverer() -> None:
    _kick(FEED)


def _kick(kind: str) -> None:
    pending = _pending.get()
    if pending is not None:
        pending.add(kind)
    else:
        _send(kind)


def _send(kind: str) -> None:
    from retries.feed_tasks import deliver_feed
    from retries.tasks import run_due_attempts

    task = run_due_attempts if kind == ATTEMPTS else deliver_feed
    try:
        # No publish retries: a dead broker must fail this at once, not hold the worker.
        task.apply_async(retry=False)
    except Exception as exc:  # any broker failure only delays the work to the beat's next pass
        logger.warning("could not ask for %s to run now (%s); the next beat pass will", kind, exc)
