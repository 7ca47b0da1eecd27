"""The ingestion flow, the same for every provider: store receipts idempotently, advance
message statuses through the state machine, and record the changes rules must see — all in
one transaction.

Concurrency rests on the database, not on locks held in Python:
- a provider's retries collide on the unique (connection, dedupe_key) and are dropped by
  `ON CONFLICT DO NOTHING`;
- a status moves only through a conditional UPDATE whose WHERE clause names the statuses it may
  move from; PostgreSQL re-checks that clause after waiting for a concurrent writer's lock, so
  of two racing receipts only one applies;
- a receipt for a message not registered yet is parked; registration and parking serialize on
  a transaction-scoped advisory lock per (connection, provider message id) so that a receipt
  and its message arriving at the same moment are always linked (see `lock_message_identity`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import connection as db
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from receipts.errors import classify_error
from receipts.models import Connection, Message, Receipt
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.statuses import ReceiptOutcome, is_final, statuses_below
from retries.outbox import outbox_record, publish_after_commit


@dataclass
class IngestResult:
    received: int = 0
    duplicates: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "duplicates": self.duplicates, **self.outcomes}


INSERT_RECEIPT_SQL = """
INSERT INTO receipts_receipt (
    connection_id, provider_message_id, dedupe_key, provider_status, status, error_code,
    error_description, reason, error_class, catalog_class, class_source,
    provider_timestamp, received_at, raw_body, headers, message_id, outcome
)
SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, m.id,
       CASE WHEN m.id IS NULL THEN 'parked' ELSE 'applied' END
FROM (SELECT 1) AS one
LEFT JOIN receipts_message m ON m.connection_id = %s AND m.provider_message_id = %s
WHERE TRUE
ON CONFLICT (connection_id, dedupe_key) DO NOTHING
RETURNING id, message_id
"""
# `WHERE TRUE` is not decoration: SQLite needs it to tell an INSERT … SELECT's ON CONFLICT
# from a join constraint. The outcome written here is provisional; `_apply` corrects it in the
# rare cases the receipt does not move its message.


def ingest(
    *, connection: Connection, request: WebhookRequest, events: list[ReceiptEvent], headers: dict[str, str]
) -> IngestResult:
    """Store the events of one webhook request. Raises only if the database fails."""
    now = timezone.now()
    raw_body = request.body.decode("utf-8", errors="replace") or request.url.partition("?")[2]
    headers_json = json.dumps(headers, separators=(",", ":"))
    result = IngestResult(received=len(events))
    with transaction.atomic():
        for event in events:
            outcome = _ingest_event(connection, event, now=now, raw_body=raw_body, headers_json=headers_json)
            if outcome is None:
                result.duplicates += 1
            else:
                result.count(outcome)
    return result


def _ingest_event(
    connection: Connection, event: ReceiptEvent, *, now: datetime, raw_body: str, headers_json: str
) -> str | None:
    # In memory (the catalog and its cached overrides): no query per receipt.
    error = classify_error(
        provider=connection.provider,
        status=event.status.value,
        error_code=event.error_code,
        permanent=event.permanent,
    )
    with db.cursor() as cursor:
        cursor.execute(
            INSERT_RECEIPT_SQL,
            [
                connection.pk,
                event.provider_message_id,
                event.dedupe_key(),
                event.provider_status,
                event.status.value,
                event.error_code,
                event.error_description,
                error.reason,
                error.error_class,
                error.catalog_class,
                error.class_source,
                event.provider_timestamp,
                now,
                event.raw or raw_body,
                headers_json,
                connection.pk,
                event.provider_message_id,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None  # the same event was stored before: a provider retry
    receipt_id, message_id = row
    if message_id is None:
        message_id = _link_after_lock(connection.pk, event.provider_message_id, receipt_id)
        if message_id is None:
            return ReceiptOutcome.PARKED.value
    return _apply(
        message_id=message_id,
        receipt_id=receipt_id,
        status=event.status.value,
        error_code=event.error_code,
        error=ReceiptError(error.reason, error.error_class, error.catalog_class, error.class_source),
        event_time=event.provider_timestamp or now,
        now=now,
    )


def _link_after_lock(connection_id: int, provider_message_id: str, receipt_id: int) -> int | None:
    """The message may have been registered after our INSERT looked; look again under the lock."""
    lock_message_identity(connection_id, provider_message_id)
    message_id = (
        Message.objects.filter(connection_id=connection_id, provider_message_id=provider_message_id)
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is not None:
        Receipt.objects.filter(pk=receipt_id).update(message_id=message_id, outcome=ReceiptOutcome.APPLIED)
    return message_id


def lock_message_identity(connection_id: int, provider_message_id: str) -> None:
    """Serialize registration and parking of one provider message id until commit.

    Without it, a receipt inserted while its message is being registered is invisible to the
    registration (not committed yet) and finds no message itself: it would stay parked forever.
    SQLite (demo only) has one writer at a time, so there is nothing to serialize.
    """
    if db.vendor != "postgresql":
        return
    digest = hashlib.blake2b(f"{connection_id}:{provider_message_id}".encode(), digest_size=8).digest()
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)])


@dataclass(frozen=True)
class ReceiptError:
    """The error catalog's reading of a receipt, as stored on it and copied to its message."""

    reason: str
    error_class: str
    catalog_class: str
    class_source: str


