"""The missing-receipt sweep: a message still pending past its flow's receipt SLA is itself an
event ("no receipt") that rules can act on, recorded in the outbox like a status change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from receipts import store
from receipts.models import Message
from receipts.outbox import publish_after_commit
from receipts.statuses import Status

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
        publish_after_commit(store.messages_report_missing(rows, now=now))
    return len(rows)
