"""The missing-receipt sweep: a message still pending past its flow's receipt SLA is itself an
event ("no receipt") that rules can act on, recorded in the outbox like a status change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from receipts.models import Message
from receipts.statuses import Status
from retries.models import Attempt, OutboxEvent
from retries.outbox import publish_after_commit

PENDING_STATUSES = (Status.QUEUED, Status.ACCEPTED, Status.SENT)


def sweep_missing_receipts(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Record a `no_receipt` event, once, for each message pending past its SLA; how many."""
    now = now or timezone.now()
    flow_slas: dict[str, int] = settings.DLR_FLOW_RECEIPT_SLA_SECONDS
    recorded = _sweep(now, limit, flows_other_than=list(flow_slas), sla=settings.DLR_RECEIPT_SLA_SECONDS)
    for flow, sla in flow_slas.items():
        recorded += _sweep(now, limit, flow=flow, sla=sla)
    return recorded


def _sweep(
    now: datetime, limit: int, *, sla: int, flow: str | None = None, flows_other_than: Sequence[str] = ()
) -> int:
    overdue = Message.objects.filter(
        status__in=PENDING_STATUSES, no_receipt_at__isnull=True, submitted_at__lt=now - timedelta(seconds=sla)
    )
    overdue = overdue.filter(flow=flow) if flow is not None else overdue.exclude(flow__in=flows_other_than)
    with transaction.atomic():
        # SKIP LOCKED: two sweepers never report the same message twice; a message a receipt is
        # moving right now is left to the next sweep, which sees its new status.
        rows = list(
            overdue.select_for_update(skip_locked=True).order_by("submitted_at").values_list("id", "status")[:limit]
        )
        if not rows:
            return 0
        Message.objects.filter(pk__in=[message_id for message_id, _ in rows]).update(no_receipt_at=now)
        events = OutboxEvent.objects.bulk_create(
            OutboxEvent(
                message_id=message_id, kind=OutboxEvent.Kind.NO_RECEIPT, status=status, created_at=now,
                dispatched_at=now, dispatch_count=1,
            )
            for message_id, status in rows
        )  # fmt: skip
        publish_after_commit([event.pk for event in events])
    return len(rows)


def message_bodies_erase(*, now: datetime | None = None) -> int:
    """Erase message texts older than the retention, unless their chain still has an attempt to
    run (which sends the original's text). Returns how many were erased."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DLR_MESSAGE_BODY_RETENTION_SECONDS)
    waiting = Attempt.objects.filter(outcome__in=(Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING))
    return (
        Message.objects.filter(submitted_at__lt=cutoff)
        .exclude(body="")
        .exclude(pk__in=waiting.values("chain_root_id"))
        .update(body="")
    )
