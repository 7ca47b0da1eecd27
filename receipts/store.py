"""The one module that writes receipts, messages and the outbox.

Two backends behind the same functions, chosen once per process from the database engine:
PostgreSQL stores a receipt, moves its message and records the outbox row in one round trip
(one statement of three data-modifying CTEs); the portable backend, for the SQLite demo, runs
the same statements one by one. Both share the statement texts built here from one list of
columns each, so the status transition is written once.

Concurrency rests on the database, not on locks held in Python:
- a provider's retries collide on the unique (connection, dedupe_key) and are dropped by
  `ON CONFLICT DO NOTHING`;
- a status moves only through a conditional UPDATE whose WHERE clause names the statuses it may
  move from; PostgreSQL re-checks that clause after waiting for a concurrent writer's row lock,
  so of two racing receipts only one applies;
- registration and parking of one provider message id serialize on a transaction-scoped
  advisory lock (`lock_message_identity`).

A webhook's batch of events (an Infobip POST carries up to 1,000) is written set-based, in a
constant number of statements whatever its size (`receipts_store_batch`): its messages are read
and row-locked in id order, the receipts inserted in one `INSERT … SELECT FROM unnest(…) ON
CONFLICT DO NOTHING`, then the messages moved, the outbox rows and the rollup queue written in
one statement. Holding the messages' row locks, the new statuses are decided in memory by the
same precedence (receipts/ingestion.py), so no receipt of a concurrent request can slip
between the read and the write.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import psycopg
from django.conf import settings
from django.db import connection as db
from django.db.models import F, Q, QuerySet

from dlrconsole.lib.array_cursor import array_cursor
from dlrconsole.lib.request_id import MAX_LENGTH as REQUEST_ID_MAX_LENGTH
from dlrconsole.lib.request_id import current_request_id
from receipts.models import Message, OutboxEvent, Receipt, RollupPending
from receipts.statuses import ReceiptOutcome, statuses_below


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
    headers: str  # JSON text


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
    # What the receipt says of the network and the price; "" and None when it does not.
    network: str = ""
    price: Decimal | None = None
    currency: str = ""

    # Written here, not generated: a frozen dataclass's own __init__ sets each field through
    # object.__setattr__ (1.6 µs for these 11, one StatusChange per receipt of a batch). The
    # parameters are the fields above, in their order and with their defaults (a test pins them).
    def __init__(
        self,
        status: str,
        error_code: str,
        reason: str,
        error_class: str,
        catalog_class: str,
        class_source: str,
        final_at: datetime | None,
        now: datetime,
        network: str = "",
        price: Decimal | None = None,
        currency: str = "",
    ) -> None:
        self.__dict__.update(
            status=status, error_code=error_code, reason=reason, error_class=error_class,
            catalog_class=catalog_class, class_source=class_source, final_at=final_at, now=now, network=network,
            price=price, currency=currency,
        )  # fmt: skip


@dataclass(frozen=True)
class Stored:
    receipt_id: int
    message_id: int | None  # None: parked, the message is not registered (yet)
    outbox_id: int | None  # None: the message did not move


# receipts_receipt column → the value inserted. The message is found by the same join in both
# backends; a receipt without one is parked until its message is registered.
RECEIPT_COLUMNS = {
    "connection_id": "%(connection_id)s",
    "provider_message_id": "%(provider_message_id)s",
    "dedupe_key": "%(dedupe_key)s",
    "provider_status": "%(provider_status)s",
    "status": "%(status)s",
    "error_code": "%(receipt_error_code)s",
    "error_description": "%(error_description)s",
    "reason": "%(reason)s",
    "error_class": "%(error_class)s",
    "catalog_class": "%(catalog_class)s",
    "class_source": "%(class_source)s",
    "provider_timestamp": "%(provider_timestamp)s",
    "received_at": "%(now)s",
    # The network and price come with the StatusChange: a parked receipt keeps them too.
    "network": "%(network)s",
    # Typed: a price is often absent, and a NULL parameter alone tells the server no type.
    "price": "CAST(%(price)s AS NUMERIC)",
    "currency": "%(currency)s",
    "raw_body": "%(raw_body)s",
    "headers": "%(headers)s",
    "message_id": "m.id",
    "outcome": f"CASE WHEN m.id IS NULL THEN '{ReceiptOutcome.PARKED}' ELSE '{ReceiptOutcome.APPLIED}' END",
}
# The status transition: receipts_message column → the value a moving receipt writes.
TRANSITION_COLUMNS = {
    "status": "%(status)s",
    "error_code": "%(error_code)s",
    "reason": "%(reason)s",
    "error_class": "%(error_class)s",
    "catalog_class": "%(catalog_class)s",
    "class_source": "%(class_source)s",
    "status_changed_at": "%(now)s",
    "first_receipt_at": "COALESCE(first_receipt_at, %(now)s)",
    "final_at": "COALESCE(%(final_at)s, final_at)",
}
# What any receipt of a message tells about it, whether or not it moves its status: the network
# and the price when it says them (a provider's price wins over the price list's).
NOTED_COLUMNS = {
    "first_receipt_at": "COALESCE(first_receipt_at, %(now)s)",
    "network": "COALESCE(NULLIF(%(network)s, ''), network)",
    "cost": "COALESCE(CAST(%(price)s AS NUMERIC), cost)",
    "currency": "CASE WHEN CAST(%(price)s AS NUMERIC) IS NULL THEN currency ELSE %(currency)s END",
}
TRANSITION_COLUMNS |= NOTED_COLUMNS
OUTBOX_COLUMNS = "message_id, receipt_id, kind, status, created_at, dispatched_at, dispatch_count, request_id"

# `WHERE TRUE` is for SQLite, which otherwise reads an INSERT … SELECT's ON CONFLICT as a join
# constraint; PostgreSQL ignores it.
INSERT_RECEIPT_SQL = f"""
INSERT INTO receipts_receipt ({", ".join(RECEIPT_COLUMNS)})
SELECT {", ".join(RECEIPT_COLUMNS.values())}
FROM (SELECT 1) AS one
LEFT JOIN receipts_message m ON m.connection_id = %(connection_id)s AND m.provider_message_id = %(provider_message_id)s
WHERE TRUE
ON CONFLICT (connection_id, dedupe_key) DO NOTHING
RETURNING id, message_id
"""


def transition_sql(message_id: str, below: Sequence[str]) -> str:
    """UPDATE … RETURNING id moving message `message_id` (an SQL expression) if its status is
    one of `below` (the statuses the new one outranks, as parameters below_0, below_1, …)."""
    assignments = ", ".join(f"{column} = {value}" for column, value in TRANSITION_COLUMNS.items())
    # Nothing ranks below `queued`: a receipt saying "queued" never moves a message.
    allowed = f"status IN ({', '.join(f'%(below_{i})s' for i in range(len(below)))})" if below else "FALSE"
    return f"UPDATE receipts_message SET {assignments} WHERE id = {message_id} AND {allowed} RETURNING id"


@cache
def _below_params(status: str) -> dict[str, str]:
    return {f"below_{i}": below for i, below in enumerate(statuses_below(status))}


def _transition_params(change: StatusChange) -> dict[str, Any]:
    # vars(), not dataclasses.asdict(): no deep copy of values that are all immutable, on the hot path.
    return {**vars(change), **_below_params(change.status)}


def _pending_sql(message_id: str) -> str:
    """The message's rollup contribution may have changed (receipts/rollups): queue it."""
    return f"INSERT INTO receipts_rolluppending (message_id) SELECT {message_id}"


