"""The product feed: signed webhooks to the product's endpoints (retries/feed/services.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from dlrconsole.lib.history import AuditedHistory
from dlrconsole.lib.outbound import validate_outbound_url
from dlrconsole.lib.secrets_at_rest import EncryptedTextField
from dlrconsole.lib.standard_webhooks import validate_secret

__all__ = ["FeedAttempt", "FeedDelivery", "FeedEvent", "ProductEndpoint"]

FEED_EVENT_TYPES = (
    "message.delivered",
    "message.failed",
    "message.retry_scheduled",
    "message.fallback_sent",
    "message.no_receipt",
)


def validate_feed_secret(value: str) -> None:
    try:
        validate_secret(value, prefixed=True)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_event_types(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("a list of event types")
    if unknown := set(value) - set(FEED_EVENT_TYPES):
        raise ValidationError(f"unknown: {', '.join(sorted(unknown))}")


class ProductEndpoint(models.Model):
    """One URL of the product that receives the feed, with its own signing secret."""

    name = models.CharField(max_length=120)
    # Never an address we do not call (dlrconsole/lib/outbound.py), checked again on every POST.
    url = models.URLField(max_length=500, validators=[validate_outbound_url])
    # Encrypted at rest; pages and the API show its last 4 characters at most.
    secret = EncryptedTextField(validators=[validate_feed_secret])
    # After a rotation, the secret before it, still signed with (beside the new one) until
    # `previous_secret_expires_at`, so the product can switch without losing a delivery.
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The account whose API keys manage it (dlrconsole/api/feed.py); empty: configured by admins.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="feed_endpoints"
    )
    # Paused by its owner: events are still recorded for it and held, sent when it resumes
    # (unlike a disabled endpoint, which gets none).
    paused_at = models.DateTimeField(null=True, blank=True)
    # Empty: every event type.
    event_types = models.JSONField(default=list, blank=True, validators=[validate_event_types])
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who changed what (the audit log); the secret only as "changed". The deliverer's failure
    # count moves on every delivery and is not configuration; its disabling an endpoint is.
    history = AuditedHistory(
        secret_fields=["secret", "previous_secret"],
        excluded_fields=["consecutive_failures"],
        quiet_fields=["consecutive_failures", "updated_at"],
    )

    class Meta:
        permissions = [("manage_own_productendpoint", "Can manage its own product endpoints through the API")]

    def __str__(self) -> str:
        return self.name

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one
        while its grace period runs (Standard Webhooks allows several signatures)."""
        expires = self.previous_secret_expires_at
        keep_previous = self.previous_secret and expires is not None and now < expires
        return [self.secret, self.previous_secret] if keep_previous else [self.secret]

    @property
    def secret_hint(self) -> str:
        """What pages and the API may show of the secret: its last 4 characters."""
        return f"…{self.secret[-4:]}" if self.secret else ""

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


def new_webhook_id() -> str:
    """A Standard Webhooks id no other event ever had: random, not the row's number, which
    starts again after a rebuild or a restore into a new database, and would make a product
    that deduplicates on it drop real events as repeats."""
    return f"evt_{uuid.uuid4().hex}"


class FeedEvent(models.Model):
    """One event of the feed; `webhook_id` is the Standard Webhooks id, the same on every retry."""

    class Type(models.TextChoices):
        DELIVERED = "message.delivered", "Message delivered"
        FAILED = "message.failed", "Message failed"
        RETRY_SCHEDULED = "message.retry_scheduled", "Retry scheduled"
        FALLBACK_SENT = "message.fallback_sent", "Fallback sent"
        NO_RECEIPT = "message.no_receipt", "No receipt"

    type = models.CharField(max_length=32, choices=Type.choices)
    message = models.ForeignKey("receipts.Message", on_delete=models.CASCADE, related_name="feed_events")
    # Fixed when the event is recorded and sent as `webhook-id` on every attempt of every
    # delivery of it: the product's dedupe key (unique: the product's check relies on it).
    webhook_id = models.CharField(max_length=40, default=new_webhook_id, editable=False)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # A constraint, not unique=True: that adds a LIKE index nothing reads, written for
            # every event (dlrconsole/lib/redundant_indexes.py).
            models.UniqueConstraint(fields=["webhook_id"], name="feed_event_unique_webhook_id"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.type}"


class FeedDelivery(models.Model):
    """One event to one endpoint: retried on the Standard Webhooks schedule until delivered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (retrying)"
        ABANDONED = "abandoned", "Abandoned"

    # No index of their own: feed_delivery_unique leads with the event, feed_delivery_order_idx
    # with the endpoint, and each row is written three times (queued, claimed, closed), every
    # index with it.
    event = models.ForeignKey(FeedEvent, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    endpoint = models.ForeignKey(ProductEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    # Denormalized from the event: the in-order check looks up earlier deliveries by it.
    message = models.ForeignKey("receipts.Message", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The attempts made before the last replay: the schedule starts again from there.
    attempts_before_replay = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="feed_delivery_unique"),
        ]
        indexes = [
            # The deliverer's scan: open deliveries by due time.
            models.Index(
                fields=["next_attempt_at"],
                name="feed_delivery_due_idx",
                condition=Q(status__in=["pending", "failed"]),
            ),
            # The in-order check: earlier open deliveries of a message to an endpoint.
            models.Index(fields=["endpoint", "message", "event"], name="feed_delivery_order_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of event {self.event_id} → endpoint {self.endpoint_id}"


class FeedAttempt(models.Model):
    """One POST of a delivery, as the admin's delivery log shows it."""

    delivery = models.ForeignKey(FeedDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
