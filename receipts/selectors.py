"""Reads: message lists for the API and pages, and a message's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from receipts.models import Message, Receipt


def message_list() -> QuerySet[Message]:
    return Message.objects.select_related("connection").order_by("-id")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "registered" | "receipt"; decisions and attempts join in later issues
    summary: str
    detail: dict[str, Any]


def message_timeline(message: Message) -> list[TimelineEntry]:
    """Everything that happened to a message, oldest first."""
    entries = [
        TimelineEntry(
            at=message.submitted_at,
            kind="registered",
            summary=f"Submitted to {message.connection.slug}",
            detail={"provider_message_id": message.provider_message_id},
        )
    ]
    receipts: QuerySet[Receipt] = message.receipts.order_by("received_at", "id")
    for receipt in receipts:
        entries.append(
            TimelineEntry(
                at=receipt.received_at,
                kind="receipt",
                summary=f"{receipt.provider_status} → {receipt.status} ({receipt.get_outcome_display()})",
                detail={
                    "receipt_id": receipt.pk,
                    "provider_status": receipt.provider_status,
                    "status": receipt.status,
                    "outcome": receipt.outcome,
                    "error_code": receipt.error_code,
                    "error_description": receipt.error_description,
                    "provider_timestamp": receipt.provider_timestamp,
                    "headers": receipt.headers,
                    "raw_body": receipt.raw_body,
                },
            )
        )
    return sorted(entries, key=lambda entry: entry.at)