def _record_sql(message_id: str, receipt_id: str) -> str:
    return (
        f"INSERT INTO receipts_outboxevent ({OUTBOX_COLUMNS}) "
        f"SELECT {message_id}, {receipt_id}, '{OutboxEvent.Kind.STATUS_CHANGED}', %(status)s, %(now)s, %(now)s, 1, "
        "%(request_id)s"
    )


def _request_id() -> str:
    """The id of the request or task writing the outbox row, so that the event's consumers log
    under it even when the sweeper publishes it; "" outside one (a management command). A
    task's id comes from its header unchecked: one that would not fit is left out, not refused."""
    request_id = current_request_id() or ""
    return request_id if len(request_id) <= REQUEST_ID_MAX_LENGTH else ""


# The statements differ only by how many statuses rank below the new one: built once per status.
@cache
def _store_and_advance_sql(status: str) -> str:
    return (
        f"WITH stored AS ({INSERT_RECEIPT_SQL}), "
        f"moved AS ({transition_sql('(SELECT message_id FROM stored)', statuses_below(status))}), "
        f"recorded AS ({_record_sql('moved.id', 'stored.id')} FROM moved, stored RETURNING id), "
        f"pending AS ({_pending_sql('moved.id')} FROM moved) "
        "SELECT stored.id, stored.message_id, (SELECT id FROM recorded) FROM stored"
    )


@cache
def _advance_sql(status: str) -> str:
    return (
        f"WITH moved AS ({transition_sql('%(message_id)s', statuses_below(status))}), "
        f"pending AS ({_pending_sql('moved.id')} FROM moved) "
        f"{_record_sql('id', '%(receipt_id)s')} FROM moved RETURNING id"
    )


