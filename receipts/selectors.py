"""Reads: message lists for the API and pages, and a message's own timeline entries (its
registration and receipts; dlrconsole/timeline.py merges in what the apps above add)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from receipts.errors import describe_reason, provider_disagrees
from receipts.models import Conversion, Message, Receipt
from receipts.phones import mask_number_in
from receipts.statuses import Status


def chain_messages(root_id: int) -> QuerySet[Message]:
    """A chain's messages: its root and the resends made for it.

    Written as two index conditions only (the primary key, `chain_root_id`), so PostgreSQL
    ORs the two index scans. With `status = 'delivered'` beside them the planner could pick the
    status index instead and walk every delivered message: 2.5 ms a resend at 20,000 messages,
    and seconds at 10^8 (bench/decision_latency.py, 2026-12-07).
    """
    return Message.objects.filter(Q(pk=root_id) | Q(chain_root_id=root_id))


def chain_delivered(root: Message) -> bool:
    """Whether the chain's original or any of its resends was delivered."""
    return root.pk in delivered_chains([root.pk])


def delivered_chains(root_ids: Collection[int]) -> set[int]:
    """Of these chains (by their original's id), those whose original or any resend was
    delivered: one query however many. The statuses are compared here, not in the query: see
    chain_messages."""
    if not root_ids:
        return set()
    rows = Message.objects.filter(Q(pk__in=root_ids) | Q(chain_root_id__in=root_ids))
    delivered: set[int] = set()
    for pk, chain_root_id, status in rows.values_list("pk", "chain_root_id", "status"):
        if status == Status.DELIVERED:
            delivered.update(root for root in (pk, chain_root_id) if root in root_ids)
    return delivered


def message_list() -> QuerySet[Message]:
    # The text kept for resends is never shown by a list or the API: not even loaded. Nor the
    # connection's secrets: decrypting them for every row costs time, and a secret stored under a
    # key since removed would turn a search into an error.
    return Message.objects.select_related("connection").defer("body", "connection__secrets").order_by("-id")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: (
        str  # "registered" | "receipt" | "conversion", and from the apps above "decision" | "attempt" | "notification"
    )
    summary: str
    detail: dict[str, Any]


def receipt_entries(message: Message) -> list[TimelineEntry]:
    """The message's registration and its receipts, as timeline entries."""
    entries = [
        TimelineEntry(
            at=message.submitted_at,
            kind="registered",
            summary=_("Submitted to %(connection)s") % {"connection": message.connection.slug},
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
    return entries


def conversion_entries(message: Message) -> list[TimelineEntry]:
    """What the product reported the recipient did with the message (receipts/conversions.py)."""
    conversions = Conversion.objects.filter(message=message).order_by("converted_at", "id")
    return [
        TimelineEntry(
            at=conversion.converted_at,
            kind="conversion",
            summary=f"Conversion reported: {conversion.get_kind_display().lower()}",
            detail={"kind": conversion.kind, "received_at": conversion.received_at},
        )
        for conversion in conversions
    ]


def mask_entries(entries: list[TimelineEntry], recipient: str) -> list[TimelineEntry]:
    """The entries with the recipient masked wherever it appears: raw payloads and headers
    carry it in the provider's own spellings."""
    return [
        replace(entry, summary=mask_number_in(entry.summary, recipient), detail=mask_number_in(entry.detail, recipient))
        for entry in entries
    ]


def message_detail(pk: int) -> Message:
    """One message for its page; raises Message.DoesNotExist."""
    return Message.objects.select_related("connection", "chain_root").get(pk=pk)


def recipient_other_messages(message: Message, *, limit: int = 10) -> list[Message]:
    """The recipient's latest other messages, newest registered first (message_recipient_idx)."""
    return list(
        Message.objects.filter(recipient=message.recipient)
        .exclude(pk=message.pk)
        .select_related("connection")
        .defer("body", "connection__secrets")
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
