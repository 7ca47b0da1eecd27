"""Reads: what the product was told about a message, and whether it got it."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from receipts.models import Message
from receipts.selectors import TimelineEntry
from retries.feed.models import FeedEvent, ProductEndpoint


def product_endpoints_for(*, user_id: int | None, sees_all: bool) -> QuerySet[ProductEndpoint]:
    """The endpoints an API caller reads: every one (`sees_all`: admins), else the account's
    own and those configured by admins (no owner)."""
    endpoints = ProductEndpoint.objects.all()
    return endpoints if sees_all else endpoints.filter(Q(owner_id=user_id) | Q(owner__isnull=True))


def notification_entries(message: Message) -> list[TimelineEntry]:
    """What the product was told about this message, and whether it got it."""
    entries = []
    for event in FeedEvent.objects.filter(message=message).prefetch_related("deliveries__endpoint").order_by("id"):
        deliveries = [
            {
                "endpoint": d.endpoint.name,
                "status": d.status,
                "attempts": d.attempts,
                "delivered_at": d.delivered_at,
                "last_status_code": d.last_status_code,
                "last_error": d.last_error,
            }
            for d in event.deliveries.all()
        ]
        delivered = sum(1 for d in deliveries if d["status"] == "delivered")
        entries.append(
            TimelineEntry(
                at=event.created_at,
                kind="notification",
                summary=f"Product told {event.type} ({delivered} of {len(deliveries)} endpoints received it)",
                detail={"event_id": event.webhook_id, "type": event.type, "deliveries": deliveries},
            )
        )
    return entries
