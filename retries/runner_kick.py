"""Run due work now instead of at the next beat tick: attempts due at once, feed deliveries
just published. Both are best effort, after commit: the beat's next pass covers a failure."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def kick_attempt_runner() -> None:
    """Best effort, after commit: if the broker refuses, the beat's next pass runs them."""
    from retries.tasks import run_due_attempts

    try:
        # No publish retries: a dead broker must fail this at once, not hold the worker.
        run_due_attempts.apply_async(retry=False)
    except Exception as exc:  # any broker failure only delays the attempt
        logger.warning("could not ask for due attempts to run now (%s); the runner's next pass will", exc)


def kick_feed_deliverer() -> None:
    from retries.feed_tasks import deliver_feed

    try:
        deliver_feed.apply_async(retry=False)
    except Exception as exc:  # any broker failure only delays the delivery
        logger.warning("could not ask for the feed to be delivered now (%s); its next pass will", exc)
