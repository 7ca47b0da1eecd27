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
from typing import Any, NamedTuple

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
    if len(events) == 1:
        # One receipt: one round trip (receipts/store.py), the common case of most providers.
        event = events[0]
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
        change = status_change_for(connection.provider, event, now)
        with transaction.atomic():
            outcome = _ingest_one(connection.provider, receipt, change)
        outcomes = [] if outcome is None else [outcome]
    elif events:
        # What each receipt is and writes is worked out before the transaction: only deciding
        # the outcomes happens under the messages' locks.
        prepared = _prepare_batch(connection.provider, events, now=now, raw_body=raw_body)
        with transaction.atomic():
            outcomes = _ingest_batch(connection.pk, prepared, now=now, headers=headers_json)
    else:
        outcomes = []
    result.duplicates = len(events) - len(outcomes)
    for outcome in outcomes:
        result.count(outcome)
    return result


class PreparedReceipt(NamedTuple):
    """A batch's receipt before its message is read: its event, its dedupe key and what it
    writes on its message (a tuple: one per receipt, see store.BatchReceipt)."""

    event: ReceiptEvent
    dedupe_key: str
    change: StatusChange
    raw_body: str


def _prepare_batch(provider: str, events: list[ReceiptEvent], *, now: datetime, raw_body: str) -> list[PreparedReceipt]:
    """The request's receipts, the same event twice in one request (one dedupe key) kept once: a
    duplicate, as a provider's retry is."""
    unique: dict[str, ReceiptEvent] = {}
    for event in events:
        unique.setdefault(event.dedupe_key(), event)
    return [
        PreparedReceipt(event, key, status_change_for(provider, event, now), event.raw or raw_body)
        for key, event in unique.items()
    ]


def _ingest_batch(connection_id: int, prepared: list[PreparedReceipt], *, now: datetime, headers: str) -> list[str]:
    """Store a request's receipts in a constant number of statements, whatever their number; the
    outcomes of those not stored before.

    The messages are read with their row locks first, so the statuses decided here in memory,
    by the same precedence as a single receipt's conditional UPDATE, are still theirs when
    written: receipts of the same message in one batch apply in order, as if posted one by one."""
    found = store.messages_lock_for_receipts(connection_id, list({p.event.provider_message_id for p in prepared}))
    planned = plan_batch(prepared, found)
    inserted = store.receipts_insert(store.ReceiptBatch(connection_id, now, headers, planned))
    # A receipt stored before never ranks above its message's status (it applied, or was
    # late), so the outcomes planned with it among the others stand for those inserted.
    stored = [(b, p.change) for b, p in zip(planned, prepared, strict=True) if b.dedupe_key in inserted]
    writes, outbox = message_writes(stored, inserted)
    publish_after_commit(store.messages_write(writes, outbox))
    return [b.outcome for b, _ in stored]


def plan_batch(prepared: list[PreparedReceipt], found: dict[str, store.Found]) -> list[BatchReceipt]:
    """Each receipt's row and outcome, in order, against its message's status as moved by the
    receipts before it; a receipt whose message is not registered is parked."""
    statuses = {pmid: message.status for pmid, message in found.items()}
    planned = []
    for p in prepared:
        event, change = p.event, p.change
        pmid = event.provider_message_id
        message = found.get(pmid)
        if message is None:
            message_id, outcome = None, PARKED
        else:
            message_id, current = message.message_id, statuses[pmid]
            if can_advance(current, change.status):
                statuses[pmid] = change.status
                outcome = APPLIED
            else:
                outcome = _not_applied_outcome(current, change.status)
        planned.append(
            BatchReceipt(
                pmid, p.dedupe_key, event.provider_status, change.status, event.error_code, event.error_description,
                change.reason, change.error_class, change.catalog_class, change.class_source,
                event.provider_timestamp, change.network, change.price, change.currency, p.raw_body, message_id,
                outcome,
            )
        )  # fmt: skip
    return planned


APPLIED = ReceiptOutcome.APPLIED.value
PARKED = ReceiptOutcome.PARKED.value


def message_writes(
    stored: list[tuple[BatchReceipt, StatusChange]], ids: dict[str, int]
) -> tuple[list[MessageWrite], list[OutboxRow]]:
    """What the stored receipts write on their messages, as if applied one by one: the last mover's
    status, the last network and price said; an outbox row per receipt that moved its message."""
    # message id → [the last mover's change, the last network, the last price, its currency, now]
    by_message: dict[int, list[Any]] = {}
    outbox = []
    for b, change in stored:
        message_id = b.message_id
        if message_id is None:
            continue
        said = by_message.get(message_id)
        if said is None:
            said = by_message[message_id] = [None, "", None, "", change.now]
        if b.outcome == APPLIED:
            said[0] = change
            outbox.append(OutboxRow(message_id, ids[b.dedupe_key], change.status, change.now))
        if change.network:
            said[1] = change.network
        if change.price is not None:
            said[2], said[3] = change.price, change.currency
        said[4] = change.now
    writes = [MessageWrite(message_id, *said) for message_id, said in by_message.items()]
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