def _execute_prepared(sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run one of the hot path's statements and fetch its row, prepared once per connection.

    Django's cursors bind parameters on the client, so PostgreSQL plans a statement again on
    every call; planning the three-CTE statement took as much server time as running it
    (0.15 ms each, EXPLAIN ANALYZE), and under load the server's CPU is what the webhook waits
    for. Behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode
    before 1.21) DLR_DB_PREPARED_STATEMENTS=0 falls back to Django's cursor."""
    if not settings.DLR_DB_PREPARED_STATEMENTS:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    db.ensure_connection()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


# A batch of receipts (receipts_store_batch).


class Found(NamedTuple):
    """A message a batch's receipts name, as read under its row lock."""

    message_id: int
    status: str


# A batch's objects are tuples (NamedTuple), not frozen dataclasses: a frozen dataclass sets
# each field through object.__setattr__, ~1.6 µs a receipt for each of these, and a batch of
# 1,000 makes one or two per receipt.
class BatchReceipt(NamedTuple):
    """A receipt of a batch as its receipts_receipt row (the columns that differ between the
    batch's receipts, in BATCH_RECEIPT_COLUMNS' order), with what ingestion decided for it under
    the messages' locks."""

    provider_message_id: str
    dedupe_key: str
    provider_status: str
    status: str
    error_code: str
    error_description: str
    reason: str
    error_class: str
    catalog_class: str
    class_source: str
    provider_timestamp: datetime | None
    network: str
    price: Decimal | None
    currency: str
    raw_body: str
    message_id: int | None  # None: parked
    outcome: str


@dataclass(frozen=True)
class ReceiptBatch:
    """A request's receipts as one batch: what they share (the connection, when they were
    received, the request's kept headers as JSON text), and each receipt's own row."""

    connection_id: int
    received_at: datetime
    headers: str
    receipts: Sequence[BatchReceipt]


class MessageWrite(NamedTuple):
    """What a batch's stored receipts write on one message: the last one that moved it (None if
    none did), and what the receipts said last of its network and price."""

    message_id: int
    moved: StatusChange | None
    network: str
    price: Decimal | None
    currency: str
    now: datetime


class OutboxRow(NamedTuple):
    message_id: int
    receipt_id: int
    status: str
    now: datetime


IDENTITY_LOCK_BUCKETS = 256
# A namespace of our own among the database's advisory locks.
_IDENTITY_LOCK_BASE = 0x444C52_00000000


def _identity_lock_key(connection_id: int, provider_message_id: str) -> int:
    """The advisory lock of a provider message id. Ids share IDENTITY_LOCK_BUCKETS locks: a
    batch of 1,000 parked receipts takes at most that many, well inside the server's shared lock
    table (max_locks_per_transaction x connections); two ids sharing one only wait for each other."""
    digest = hashlib.blake2b(f"{connection_id}:{provider_message_id}".encode(), digest_size=8).digest()
    return _IDENTITY_LOCK_BASE + int.from_bytes(digest, "big") % IDENTITY_LOCK_BUCKETS


# The receipts_receipt columns a batch shares, bound once; the others are BatchReceipt's fields.
SHARED_RECEIPT_COLUMNS = ("connection_id", "received_at", "headers")
BATCH_RECEIPT_COLUMNS = BatchReceipt._fields
assert set(RECEIPT_COLUMNS) == {*SHARED_RECEIPT_COLUMNS, *BATCH_RECEIPT_COLUMNS}


# The SQL types of the columns a batch passes as arrays (text when not named).
_SQL_TYPES = {
    "connection_id": "bigint", "provider_timestamp": "timestamptz", "received_at": "timestamptz",
    "price": "numeric", "message_id": "bigint", "final_at": "timestamptz", "now": "timestamptz", "headers": "jsonb",
}  # fmt: skip


def _sql_type(name: str) -> str:
    return _SQL_TYPES.get(name, "text")


# One row per receipt, in the batch's order (ids follow it); a receipt stored before, or by a
# concurrent request, is dropped by the unique key and missing from what comes back.
_INSERT_RECEIPTS_SQL = (
    f"INSERT INTO receipts_receipt ({', '.join((*SHARED_RECEIPT_COLUMNS, *BATCH_RECEIPT_COLUMNS))}) "
    f"SELECT {', '.join(f'%({c})b::{_sql_type(c)}' for c in SHARED_RECEIPT_COLUMNS)}, r.* "
    f"FROM unnest({', '.join(f'%({c})b::{_sql_type(c)}[]' for c in BATCH_RECEIPT_COLUMNS)}) AS r "
    "ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING dedupe_key, id"
)
_INSERT_ONE_RECEIPT_SQL = (
    f"INSERT INTO receipts_receipt ({', '.join(RECEIPT_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in RECEIPT_COLUMNS)}) "
    "ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING id"
)

