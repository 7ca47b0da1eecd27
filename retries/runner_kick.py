"""Run due attempts now instead of at the runner's next beat tick."""

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
