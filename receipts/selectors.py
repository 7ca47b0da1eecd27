"""Reads: message lists for the API and pages, and a message's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from receipts.errors import describe_reason
from receipts.models import ClassSource, Message, Receipt


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
    return sorted(entries, key=lambda entry: entry.at)


def _decision_entries(message: Message) -> list[TimelineEntry]:
    """The rules' decisions on this message, and the attempts they scheduled."""
    from retries.models import Attempt, Decision

    entries = []
    for decision in Decision.objects.filter(message=message).select_related("rule").order_by("created_at", "id"):
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
                },
            )
        )
    for attempt in Attempt.objects.filter(decision__message=message).order_by("due_at", "id"):
        entries.append(
            TimelineEntry(
                at=attempt.finished_at or attempt.due_at,
                kind="attempt",
                summary=f"Attempt {attempt.number}: {attempt.get_outcome_display()}",
                detail={
                    "attempt_id": attempt.pk,
                    "number": attempt.number,
                    "outcome": attempt.outcome,
                    "due_at": attempt.due_at,
                    "detail": attempt.detail,
                    "resend_message_id": attempt.resend_id,
                },
            )
        )
    return entries


def _receipt_summary(receipt: Receipt) -> str:
    summary = f"{receipt.provider_status} → {receipt.status} ({receipt.get_outcome_display()})"
    if receipt.reason:
        summary += f": {receipt.reason}, {receipt.error_class}"
    return summary


def receipt_error(record: Message | Receipt) -> dict[str, Any]:
    """A message's or receipt's error as the API shows it: reason, effective class, the
    catalog's class and which of the two decided, and what to do and say about it."""
    disagrees = record.class_source == ClassSource.PROVIDER and record.error_class != record.catalog_class
    return {
        "reason": record.reason,
        "error_class": record.error_class,
        "catalog_class": record.catalog_class,
        "class_source": record.class_source,
        "provider_disagrees": disagrees,
        **describe_reason(record.reason, record.error_class),
    }