# The parameters of TRANSITION_COLUMNS (and NOTED_COLUMNS), in order.
_WRITE_PARAMS = tuple(dict.fromkeys(re.findall(r"%\((\w+)\)s", " ".join(TRANSITION_COLUMNS.values()))))


# What a write says itself; the other parameters are its moving change's.
_NOTED_BY_WRITE = ("network", "price", "currency", "now")


def _write_value(write: MessageWrite, name: str) -> Any:
    if name in _NOTED_BY_WRITE:
        return getattr(write, name)
    return getattr(write.moved, name) if write.moved is not None else None


# A batch's writes as rows of _WRITE_PARAMS (then turned into columns): the moved change's values
# read in one call, the write's own after them, put in _WRITE_PARAMS' order by one more.
_MOVED_PARAMS = tuple(name for name in _WRITE_PARAMS if name not in _NOTED_BY_WRITE)
_moved_values = attrgetter(*_MOVED_PARAMS)
_NOT_MOVED = (None,) * len(_MOVED_PARAMS)
_in_write_order = itemgetter(*((*_MOVED_PARAMS, *_NOTED_BY_WRITE).index(name) for name in _WRITE_PARAMS))


def _write_row(write: MessageWrite) -> tuple[Any, ...]:
    moved = write.moved
    values = _moved_values(moved) if moved is not None else _NOT_MOVED
    return _in_write_order((*values, write.network, write.price, write.currency, write.now))


def _as_batch_column(expression: str) -> str:
    """TRANSITION_COLUMNS' value for one row of the batch: its parameters read from `w`."""
    return re.sub(r"%\((\w+)\)s", r"w.v_\1", expression)


def _batch_assignment(column: str, value: str) -> str:
    moved = _as_batch_column(value)
    if column in NOTED_COLUMNS:
        return f"{column} = {moved}"  # written by every receipt, moving or not
    return f"{column} = CASE WHEN w.moves THEN {moved} ELSE m.{column} END"


# The messages were read under their row locks and each write decided from what was read, so no
# state-machine guard is needed here: nothing moved them since.
_MESSAGES_WRITE_SQL = (
    "WITH moved AS ("
    f"UPDATE receipts_message m SET {', '.join(_batch_assignment(c, v) for c, v in TRANSITION_COLUMNS.items())} "
    f"FROM unnest(%(id)b::bigint[], %(moves)b::boolean[], "
    f"{', '.join(f'%(v_{name})b::{_sql_type(name)}[]' for name in _WRITE_PARAMS)}) "
    f"AS w(id, moves, {', '.join(f'v_{name}' for name in _WRITE_PARAMS)}) "
    "WHERE m.id = w.id RETURNING m.id), "
    f"pending AS ({_pending_sql('id')} FROM moved) "
    f"INSERT INTO receipts_outboxevent ({OUTBOX_COLUMNS}) "
    # One request writes the whole batch: its id is one parameter, not an array.
    f"SELECT o.message_id, o.receipt_id, '{OutboxEvent.Kind.STATUS_CHANGED}', o.status, o.now, o.now, 1, "
    "CAST(%(request_id)s AS text) "
    "FROM unnest(%(o_message_id)b::bigint[], %(o_receipt_id)b::bigint[], %(o_status)b::text[], "
    "%(o_now)b::timestamptz[]) AS o(message_id, receipt_id, status, now) ORDER BY o.receipt_id RETURNING id"
)
MOVE_SQL = (
    f"UPDATE receipts_message SET {', '.join(f'{column} = {value}' for column, value in TRANSITION_COLUMNS.items())} "
    "WHERE id = %(message_id)s"
)


