"""The outbox: changes the apps above must see (a status change, a missing receipt), written in
the transaction that made the change (receipts/store.py), published to Celery after commit off
the request path (receipts/publisher.py), and handed to the registered consumers.

Receipts knows nothing of what its consumers do: an app above subscribes with
`register_consumer` from its AppConfig.ready (retries registers the rules' decisions), as
healthchecks keeps its `Flip` records beside `Check` and lets the alerting side read them.

An event's life: created with `dispatched_at` stamped (it is handed to the publisher as the
transaction commits) → processed once (`processed_at`). A publish that fails clears the stamp;
the sweeper publishes again what has no stamp, and what was stamped long ago and is still not
processed (the process died between commit and publish, or the broker lost it). Stamping
optimistically spares the hot path a second write per event. Tasks are idempotent: an event
published twice is processed once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dlrconsole.lib.tasks import kicks_coalesced, task_by_name
from receipts import store
from receipts.models import OutboxEvent
from receipts.publisher import OutboxPublisher

# Dispatched but unprocessed this long: lost in flight. Well below the broker's visibility
# timeout, well above a normal queue wait.
REDISPATCH_AFTER = timedelta(minutes=2)
# receipts/tasks.py, which imports this module.
PROCESS_OUTBOX_EVENTS = "receipts.tasks.process_outbox_events"


@dataclass(frozen=True)
class Consumer:
    """`consume(event, now)` runs inside the transaction that claims the event, so what it
    writes commits together with the claim: exactly once."""

    name: str
    consume: Callable[[OutboxEvent, datetime], object]


_consumers: dict[str, Consumer] = {}


def register_consumer(consumer: Consumer) -> None:
    _consumers[consumer.name] = consumer


def outbox_consumers() -> list[Consumer]:
    return list(_consumers.values())


def publish_after_commit(event_ids: Sequence[int]) -> None:
    transaction.on_commit(lambda: _hand_off(event_ids))


def _hand_off(event_ids: Sequence[int]) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The demo runs tasks in-process: there is no broker to wait on.
        outbox_publish(list(event_ids))
        return
    publisher.submit(event_ids)


def outbox_publish(event_ids: list[int]) -> None:
    """Publish one task for the batch. Raises if the broker refuses."""
    task_by_name(PROCESS_OUTBOX_EVENTS).apply_async(args=[event_ids])


publisher = OutboxPublisher(outbox_publish, on_failure=store.outbox_mark_unpublished)


def outbox_redispatch(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish again what was never published or was lost in flight; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        # Locked, SKIP LOCKED: two sweepers never publish the same row twice.
        rows = store.outbox_lost(lost_before=now - REDISPATCH_AFTER, limit=limit)
        if rows:
            # Published inside the transaction: if the broker refuses, the stamp rolls back.
            outbox_publish(rows)
            store.outbox_mark_dispatched(rows, now=now)
    return len(rows)


def outbox_process_batch(event_ids: Sequence[int]) -> int:
    """Process a batch of events, each at most once; what the consumers kick (the attempt runner,
    the feed deliverer) is kicked once for the whole batch. How many were processed now."""
    with kicks_coalesced():
        return sum(outbox_process(event_id) for event_id in event_ids)


def outbox_process(event_id: int, *, now: datetime | None = None) -> bool:
    """Hand an event to every consumer, exactly once; False if it was already processed.

    The claim and what the consumers write commit together: a worker that dies in between
    leaves the event unclaimed, and its redelivery (acks late) processes it then."""
    now = now or timezone.now()
    with transaction.atomic():
        if not store.outbox_claim(event_id, now=now):
            return False
        event = OutboxEvent.objects.get(pk=event_id)
        for consumer in outbox_consumers():
            consumer.consume(event, now)
    return True
