"""Which Celery queue each task goes to.

Decisions (the outbox, missing receipts) have a queue of their own, apart from the sends they
schedule (resends, fallbacks, pilots), from the product feed and from alerts: a send API or a
product endpoint that answers in 20 s, or a chat webhook that hangs, holds a worker of its own
queue, never the one deciding. Apart from the decisions, a resend due now is not queued behind
a backlog of decision batches either (a worker takes from its queues in turn). Everything else
(rollups, sweeps, SNS handshakes) stays on the default queue.

A worker started without `-Q` consumes every queue (settings declare them all); a deployment
that wants decisions never to wait gives them dedicated workers with `-Q <default>.decisions`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from kombu import Queue

DECISIONS = "decisions"
SENDS = "sends"
FEED = "feed"
ALERTS = "alerts"
PURPOSES = (DECISIONS, SENDS, FEED, ALERTS)

# By task name: the sender need not import the task (dlrconsole/lib/tasks.py sends by name).
TASK_PURPOSES = {
    "receipts.tasks.process_outbox_events": DECISIONS,
    "receipts.tasks.redispatch_outbox": DECISIONS,
    "receipts.tasks.sweep_missing_receipts": DECISIONS,
    "retries.tasks.run_due_attempts": SENDS,
    "retries.tasks.send_pilot": SENDS,
    "retries.feed.tasks.deliver_feed": FEED,
}
# Any task of the alerts app (evaluation, notifications, reports) calls out to channels.
PREFIX_PURPOSES = (("alerts.", ALERTS),)


def queue_name(purpose: str, default_queue: str | None = None) -> str:
    """`<default queue>.<purpose>`, so that two deployments sharing a Redis (or the test suite)
    keep their queues apart by choosing their default queue."""
    return f"{default_queue or settings.CELERY_TASK_DEFAULT_QUEUE}.{purpose}"


def declared_queues(default_queue: str) -> list[Queue]:
    """Every queue, for CELERY_TASK_QUEUES: the default one first, then one per purpose."""
    return [Queue(default_queue), *(Queue(queue_name(purpose, default_queue)) for purpose in PURPOSES)]


def purpose_of(task_name: str) -> str | None:
    if task_name in TASK_PURPOSES:
        return TASK_PURPOSES[task_name]
    return next((purpose for prefix, purpose in PREFIX_PURPOSES if task_name.startswith(prefix)), None)


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any
) -> dict[str, str] | None:
    """Celery router (CELERY_TASK_ROUTES): None leaves a task on the default queue."""
    purpose = purpose_of(name)
    return {"queue": queue_name(purpose)} if purpose else None