def _apply(
    *,
    message_id: int,
    receipt_id: int,
    status: str,
    error_code: str,
    error: ReceiptError,
    event_time: datetime,
    now: datetime,
) -> str:
    """Move the message to `status` if the state machine allows; return the receipt's outcome."""
    change = StatusChange(
        status=status,
        error_code=error_code if error.error_class else "",
        reason=error.reason,
        error_class=error.error_class,
        catalog_class=error.catalog_class,
        class_source=error.class_source,
        final_at=event_time if is_final(status) else None,
        now=now,
    )
    advance = _advance_postgresql if db.vendor == "postgresql" else _advance_portable
    outbox_id = advance(message_id=message_id, receipt_id=receipt_id, change=change)
    if outbox_id is not None:
        publish_after_commit([outbox_id])
        return ReceiptOutcome.APPLIED.value
    current = Message.objects.filter(pk=message_id).values_list("status", flat=True).get()
    outcome = _not_applied_outcome(current, status)
    Receipt.objects.filter(pk=receipt_id).update(outcome=outcome)
    Message.objects.filter(pk=message_id, first_receipt_at__isnull=True).update(first_receipt_at=now)
    return outcome


@dataclass(frozen=True)
class StatusChange:
    status: str
    error_code: str
    reason: str
    error_class: str
    catalog_class: str
    class_source: str
    final_at: datetime | None  # set when the new status is final
    now: datetime


ADVANCE_SQL = """
WITH moved AS (
    UPDATE receipts_message
    SET status = %(status)s, error_code = %(error_code)s, reason = %(reason)s, error_class = %(error_class)s,
        catalog_class = %(catalog_class)s, class_source = %(class_source)s,
        status_changed_at = %(now)s, first_receipt_at = COALESCE(first_receipt_at, %(now)s),
        final_at = COALESCE(%(final_at)s, final_at)
    WHERE id = %(message_id)s AND status = ANY(%(below)s)
    RETURNING id
)
INSERT INTO retries_outboxevent (message_id, receipt_id, kind, status, created_at, dispatched_at, dispatch_count)
SELECT id, %(receipt_id)s, 'status_changed', %(status)s, %(now)s, %(now)s, 1 FROM moved
RETURNING id
"""


def _advance_postgresql(*, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
    """The conditional UPDATE and its outbox row in one statement: one round trip on the hot
    path. Within the CTE the UPDATE keeps its row lock and re-check under concurrency."""
    params = {
        **asdict(change),
        "message_id": message_id,
        "receipt_id": receipt_id,
        "below": statuses_below(change.status),
    }
    with db.cursor() as cursor:
        cursor.execute(ADVANCE_SQL, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _advance_portable(*, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
    """The same as `_advance_postgresql` for the SQLite demo, in two statements."""
    changes: dict[str, object] = {
        "status": change.status,
        "error_code": change.error_code,
        "reason": change.reason,
        "error_class": change.error_class,
        "catalog_class": change.catalog_class,
        "class_source": change.class_source,
        "status_changed_at": change.now,
        "first_receipt_at": Coalesce(F("first_receipt_at"), Value(change.now)),
    }
    if change.final_at is not None:
        changes["final_at"] = change.final_at
    if not Message.objects.filter(pk=message_id, status__in=statuses_below(change.status)).update(**changes):
        return None
    return outbox_record(message_id=message_id, receipt_id=receipt_id, status=change.status, now=change.now)


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
        Receipt.objects.filter(pk=receipt.pk).update(message_id=message.pk, outcome=ReceiptOutcome.APPLIED)
        outcomes.append(
            _apply(
                message_id=message.pk,
                receipt_id=receipt.pk,
                status=receipt.status,
                error_code=receipt.error_code,
                # As classified on arrival, with the provider's flag the receipt carried.
                error=ReceiptError(receipt.reason, receipt.error_class, receipt.catalog_class, receipt.class_source),
                event_time=receipt.provider_timestamp or receipt.received_at,
                now=timezone.now(),
            )
        )
    return outcomes
