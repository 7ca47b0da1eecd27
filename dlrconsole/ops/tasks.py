"""Beat's entry points for operations: thin, safe to run twice at once (the run lock)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from dlrconsole.ops.retention import retention_apply

logger = logging.getLogger(__name__)


# Its own time limits: a run stops itself after DLR_RETENTION_PASS_SECONDS, far above the
# default task limits that suit the few-second passes.
@shared_task(
    ignore_result=True,
    soft_time_limit=settings.DLR_RETENTION_PASS_SECONDS + 120,
    time_limit=settings.DLR_RETENTION_PASS_SECONDS + 180,
)
def apply_retention() -> dict[str, int] | None:
    deleted = retention_apply()
    if deleted is None:
        logger.info("retention: another run holds the lock")
    else:
        logger.info(
            "retention: deleted %s", ", ".join(f"{n} {table}" for table, n in sorted(deleted.items())) or "nothing"
        )
    return deleted