def _execute_all(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a batch statement (its arrays bound in binary: dlrconsole.lib.array_cursor) and
    fetch its rows."""
    with array_cursor(db) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class PostgresBackend:
    """One round trip per receipt. Each data-modifying step sees the previous one's RETURNING
    rows; the UPDATE still waits for a concurrent writer's row lock and re-checks its WHERE
    clause exactly as on its own, and the INSERT still waits for a concurrent insert of the same
    dedupe key and then does nothing."""

    def store_and_advance(self, receipt: StoredReceipt, change: StatusChange) -> Stored | None:
        params = {**vars(receipt), **_transition_params(change), "request_id": _request_id()}
        row = _execute_prepared(_store_and_advance_sql(change.status), params)
        return Stored(*row) if row else None

    def advance(self, *, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
        params = {**_transition_params(change), "message_id": message_id, "receipt_id": receipt_id}
        params["request_id"] = _request_id()
        with db.cursor() as cursor:
            cursor.execute(_advance_sql(change.status), params)
            row = cursor.fetchone()
        return row[0] if row else None

    def lock_message_identities(self, identities: Iterable[tuple[int, str]]) -> None:
        # Without it, a receipt inserted while its message is being registered is invisible to
        # the registration (not committed yet) and finds no message itself: parked forever.
        # In key order, as every taker of several: two of them wait, never deadlock.
        keys = sorted({_identity_lock_key(connection_id, pmid) for connection_id, pmid in identities})
        if len(keys) == 1:
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", keys)
        elif keys:
            with array_cursor(db) as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(k) FROM (SELECT k FROM unnest(%b::bigint[]) AS k ORDER BY k) AS keys",
                    [keys],
                )

    def messages_lock_for_receipts(self, connection_id: int, provider_message_ids: Sequence[str]) -> dict[str, Found]:
        found = self._lock_found(connection_id, provider_message_ids)
        missing = [pmid for pmid in provider_message_ids if pmid not in found]
        if missing:
            # As a single receipt does after its INSERT: a message registered meanwhile is seen
            # once its registration's identity lock is ours.
            self.lock_message_identities((connection_id, pmid) for pmid in missing)
            found |= self._lock_found(connection_id, missing)
        return found

    def _lock_found(self, connection_id: int, provider_message_ids: Sequence[str]) -> dict[str, Found]:
        # In id order, as every other taker of several message locks (messages_lock, a chain's
        # original before its resend): two batches sharing messages wait, never deadlock.
        with array_cursor(db) as cursor:
            cursor.execute(
                "SELECT provider_message_id, id, status FROM receipts_message WHERE connection_id = %s "
                "AND provider_message_id = ANY(%b::text[]) ORDER BY id FOR UPDATE",
                [connection_id, list(provider_message_ids)],
            )
            return {pmid: Found(message_id, status) for pmid, message_id, status in cursor.fetchall()}

    def receipts_insert(self, batch: ReceiptBatch) -> dict[str, int]:
        params: dict[str, Any] = {column: getattr(batch, column) for column in SHARED_RECEIPT_COLUMNS}
        # The rows turned into columns in C, one list per column.
        params |= zip(BATCH_RECEIPT_COLUMNS, map(list, zip(*batch.receipts, strict=True)), strict=True)
        return dict(_execute_all(_INSERT_RECEIPTS_SQL, params))

    def messages_write(self, writes: Sequence[MessageWrite], outbox: Sequence[OutboxRow]) -> list[int]:
        params: dict[str, list[Any]] = {
            "id": [w.message_id for w in writes],
            "moves": [w.moved is not None for w in writes],
        }
        params |= zip(
            (f"v_{name}" for name in _WRITE_PARAMS), map(list, zip(*map(_write_row, writes), strict=True)), strict=True
        )
        params |= {
            "o_message_id": [o.message_id for o in outbox],
            "o_receipt_id": [o.receipt_id for o in outbox],
            "o_status": [o.status for o in outbox],
            "o_now": [o.now for o in outbox],
        }
        return [row[0] for row in _execute_all(_MESSAGES_WRITE_SQL, {**params, "request_id": _request_id()})]


class PortableBackend:
    """The same statements one at a time, for SQLite (the demo). SQLite has one writer at a
    time, so there is nothing to serialize and no identity lock to take."""

    def store_and_advance(self, receipt: StoredReceipt, change: StatusChange) -> Stored | None:
        with db.cursor() as cursor:
            cursor.execute(INSERT_RECEIPT_SQL, {**vars(receipt), **vars(change)})
            row = cursor.fetchone()
        if row is None:
            return None
        receipt_id, message_id = row
        outbox_id = self.advance(message_id=message_id, receipt_id=receipt_id, change=change) if message_id else None
        return Stored(receipt_id, message_id, outbox_id)

    def advance(self, *, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
        params = {**_transition_params(change), "message_id": message_id, "receipt_id": receipt_id}
        params["request_id"] = _request_id()
        with db.cursor() as cursor:
            cursor.execute(transition_sql("%(message_id)s", statuses_below(change.status)), params)
            if cursor.fetchone() is None:
                return None
            cursor.execute(_pending_sql("%(message_id)s"), params)
            cursor.execute(f"{_record_sql('%(message_id)s', '%(receipt_id)s')} RETURNING id", params)
            return int(cursor.fetchone()[0])

    def lock_message_identities(self, identities: Iterable[tuple[int, str]]) -> None:
        pass

    def messages_lock_for_receipts(self, connection_id: int, provider_message_ids: Sequence[str]) -> dict[str, Found]:
        rows = Message.objects.filter(connection_id=connection_id, provider_message_id__in=provider_message_ids)
        return {pmid: Found(pk, status) for pmid, pk, status in rows.values_list("provider_message_id", "pk", "status")}

    def receipts_insert(self, batch: ReceiptBatch) -> dict[str, int]:
        inserted = {}
        shared = {column: getattr(batch, column) for column in SHARED_RECEIPT_COLUMNS}
        with db.cursor() as cursor:
            for receipt in batch.receipts:
                cursor.execute(_INSERT_ONE_RECEIPT_SQL, {**shared, **receipt._asdict()})
                row = cursor.fetchone()
                if row is not None:
                    inserted[receipt.dedupe_key] = row[0]
        return inserted

    def messages_write(self, writes: Sequence[MessageWrite], outbox: Sequence[OutboxRow]) -> list[int]:
        with db.cursor() as cursor:
            for write in writes:
                params = {"message_id": write.message_id, **{name: _write_value(write, name) for name in _WRITE_PARAMS}}
                cursor.execute(MOVE_SQL if write.moved is not None else NOTE_RECEIPT_SQL, params)
            outbox_ids = []
            request_id = _request_id()
            for row in outbox:
                params = {
                    "message_id": row.message_id,
                    "receipt_id": row.receipt_id,
                    "status": row.status,
                    "now": row.now,
                    "request_id": request_id,
                }
                cursor.execute(f"{_record_sql('%(message_id)s', '%(receipt_id)s')} RETURNING id", params)
                outbox_ids.append(int(cursor.fetchone()[0]))
        rollup_pending([write.message_id for write in writes])
        return outbox_ids


backend: PostgresBackend | PortableBackend = PostgresBackend() if db.vendor == "postgresql" else PortableBackend()


# Receipts


def store_and_advance(receipt: StoredReceipt, change: StatusChange) -> Stored | None:
    """Store a receipt and move its message if allowed; None when it was stored before."""
    return backend.store_and_advance(receipt, change)


def advance(*, message_id: int, receipt_id: int, change: StatusChange) -> int | None:
    """Move a message for an already stored receipt if allowed; the outbox row's id, or None."""
    return backend.advance(message_id=message_id, receipt_id=receipt_id, change=change)


def receipt_link(*, receipt_id: int, message_id: int) -> None:
    """A parked receipt found its message."""
    Receipt.objects.filter(pk=receipt_id).update(message_id=message_id, outcome=ReceiptOutcome.APPLIED)


def receipt_set_outcome(*, receipt_id: int, outcome: str) -> None:
    Receipt.objects.filter(pk=receipt_id).update(outcome=outcome)


# Messages


def lock_message_identity(connection_id: int, provider_message_id: str) -> None:
    """Serialize registration and parking of one provider message id until commit."""
    backend.lock_message_identities([(connection_id, provider_message_id)])


def lock_message_identities(identities: Iterable[tuple[int, str]]) -> None:
    """lock_message_identity for several (connection id, provider message id) pairs at once."""
    backend.lock_message_identities(identities)


def messages_lock_for_receipts(connection_id: int, provider_message_ids: Sequence[str]) -> dict[str, Found]:
    """The registered messages of a batch's provider message ids, row-locked until commit; for
    those not registered, their identity locks taken too (a registration waits for our commit
    and then links what we parked)."""
    return backend.messages_lock_for_receipts(connection_id, provider_message_ids)


def receipts_insert(batch: ReceiptBatch) -> dict[str, int]:
    """Insert a batch's receipts (one dedupe key each); the ids of those not stored before, by
    dedupe key."""
    return backend.receipts_insert(batch) if batch.receipts else {}


def messages_write(writes: Sequence[MessageWrite], outbox: Sequence[OutboxRow]) -> list[int]:
    """Write a batch's message changes (rows locked by messages_lock_for_receipts), queue the
    messages for the rollups and record the outbox rows; the outbox ids."""
    return backend.messages_write(writes, outbox) if writes else []


def message_lock(message_id: int) -> None:
    """Take the message's row lock until commit: decisions, attempts and notices about one
    message serialize on it."""
    Message.objects.select_for_update().filter(pk=message_id).values_list("pk").first()


def _by_connection(identities: Iterable[tuple[int, str]]) -> dict[int, set[str]]:
    by_connection: dict[int, set[str]] = defaultdict(set)
    for connection_id, provider_message_id in identities:
        by_connection[connection_id].add(provider_message_id)
    return by_connection


def messages_by_identity(identities: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Message]:
    """The registered messages among (connection id, provider message id) pairs, by pair: one
    query per connection (message_unique_provider_id)."""
    return {
        (message.connection_id, message.provider_message_id): message
        for connection_id, provider_message_ids in _by_connection(identities).items()
        for message in Message.objects.filter(connection_id=connection_id, provider_message_id__in=provider_message_ids)
    }


def messages_create(messages: Sequence[Message]) -> list[Message]:
    """Insert new messages in one statement, queued for the rollups. The caller holds their
    identity locks (lock_message_identities) and saw none registered: no other registration can
    insert one meanwhile, so no savepoint is needed to recover from losing that race (Django's
    get_or_create takes one, two round trips)."""
    created = Message.objects.bulk_create(messages)
    rollup_pending([message.pk for message in created])
    return created


def identities_with_parked_receipts(identities: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of the (connection id, provider message id) pairs have receipts parked for them."""
    parked: set[tuple[int, str]] = set()
    for connection_id, provider_message_ids in _by_connection(identities).items():
        parked.update(
            Receipt.objects.filter(
                connection_id=connection_id, provider_message_id__in=provider_message_ids, message__isnull=True
            ).values_list("connection_id", "provider_message_id")
        )
    return parked


NOTE_RECEIPT_SQL = (
    f"UPDATE receipts_message SET {', '.join(f'{column} = {value}' for column, value in NOTED_COLUMNS.items())} "
    "WHERE id = %(message_id)s"
)


def message_note_receipt(*, message_id: int, change: StatusChange) -> None:
    """A receipt arrived that did not move the message: it is still a sign of life (the first,
    maybe) and may name the network or the price."""
    with db.cursor() as cursor:
        cursor.execute(NOTE_RECEIPT_SQL, {**vars(change), "message_id": message_id})
    rollup_pending([message_id])


def message_note_fallback(message_id: int) -> None:
    """A fallback channel reached the user for this original message."""
    Message.objects.filter(pk=message_id).update(fallbacks=F("fallbacks") + 1)
    rollup_pending([message_id])


def rollup_pending(message_ids: Sequence[int]) -> None:
    """Queue messages whose rollup contribution may have changed (receipts/rollups/maintain.py)."""
    RollupPending.objects.bulk_create(RollupPending(message_id=message_id) for message_id in message_ids)


def messages_report_missing(rows: Sequence[tuple[int, str]], *, now: datetime) -> list[int]:
    """Mark (message id, status) rows as past their receipt SLA and record one no-receipt
    event each; the outbox ids."""
    Message.objects.filter(pk__in=[message_id for message_id, _ in rows]).update(no_receipt_at=now)
    rollup_pending([message_id for message_id, _ in rows])
    request_id = _request_id()
    events = OutboxEvent.objects.bulk_create(
        OutboxEvent(
            message_id=message_id, kind=OutboxEvent.Kind.NO_RECEIPT, status=status, created_at=now,
            dispatched_at=now, dispatch_count=1, request_id=request_id,
        )
        for message_id, status in rows
    )  # fmt: skip
    return [event.pk for event in events]


def message_bodies_erase(*, submitted_before: datetime, keep: QuerySet[Any] | None = None) -> int:
    """Erase the texts of messages submitted before the cutoff, except those whose pk is in
    `keep` (a subquery of message ids); how many."""
    erasing = Message.objects.filter(submitted_at__lt=submitted_before).exclude(body="")
    if keep is not None:
        erasing = erasing.exclude(pk__in=keep)
    return erasing.update(body="")


# The outbox


def outbox_record(*, message_id: int, receipt_id: int | None, status: str, now: datetime) -> int:
    """Record a status change for the consumers, stamped as handed to the publisher."""
    event = OutboxEvent.objects.create(
        message_id=message_id, receipt_id=receipt_id, kind=OutboxEvent.Kind.STATUS_CHANGED, status=status,
        created_at=now, dispatched_at=now, dispatch_count=1, request_id=_request_id(),
    )  # fmt: skip
    return event.pk


def outbox_claim_batch(event_ids: Sequence[int], *, now: datetime, fill: int = 0) -> list[OutboxEvent]:
    """Mark the events processed, their rows locked until commit, in id order (two claimers of
    overlapping batches wait for each other, never deadlock; the second then finds them taken);
    the events claimed, leaving out those another run processed, waiting out a failure's backoff,
    or parked. `fill`: claim up to that many in all, topping the batch up with the oldest other
    events published and waiting (never failed), skipping those another claimer holds."""
    events = list(
        OutboxEvent.objects.select_for_update()
        .filter(pk__in=event_ids, processed_at__isnull=True, failed_at__isnull=True)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .order_by("pk")
    )
    if len(events) < fill:
        # SKIP LOCKED: a claimer never waits on another's top-up, so the order above (own ids,
        # waited for, then others, skipped) cannot deadlock.
        events += (
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, failed_at__isnull=True, retry_at__isnull=True)
            .filter(dispatched_at__isnull=False)
            .exclude(pk__in=event_ids)
            .order_by("dispatched_at", "pk")[: fill - len(events)]
        )
    if events:
        OutboxEvent.objects.filter(pk__in=[event.pk for event in events]).update(processed_at=now)
    for event in events:
        event.processed_at = now
    return events


def outbox_record_failure(event_id: int, *, error: str, retry_at: datetime | None, now: datetime) -> None:
    """A consumer raised: undo the claim, count the failure, and either wait until `retry_at`
    (unstamped, so the sweeper publishes it then) or, without one, park the event as failed."""
    OutboxEvent.objects.filter(pk=event_id).update(
        processed_at=None, failures=F("failures") + 1, last_error=error[:255], retry_at=retry_at,
        failed_at=None if retry_at is not None else now, dispatched_at=None,
    )  # fmt: skip


def outbox_retry_parked(event_ids: Sequence[int]) -> int:
    """Put parked events back in line (an admin fixed the cause): tried at the sweeper's next pass."""
    return OutboxEvent.objects.filter(pk__in=event_ids, failed_at__isnull=False, processed_at__isnull=True).update(
        failed_at=None, retry_at=None, dispatched_at=None
    )


def outbox_mark_unpublished(event_ids: Sequence[int]) -> None:
    """The publish failed: clear the stamp so the sweeper publishes them at its next pass."""
    OutboxEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True).update(dispatched_at=None)


def outbox_mark_dispatched(event_ids: Sequence[int], *, now: datetime) -> None:
    OutboxEvent.objects.filter(pk__in=event_ids).update(dispatched_at=now, dispatch_count=F("dispatch_count") + 1)


def outbox_lost(*, lost_before: datetime, now: datetime, limit: int) -> list[int]:
    """Events to publish again: never published, or published before `lost_before`, and not
    waiting out a failure's backoff nor parked. Locked until commit, skipping those another
    sweeper holds. Those that never failed come first, so a run of failing events cannot fill
    every batch and starve the healthy ones behind them."""
    return list(
        OutboxEvent.objects.select_for_update(skip_locked=True)
        .filter(processed_at__isnull=True, failed_at__isnull=True)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=lost_before))
        .order_by("failures", "id")
        .values_list("id", flat=True)[:limit]
    )


