"""The ingestion flow, the same for every provider: store receipts idempotently, advance
message statuses through the state machine, and record the changes rules must see — all in
one transaction, every write through receipts/store.py (which says how concurrency is safe).

A receipt for a message not registered yet is parked; registration and parking serialize on
the message identity's lock, so a receipt and its message arriving at the same moment are
always linked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from receipts import store
from receipts.errors import classify_error
from receipts.models import Connection, Message, Receipt
from receipts.outbox import publish_after_commit
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.providers.registry import get_adapter
from receipts.statuses import ReceiptOutcome, is_final
from receipts.store import StatusChange, StoredReceipt


@dataclass
class IngestResult:
    received: int = 0
    duplicates: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "duplicates": self.duplicates, **self.outcomes}


def ingest(
    *, connection: Connection, request: WebhookRequest, events: list[ReceiptEvent], headers: dict[str, str]
) -> IngestResult:
    """Store the events of one webhook request. Raises only if the database fails."""
    now = timezone.now()
    raw_body = get_adapter(connection.provider).raw_to_keep(request)
    headers_json = json.dumps(headers, separators=(",", ":"))
    result = IngestResult(received=len(events))
    with transaction.atomic():
        for event in events:
            receipt = StoredReceipt(
                connection_id=connection.pk,
                provider_message_id=event.provider_message_id,
                dedupe_key=event.dedupe_key(),
                provider_status=event.provider_status,
                status=event.status.value,
                receipt_error_code=event.error_code,
                error_description=event.error_description,
                provider_timestamp=event.provider_timestamp,
                raw_body=event.raw or raw_body,
                headers=headers_json,
            )
            outcome = _ingest_one(connection.provider, receipt, status_change_for(connection.provider, event, now))
            if outcome is None:
                result.duplicates += 1
            else:
                result.count(outcome)
    return result


def status_change_for(provider: str, event: ReceiptEvent, now: datetime) -> StatusChange:
    """What the receipt writes on its message; classified in memory, no query. Also what
    receipts/renormalize.py re-derives for stored receipts after a mapping or catalog change."""
    error = classify_error(
        provider=provider, status=event.status.value, error_code=event.error_code, permanent=event.permanent
    )
    return StatusChange(
        status=event.status.value,
        error_code=event.error_code if error.error_class else "",
        reason=error.reason,
        error_class=error.error_class,
        catalog_class=error.catalog_class,
        class_source=error.class_source,
        final_at=final_time(event.provider_timestamp, received_at=now) if is_final(event.status.value) else None,
        now=now,
        network=event.network,
        price=event.price,
        currency=event.currency,
    )


def final_time(provider_timestamp: datetime | None, *, received_at: datetime) -> datetime:
    """When the message reached its final status: the provider's time, but never later than we
    heard of it. A provider clock running ahead (ReceiptEvent keeps up to a day of it) must not
    put a delivery in the future of the dashboards and the missing-receipt sweep."""
    if provider_timestamp is None:
        return received_at
    return min(provider_timestamp, received_at)


def _ingest_one(provider: str, receipt: StoredReceipt, change: StatusChange) -> str | None:
    """The receipt's outcome, or None for a duplicate."""
    stored = store.store_and_advance(receipt, change)
    if stored is None:
        return None  # the same event was stored before: a provider retry
    if stored.outbox_id is not None:
        publish_after_commit([stored.outbox_id])
        return ReceiptOutcome.APPLIED.value
    if stored.message_id is not None:
        return _record_not_applied(message_id=stored.message_id, receipt_id=stored.receipt_id, change=change)
    message_id = _link_after_lock(receipt.connection_id, receipt.provider_message_id, stored.receipt_id)
    if message_id is None:
        return ReceiptOutcome.PARKED.value
    return _apply(message_id=message_id, receipt_id=stored.receipt_id, change=change)


def _link_after_lock(connection_id: int, provider_message_id: str, receipt_id: int) -> int | None:
    """The message may have been registered after our INSERT looked; look again under the lock."""
    store.lock_message_identity(connection_id, provider_message_id)
    message_id = (
        Message.objects.filter(connection_id=connection_id, provider_message_id=provider_message_id)
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is not None:
        store.receipt_link(receipt_id=receipt_id, message_id=message_id)
    return message_id


def _apply(*, message_id: int, receipt_id: int, change: StatusChange) -> str:
    """Move a stored receipt's message if the state machine allows; the receipt's outcome."""
    outbox_id = store.advance(message_id=message_id, receipt_id=receipt_id, change=change)
    if outbox_id is not None:
        publish_after_commit([outbox_id])
        return ReceiptOutcome.APPLIED.value
    return _record_not_applied(message_id=message_id, receipt_id=receipt_id, change=change)


def _record_not_applied(*, message_id: int, receipt_id: int, change: StatusChange) -> str:
    """The rare path: the receipt did not move its message; say why on the receipt."""
    current = Message.objects.filter(pk=message_id).values_list("status", flat=True).get()
    outcome = _not_applied_outcome(current, change.status)
    store.receipt_set_outcome(receipt_id=receipt_id, outcome=outcome)
    store.message_note_receipt(message_id=message_id, change=change)
    return outcome


def _not_applied_outcome(current: str, new: str) -> str:
    if current == new:
        return ReceiptOutcome.SAME.value
    if is_final(current) and is_final(new):
        return ReceiptOutcome.CONFLICT.value
    return ReceiptOutcome.LATE.value


def link_parked_receipts(message: Message) -> list[str]:
    """Apply, in arrival order, the receipts that came before `message` was registered.

    Called by registration inside its transaction, holding the identity lock."""
    outcomes = []
    parked = Receipt.objects.filter(
        connection_id=message.connection_id, provider_message_id=message.provider_message_id, message__isnull=True
    ).order_by("id")
    for receipt in parked:
        store.receipt_link(receipt_id=receipt.pk, message_id=message.pk)
        # As classified on arrival, with the provider's permanence flag the receipt carried.
        change = StatusChange(
            status=receipt.status,
            error_code=receipt.error_code if receipt.error_class else "",
            reason=receipt.reason,
            error_class=receipt.error_class,
            catalog_class=receipt.catalog_class,
            class_source=receipt.class_source,
            final_at=final_time(receipt.provider_timestamp, received_at=receipt.received_at)
            if is_final(receipt.status)
            else None,
            now=timezone.now(),
            network=receipt.network,
            price=receipt.price,
            currency=receipt.currency,
        )
        outcomes.append(_apply(message_id=message.pk, receipt_id=receipt.pk, change=change))
    return outcomes
