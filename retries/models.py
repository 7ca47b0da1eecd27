"""The outbox: status changes that rules must see, written in the ingestion transaction."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxEvent(models.Model):
    """One change a rule must see. Written in the same transaction as the change, so a change
    is never lost and never seen without having happened; dispatched to Celery after commit."""

    class Kind(models.TextChoices):
        STATUS_CHANGED = "status_changed", "Status changed"
        # Still pending past its flow's receipt SLA (retries/sweeps.py).
        NO_RECEIPT = "no_receipt", "No receipt"

    message = models.ForeignKey("receipts.Message", on_delete=models.CASCADE, related_name="outbox_events")
    receipt = models.ForeignKey("receipts.Receipt", on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    # Stamped in the writing transaction (the event is handed to the publisher at commit),
    # cleared when the publish fails. Empty: to be published by the sweeper; stamped long ago
    # and still unprocessed: lost in flight, published again (retries/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The sweeper's scan: only unprocessed rows, by when they were handed to the broker.
            models.Index(fields=["dispatched_at"], name="outbox_pending_idx", condition=Q(processed_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id} → {self.status}"