# Re-normalizing stored receipts (receipts/renormalize.py): after a mapping or catalog change, a
# receipt's normalized columns and its message's state are restated from the raw body. Nothing
# here records an outbox row: a restatement is a correction, not a new event rules must see.


@dataclass(frozen=True)
class ReceiptRestatement:
    """A stored receipt's normalized columns as the current adapters and catalog read it."""

    receipt_id: int
    status: str
    error_code: str
    error_description: str
    reason: str
    error_class: str
    catalog_class: str
    class_source: str
    network: str
    price: Decimal | None
    currency: str


RESTATED_RECEIPT_FIELDS = (
    "status", "error_code", "error_description", "reason", "error_class", "catalog_class", "class_source",
    "network", "price", "currency",
)  # fmt: skip


def receipts_restate(restatements: Sequence[ReceiptRestatement]) -> int:
    """Write the receipts' restated columns; how many rows."""
    receipts = [
        Receipt(pk=r.receipt_id, **{name: getattr(r, name) for name in RESTATED_RECEIPT_FIELDS}) for r in restatements
    ]
    return Receipt.objects.bulk_update(receipts, RESTATED_RECEIPT_FIELDS) if receipts else 0


@dataclass(frozen=True)
class MessageRestatement:
    """A message's state as its receipts decide it, by the same precedence as ingestion."""

    message_id: int
    status: str
    error_code: str
    reason: str
    error_class: str
    catalog_class: str
    class_source: str
    final_at: datetime | None
    status_changed_at: datetime | None
    network: str
    cost: Decimal | None
    currency: str


RESTATED_MESSAGE_FIELDS = (
    "status", "error_code", "reason", "error_class", "catalog_class", "class_source", "final_at", "status_changed_at",
    "network", "cost", "currency",
)  # fmt: skip


def messages_lock(message_ids: Sequence[int]) -> None:
    """Take the messages' row locks until commit, in id order (no deadlock between two callers):
    a receipt ingested meanwhile for one of them waits, so a restatement computed from the
    receipts read after this is not overwritten by, nor overwrites, a concurrent advance."""
    list(Message.objects.select_for_update().filter(pk__in=message_ids).order_by("pk").values_list("pk", flat=True))


def messages_restate(restatements: Sequence[MessageRestatement]) -> int:
    """Write the messages' restated state (their rows locked by messages_lock) and queue them
    for the rollups, whose counts follow a message's state; how many rows."""
    messages = [
        Message(pk=r.message_id, **{name: getattr(r, name) for name in RESTATED_MESSAGE_FIELDS}) for r in restatements
    ]
    if not messages:
        return 0
    rollup_pending([r.message_id for r in restatements])
    return Message.objects.bulk_update(messages, RESTATED_MESSAGE_FIELDS)
