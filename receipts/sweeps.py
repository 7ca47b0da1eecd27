"""The missing-receipt sweep: a message still pending past its flow's receipt SLA is itself an
event ("no receipt") that rules can act on, recorded in the outbox like a status change."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from receipts import store
from receipts.models import Message
from receipts.outbox import publish_after_commit
from receipts.sla import PENDING_STATUSES, overdue_groups


def sweep_missing_receipts(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Record a `no_receipt` event, once, for each message pending past its SLA; how many."""
    now = now or timezone.now()
    return sum(_sweep(group, limit, now=now) for group in overdue_groups(now))


def _sweep(group: Q, limit: int, *, now: datetime) -> int:
    overdue = Message.objects.filter(group, status__in=PENDING_STATUSES, no_receipt_at__isnull=True)
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
