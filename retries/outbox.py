"""The outbox: status changes rules must see, written in the ingestion transaction and
published to Celery after commit, off the request path (retries/publisher.py).

An event's life: created with `dispatched_at` stamped (it is handed to the publisher as the
transaction commits) → processed once (`processed_at`). A publish that fails clears the stamp;
the sweeper publishes again what has no stamp, and what was stamped long ago and is still not
processed (the process died between commit and publish, or the broker lost it). Stamping
optimistically spares the hot path a second write per event. Tasks are idempotent: an event
published twice is processed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from retries.models import OutboxEvent
from retries.publisher import OutboxPublisher

# Dispatched but unprocessed this long: lost in flight. Well below the broker's visibility
# timeout, well above a normal queue wait.
REDISPATCH_AFTER = timedelta(minutes=2)


def outbox_record(*, message_id: int, receipt_id: int | None, status: str, now: datetime) -> int:
    """Record a status change for the rules. The caller publishes it after commit
    (`publish_after_commit`); ingestion on PostgreSQL writes the same row in its own SQL."""
    event = OutboxEvent.objects.create(
        message_id=message_id,
        receipt_id=receipt_id,
        kind=OutboxEvent.Kind.STATUS_CHANGED,
        status=status,
        created_at=now,
        dispatched_at=now,
        dispatch_count=1,
    )
    return event.pk


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
    from retries.tasks import process_outbox_events

    process_outbox_events.apply_async(args=[event_ids])


def outbox_mark_unpublished(event_ids: list[int]) -> None:
    """The publish failed: clear the stamp so the sweeper publishes them at its next pass."""
    OutboxEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True).update(dispatched_at=None)


publisher = OutboxPublisher(outbox_publish, on_failure=outbox_mark_unpublished)


def outbox_redispatch(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish again what was never published or was lost in flight; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: two sweepers never publish the same row twice.
        rows = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        if rows:
            from retries.tasks import process_outbox_events

            # Published inside the transaction: if the broker refuses, the stamp rolls back.
            process_outbox_events.apply_async(args=[rows])
            OutboxEvent.objects.filter(pk__in=rows).update(dispatched_at=now, dispatch_count=F("dispatch_count") + 1)
    return len(rows)


def outbox_process(event_id: int, *, now: datetime | None = None) -> bool:
    """Decide for an event, exactly once; False if it was already processed.

    The claim and the decision commit together: a worker that dies in between leaves the event
    unclaimed, and its redelivery (acks late) decides it then."""
    from retries.decisions import decide

    now = now or timezone.now()
    with transaction.atomic():
        claimed = OutboxEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(processed_at=now)
        if claimed != 1:
            return False
        decide(OutboxEvent.objects.get(pk=event_id), now=now)
    return True
