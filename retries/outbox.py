"""Writing outbox rows in the ingestion transaction and publishing them after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from retries.models import OutboxEvent

logger = logging.getLogger(__name__)

# A dispatched row still unprocessed after this long was lost in flight and is published again.
# Well below the broker's visibility timeout, well above a normal queue wait.
REDISPATCH_AFTER = timedelta(minutes=2)


def outbox_add(*, message_id: int, receipt_id: int | None, status: str, now: datetime) -> int:
    """Record a status change for the rules; publish it once the transaction commits."""
    event = OutboxEvent.objects.create(
        message_id=message_id,
        receipt_id=receipt_id,
        kind=OutboxEvent.Kind.STATUS_CHANGED,
        status=status,
        created_at=now,
        dispatched_at=now,
    )
    transaction.on_commit(lambda: outbox_publish([event.pk]))
    return event.pk


def outbox_publish(event_ids: Iterable[int]) -> None:
    """Hand events to Celery. Never raises: a failed publish is left for the sweeper."""
    from retries.tasks import process_outbox_event

    failed = []
    for event_id in event_ids:
        try:
            process_outbox_event.apply_async(args=[event_id])
        except Exception:  # the broker's errors are many (socket, redis, kombu); all mean "not sent"
            logger.warning("outbox event %s not published; the sweeper will retry", event_id, exc_info=True)
            failed.append(event_id)
    if failed:
        OutboxEvent.objects.filter(pk__in=failed, processed_at__isnull=True).update(dispatched_at=None)


def outbox_redispatch(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish again what was never published or was lost in flight; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: several sweepers (or web processes) never publish the same row twice.
        rows = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        OutboxEvent.objects.filter(pk__in=rows).update(dispatched_at=now, dispatch_count=F("dispatch_count") + 1)
    outbox_publish(rows)
    return len(rows)


def outbox_process(event_id: int, *, now: datetime | None = None) -> bool:
    """Mark an event processed, exactly once; False if another worker already did.

    The decision engine hooks in here (rules → decisions → attempts) in the decisions issue;
    until then a status change has no consumer beyond being recorded as seen.
    """
    claimed = OutboxEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
        processed_at=now or timezone.now()
    )
    return claimed == 1
