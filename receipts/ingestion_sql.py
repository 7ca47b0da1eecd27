"""The hot path's SQL. On PostgreSQL one receipt is one round trip (STORE_AND_ADVANCE_SQL);
SQLite, for the demo only, runs the same steps as separate statements."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import connection as db
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from receipts.models import Message
from receipts.statuses import statuses_below
from retries.outbox import outbox_record


@dataclass(frozen=True)
class StoredReceipt:
    """A receipt's columns as the hot path inserts them."""

    connection_id: int
    provider_message_id: str
    dedupe_key: str
    provider_status: str
    status: str
    receipt_error_code: str
    error_description: str
    provider_timestamp: datetime | None
    raw_body: str
    headers: str


@dataclass(frozen=True)
class StatusChange:
    """What a receipt writes on its message when the state machine lets it move it."""

    status: str
    error_code: str  # empty unless the status is a classified failure
    reason: str
    error_class: str
    catalog_class: str
    class_source: str
    final_at: datetime | None  # set when the new status is final
    now: datetime


@dataclass(frozen=True)
class Stored:
    receipt_id: int
    message_id: int | None  # None: parked, the message is not registered (yet)
    outbox_id: int | None  # None: the message did not move


# Each data-modifying step sees the previous one's RETURNING rows. The UPDATE still waits for a
# concurrent writer's row lock and re-checks its WHERE clause, exactly as on its own; the
# INSERT still waits for a concurrent insert of the same dedupe key and then does nothing.
STORE_AND_ADVANCE_SQL = """
WITH stored AS (
    INSERT INTO receipts_receipt (
        connection_id, provider_message_id, dedupe_key, provider_status, status, error_code,
        error_description, reason, error_class, catalog_class, class_source,
        provider_timestamp, received_at, raw_body, headers, message_id, outcome
    )
    SELECT %(connection_id)s, %(provider_message_id)s, %(dedupe_key)s, %(provider_status)s, %(status)s,
           %(receipt_error_code)s, %(error_description)s, %(reason)s, %(error_class)s, %(catalog_class)s,
           %(class_source)s, %(provider_timestamp)s, %(now)s, %(raw_body)s, %(headers)s, m.id,
           CASE WHEN m.id IS NULL THEN 'parked' ELSE 'applied' END
    FROM (SELECT 1) AS one
    LEFT JOIN receipts_message m
        ON m.connection_id = %(connection_id)s AND m.provider_message_id = %(provider_message_id)s
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING id, message_id
),
moved AS (
    UPDATE receipts_message
    SET status = %(status)s, error_code = %(error_code)s, reason = %(reason)s, error_class = %(error_class)s,
        catalog_class = %(catalog_class)s, class_source = %(class_source)s,
        status_changed_at = %(now)s, first_receipt_at = COALESCE(first_receipt_at, %(now)s),
        final_at = COALESCE(%(final_at)s, final_at)
    WHERE id = (SELECT message_id FROM stored) AND status = ANY(%(below)s)
    RETURNING id
),
recorded AS (
    INSERT INTO retries_outboxevent (message_id, receipt_id, kind, status, created_at, dispatched_at, dispatch_count)
    SELECT moved.id, stored.id, 'status_changed', %(status)s, %(now)s, %(now)s, 1 FROM moved, stored
    RETURNING id
)
SELECT stored.id, stored.message_id, (SELECT id FROM recorded) FROM stored
"""

# The same insert for SQLite. `WHERE TRUE` is not decoration: SQLite needs it to tell an
# INSERT … SELECT's ON CONFLICT from a join constraint.
INSERT_RECEIPT_SQL = """
INSERT INTO receipts_receipt (
    connection_id, provider_message_id, dedupe_key, provider_status, status, error_code,
    error_description, reason, error_class, catalog_class, class_source,
    provider_timestamp, received_at, raw_body, headers, message_id, outcome
)
SELECT %(connection_id)s, %(provider_message_id)s, %(dedupe_key)s, %(provider_status)s, %(status)s,
       %(receipt_error_code)s, %(error_description)s, %(reason)s, %(error_class)s, %(catalog_class)s,
       %(class_source)s, %(provider_timestamp)s, %(now)s, %(raw_body)s, %(headers)s, m.id,
       CASE WHEN m.id IS NULL THEN 'parked' ELSE 'applied' END
FROM (SELECT 1) AS one
LEFT JOIN receipts_message m ON m.connection_id = %(connection_id)s AND m.provider_message_id = %(provider_message_id)s
WHERE TRUE
ON CONFLICT (connection_id, dedupe_key) DO NOTHING
RETURNING id, message_id
"""

# Moving an already stored receipt's message (parked receipts at registration).
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


def store_and_advance(receipt: StoredReceipt, change: StatusChange) -> Stored | None:
    """Store a receipt and move its message if allowed; None when it was stored before."""
    params = {**asdict(receipt), **asdict(change)}
    if db.vendor != "postgresql":
        return _store_and_advance_portable(params, change)
    params["below"] = statuses_below(change.status)
    with db.cursor() as cursor:
        cursor.execute(STORE_AND_ADVANCE_SQL, params)
        row = cursor.fetchone()
    return Stored(*row) if row else None


def _store_and_advance_portable(params: dict[str, Any], change: StatusChange) -> Stored | None:
    with db.cursor() as cursor:
        cursor.execute(INSERT_RECEIPT_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    receipt_id, message_id = row
    outbox_id = advance(message_id=message_id, receipt_id=receipt_id, change=change) if message_id else None
    return Stored(receipt_id, message_id, outbox_id)


def advance(*, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
    """Move a message for a stored receipt if allowed; the outbox row's id, or None."""
    if db.vendor != "postgresql":
        return _advance_portable(message_id=message_id, receipt_id=receipt_id, change=change)
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
