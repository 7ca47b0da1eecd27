"""Reads: message lists for the API and pages, and a message's timeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from receipts.errors import describe_reason, provider_disagrees
from receipts.models import Message, Receipt
from receipts.phones import mask_number_in


def message_list() -> QuerySet[Message]:
    # The text kept for resends is never shown by a list or the API: not even loaded.
    return Message.objects.select_related("connection").defer("body").order_by("-id")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "registered" | "receipt" | "decision" | "attempt" | "notification"
    summary: str
    detail: dict[str, Any]


def message_timeline(message: Message, *, see_numbers: bool = True) -> list[TimelineEntry]:
    """Everything that happened to a message, oldest first. Without `see_numbers`, the
    recipient is masked wherever it appears, raw provider payloads and headers included."""
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
                summary=_receipt_summary(receipt),
                detail={
                    "receipt_id": receipt.pk,
                    "provider_status": receipt.provider_status,
                    "status": receipt.status,
                    "outcome": receipt.outcome,
                    "error_code": receipt.error_code,
                    "error_description": receipt.error_description,
                    **receipt_error(receipt),
                    "provider_timestamp": receipt.provider_timestamp,
                    "headers": receipt.headers,
                    "raw_body": receipt.raw_body,
                },
            )
        )
    entries.extend(_decision_entries(message))
    entries.extend(_notification_entries(message))
    if not see_numbers:
        # Raw payloads and headers carry the recipient in the provider's own spellings.
        entries = [
            replace(entry, summary=mask_number_in(entry.summary, message.recipient),
                    detail=mask_number_in(entry.detail, message.recipient))
            for entry in entries
        ]  # fmt: skip
    return sorted(entries, key=lambda entry: entry.at)


def _decision_entries(message: Message) -> list[TimelineEntry]:
    """The rules' decisions on this message, and the attempts they scheduled."""
    from retries.models import Attempt, Decision

    entries = []
    decisions = Decision.objects.filter(message=message).select_related("rule", "requested_by")
    for decision in decisions.order_by("created_at", "id"):
        entries.append(
            TimelineEntry(
                at=decision.created_at,
                kind="decision",
                summary=f"{decision.get_action_display()}: {decision.get_state_display()} ({decision.why})",
                detail={
                    "decision_id": decision.pk,
                    "action": decision.action,
                    "state": decision.state,
                    "why": decision.why,
                    "rule": decision.rule.name if decision.rule else None,
                    "requested_by": decision.requested_by.get_username() if decision.requested_by else None,
                },
            )
        )
    attempts = Attempt.objects.filter(decision__message=message).select_related("connection", "channel")
    for attempt in attempts.order_by("due_at", "id"):
        entries.append(
            TimelineEntry(
                at=attempt.finished_at or attempt.due_at,
                kind="attempt",
                summary=f"Attempt {attempt.number}: {attempt.get_outcome_display()}",
                detail={
                    "attempt_id": attempt.pk,
                    "number": attempt.number,
                    "outcome": attempt.outcome,
                    "action": attempt.action,
                    "through": str(attempt.connection or attempt.channel or ""),
                    "due_at": attempt.due_at,
                    "tries": attempt.tries,
                    "detail": attempt.detail,
                    "response_summary": attempt.response_summary,
                    "duration_ms": attempt.duration_ms,
                    "idempotency_key": attempt.idempotency_key,
                    "resend_message_id": attempt.resend_id,
                },
            )
        )
    return entries


def _notification_entries(message: Message) -> list[TimelineEntry]:
    """What the product was told about this message, and whether it got it."""
    from retries.feed_models import FeedEvent

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


def message_detail(pk: int) -> Message:
    """One message for its page; raises Message.DoesNotExist."""
    return Message.objects.select_related("connection", "chain_root").get(pk=pk)


@dataclass(frozen=True)
class AttemptChain:
    """An original message, its resends and the attempts that made them."""

    root: Message
    messages: list[Message]
    attempts: list[Any]  # retries.models.Attempt; retries imports this module's app

    @property
    def is_single(self) -> bool:
        return len(self.messages) == 1 and not self.attempts


def message_chain(message: Message) -> AttemptChain:
    from retries.models import Attempt

    root = message.chain_root or message
    resends = list(root.resends.select_related("connection").order_by("submitted_at", "id"))
    attempts = list(
        Attempt.objects.filter(chain_root=root)
        .select_related("decision", "decision__requested_by", "connection", "channel")
        .order_by("number", "id")
    )
    return AttemptChain(root=root, messages=[root, *resends], attempts=attempts)


def recipient_other_messages(message: Message, *, limit: int = 10) -> list[Message]:
    """The recipient's latest other messages, newest registered first (message_recipient_idx)."""
    return list(
        Message.objects.filter(recipient=message.recipient)
        .exclude(pk=message.pk)
        .select_related("connection")
        .order_by("-id")[:limit]
    )


def _receipt_summary(receipt: Receipt) -> str:
    summary = f"{receipt.provider_status} → {receipt.status} ({receipt.get_outcome_display()})"
    if receipt.reason:
        summary += f": {receipt.reason}, {receipt.error_class}"
    return summary


def receipt_error(record: Message | Receipt) -> dict[str, Any]:
    """A message's or receipt's error as the API shows it: reason, effective class, the
    catalog's class and which of the two decided, and what to do and say about it."""
    disagrees = provider_disagrees(record.class_source, record.error_class, record.catalog_class)
    return {
        "reason": record.reason,
        "error_class": record.error_class,
        "catalog_class": record.catalog_class,
        "class_source": record.class_source,
        "provider_disagrees": disagrees,
        **describe_reason(record.reason, record.error_class),
    }
