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
from receipts.statuses import ReceiptOutcome, can_advance, is_final
from receipts.store import BatchReceipt, MessageWrite, OutboxRow, StatusChange, StoredReceipt


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
    items = [
        (
            StoredReceipt(
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
            ),
            status_change_for(connection.provider, event, now),
        )
        for event in events
    ]
    with transaction.atomic():
        if len(items) == 1:
            # One receipt: one round trip (receipts/store.py), the common case of most providers.
            outcome = _ingest_one(connection.provider, *items[0])
            outcomes = [] if outcome is None else [outcome]
        else:
            outcomes = _ingest_batch(connection.pk, items) if items else []
    result.duplicates = len(items) - len(outcomes)
    for outcome in outcomes:
        result.count(outcome)
    return result


def _ingest_batch(connection_id: int, items: list[tuple[StoredReceipt, StatusChange]]) -> list[str]:
    """Store a request's receipts in a constant number of statements, whatever their number; the
    outcomes of those not stored before.

    The messages are read with their row locks first, so the statuses decided here in memory,
    by the same precedence as a single receipt's conditional UPDATE, are still theirs when
    written: receipts of the same message in one batch apply in order, as if posted one by one."""
    seen: set[str] = set()
    unique = []
    for receipt, change in items:
        if receipt.dedupe_key not in seen:  # the same event twice in one request: a duplicate
            seen.add(receipt.dedupe_key)
            unique.append((receipt, change))
    found = store.messages_lock_for_receipts(
        connection_id, list({receipt.provider_message_id for receipt, _ in unique})
    )
    planned = plan_batch(unique, found)
    inserted = store.receipts_insert(planned)
    # A receipt stored before never ranks above its message's status (it applied, or was
    # late), so the outcomes planned with it among the others stand for those inserted.
    stored = [b for b in planned if b.receipt.dedupe_key in inserted]
    writes, outbox = message_writes(stored, inserted)
    publish_after_commit(store.messages_write(writes, outbox))
    return [b.outcome for b in stored]


def plan_batch(items: list[tuple[StoredReceipt, StatusChange]], found: dict[str, store.Found]) -> list[BatchReceipt]:
    """Each receipt's outcome, in order, against its message's status as moved by the receipts
    before it; a receipt whose message is not registered is parked."""
    statuses = {pmid: message.status for pmid, message in found.items()}
    planned = []
    for receipt, change in items:
        message = found.get(receipt.provider_message_id)
        if message is None:
            planned.append(BatchReceipt(receipt, change, None, ReceiptOutcome.PARKED.value))
            continue
        current = statuses[receipt.provider_message_id]
        if can_advance(current, change.status):
            statuses[receipt.provider_message_id] = change.status
            outcome = ReceiptOutcome.APPLIED.value
        else:
            outcome = _not_applied_outcome(current, change.status)
        planned.append(BatchReceipt(receipt, change, message.message_id, outcome))
    return planned


def message_writes(stored: list[BatchReceipt], ids: dict[str, int]) -> tuple[list[MessageWrite], list[OutboxRow]]:
    """What the stored receipts write on their messages, as if applied one by one: the last mover's
    status, the last network and price said; an outbox row per receipt that moved its message."""
    by_message: dict[int, list[BatchReceipt]] = {}
    for b in stored:
        if b.message_id is not None:
            by_message.setdefault(b.message_id, []).append(b)
    writes, outbox = [], []
    for message_id, receipts in by_message.items():
        movers = [b for b in receipts if b.outcome == ReceiptOutcome.APPLIED]
        priced = [b.change for b in receipts if b.change.price is not None]
        writes.append(
            MessageWrite(
                message_id=message_id,
                moved=movers[-1].change if movers else None,
                network=next((b.change.network for b in reversed(receipts) if b.change.network), ""),
                price=priced[-1].price if priced else None,
                currency=priced[-1].currency if priced else "",
                now=receipts[-1].change.now,
            )
        )
        outbox += [OutboxRow(message_id, ids[b.receipt.dedupe_key], b.change.status, b.change.now) for b in movers]
    outbox.sort(key=lambda row: row.receipt_id)
    return writes, outbox


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
