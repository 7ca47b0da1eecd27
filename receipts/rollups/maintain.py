"""Keeping the rollups right, a few seconds behind the receipts.

The statement that moves a message also queues its id (receipts_rolluppending, see
receipts/store.py). A pass takes a batch of queued ids, deletes them, and in the same
transaction replaces each message's snapshot contribution with its current one in every grain's
row: a change is counted exactly once, whatever happens to the process. Passes serialize on a
transaction-scoped advisory lock; a second pass started meanwhile returns at once.

On PostgreSQL a pass is one statement (sql.PASS_SQL); on SQLite (the demo) the same arithmetic
runs here in Python (recount_messages). tests/rollups runs both against random streams.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from receipts.models import Message
from receipts.refusals import refusals_prune
from receipts.rollups.figures import COUNT_COLUMNS, MESSAGE_FIELDS, Contribution, contribution
from receipts.rollups.models import (
    BLANK,
    COARSE_DIMENSIONS,
    LEVEL_DIMENSIONS,
    CoarseRollup,
    CoarseRollupReason,
    Grain,
    Rollup,
    RollupReason,
    Snapshot,
)
from receipts.rollups.sql import (
    CELL,
    COARSE_CELL,
    COARSE_REASON_CELL,
    PASS_SQL,
    REASON_CELL,
    SNAPSHOT_FIELDS,
    upsert_clause,
)

PASS_LOCK = int.from_bytes(hashlib.blake2b(b"rollups-pass", digest_size=8).digest(), "big", signed=True)


def bucket_start(moment: datetime, grain: str) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if grain == Grain.MINUTE:
        return moment
    moment = moment.replace(minute=0)
    return moment if grain == Grain.HOUR else moment.replace(hour=0)


def kept_since(grain: str, now: datetime) -> datetime | None:
    """The oldest bucket of `grain` the rollups keep; None: kept for ever (days)."""
    if grain == Grain.MINUTE:
        return bucket_start(now - timedelta(hours=settings.DLR_ROLLUP_MINUTES_KEEP_HOURS), grain)
    if grain == Grain.HOUR:
        return bucket_start(now - timedelta(days=settings.DLR_ROLLUP_HOURS_KEEP_DAYS), grain)
    return None


def settled_before(now: datetime) -> datetime | None:
    """Buckets before this are settled: retention deletes their messages (with their
    snapshots) but keeps their rows, so a rebuild or a check must leave them as they are.
    The same whole UTC day as retention's cutoff (dlrconsole/ops/retention.py); None while
    messages are kept for ever."""
    days = settings.DLR_RETENTION_MESSAGES_DAYS
    if not days:
        return None
    return (now - timedelta(days=days)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Deltas:
    """What a pass adds to the rollup rows (negative to take a contribution back), per cell."""

    now: datetime
    counts: dict[tuple[Any, ...], dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    costs: dict[tuple[Any, ...], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    reasons: dict[tuple[Any, ...], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, item: Contribution, sign: int) -> None:
        for grain in Grain.values:
            bucket = bucket_start(item.minute, grain)
            oldest = kept_since(grain, self.now)
            if oldest is not None and bucket < oldest:
                continue  # pruned or about to be: never written again
            cell = (grain, bucket, *item.dimensions)
            counts = self.counts[cell]
            for column, count in item.counts().items():
                counts[column] += sign * count
            if item.cost is not None:
                self.costs[cell] += sign * item.cost
            if item.reason:
                reason_cell = (grain, bucket, *item.dimensions[:-1], item.reason, item.error_class)
                self.reasons[reason_cell] += sign

    def rows(self) -> list[tuple[Any, ...]]:
        """(cell..., cost, count columns...) for every cell that changes."""
        return _rows(self.counts, self.costs)

    def reason_rows(self) -> list[tuple[Any, ...]]:
        return [(*cell, count) for cell, count in self.reasons.items() if count]

    def coarse_rows(self) -> list[tuple[Any, ...]]:
        """rows() added up into every level's cells (coarse_cell): what the coarse rollups gain."""
        counts: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        costs: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        for level in LEVEL_DIMENSIONS:
            for cell, cell_counts in self.counts.items():
                into = counts[coarse_cell(cell, level)]
                for column, count in cell_counts.items():
                    into[column] += count
            for cell, cost in self.costs.items():
                costs[coarse_cell(cell, level)] += cost
        return _rows(counts, costs)

    def coarse_reason_rows(self) -> list[tuple[Any, ...]]:
        reasons: dict[tuple[Any, ...], int] = defaultdict(int)
        for level in LEVEL_DIMENSIONS:
            for cell, count in self.reasons.items():
                reasons[coarse_cell(cell, level, fine=REASON_CELL)] += count
        return [(*cell, count) for cell, count in reasons.items() if count]


def _rows(
    counts: dict[tuple[Any, ...], dict[str, int]], costs: dict[tuple[Any, ...], Decimal]
) -> list[tuple[Any, ...]]:
    rows = []
    for cell in counts.keys() | costs.keys():
        cell_counts = counts.get(cell, {})
        cost = costs.get(cell, Decimal(0))
        values = [cell_counts.get(column, 0) for column in COUNT_COLUMNS]
        if cost or any(values):
            rows.append((*cell, cost, *values))
    return rows


def coarse_cell(cell: Sequence[Any], level: str, *, fine: Sequence[str] = CELL) -> tuple[Any, ...]:
    """The cell of `level` a fine cell (named by `fine`: CELL or REASON_CELL) adds up into:
    the level's dimensions kept, the other coarse ones blank, what follows them (currency, or
    reason and class) kept."""
    named = dict(zip(fine, cell, strict=True))
    kept = LEVEL_DIMENSIONS[level]
    dimensions = tuple(named[name] if name in kept else BLANK[name] for name in COARSE_DIMENSIONS)
    tail = fine[fine.index("flow") + 1 :]
    return (named["grain"], level, named["bucket"], *dimensions, *(named[name] for name in tail))


def _upsert_sql(table: str, cell: Sequence[str], added: Sequence[str]) -> str:
    columns = [*cell, *added]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) " + upsert_clause(
        table, cell, added
    )


UPSERT_ROLLUP_SQL = _upsert_sql(Rollup._meta.db_table, CELL, ("cost", *COUNT_COLUMNS))
UPSERT_REASON_SQL = _upsert_sql(RollupReason._meta.db_table, REASON_CELL, ("count",))
UPSERT_COARSE_SQL = _upsert_sql(CoarseRollup._meta.db_table, COARSE_CELL, ("cost", *COUNT_COLUMNS))
UPSERT_COARSE_REASON_SQL = _upsert_sql(CoarseRollupReason._meta.db_table, COARSE_REASON_CELL, ("count",))


def apply(deltas: Deltas) -> None:
    """Add a pass's deltas to the rollup rows, fine and coarse (creating the cells they reach first)."""
    with db.cursor() as cursor:
        for sql, rows in (
            (UPSERT_ROLLUP_SQL, deltas.rows()),
            (UPSERT_REASON_SQL, deltas.reason_rows()),
            (UPSERT_COARSE_SQL, deltas.coarse_rows()),
            (UPSERT_COARSE_REASON_SQL, deltas.coarse_reason_rows()),
        ):
            if rows:
                cursor.executemany(sql, rows)


def take_pass_lock() -> bool:
    """The pass lock until commit; False when another pass holds it. SQLite (the demo) has
    one writer at a time: nothing to take."""
    if db.vendor != "postgresql":
        return True
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PASS_LOCK])
        return bool(cursor.fetchone()[0])


# Whether a pass runs as one statement (sql.PASS_SQL) rather than in Python: on PostgreSQL.
COUNT_IN_DATABASE = db.vendor == "postgresql"

CLAIM_SQL = (
    "DELETE FROM receipts_rolluppending WHERE id IN "
    "(SELECT id FROM receipts_rolluppending ORDER BY id LIMIT %s) RETURNING message_id"
)


def _snapshot(item: Contribution) -> dict[str, Any]:
    return {name: getattr(item, name) for name in SNAPSHOT_FIELDS}


def recount_messages(message_ids: Iterable[int], *, now: datetime) -> None:
    """Replace the contributions of these messages with their current ones, in Python (what
    sql.PASS_SQL does in the database). Runs inside the caller's transaction, holding the pass
    lock."""
    ids = sorted(set(message_ids))
    if not ids:
        return
    current = {row["id"]: contribution(row) for row in Message.objects.filter(pk__in=ids).values(*MESSAGE_FIELDS)}
    before = {
        snapshot["message_id"]: Contribution(**{name: snapshot[name] for name in SNAPSHOT_FIELDS})
        for snapshot in Snapshot.objects.filter(message_id__in=ids).values("message_id", *SNAPSHOT_FIELDS)
    }
    deltas = Deltas(now=now)
    changed = []
    for message_id in ids:
        old, new = before.get(message_id), current.get(message_id)
        if old == new:
            continue  # a receipt that changed nothing the rollups count
        if old is not None:
            deltas.add(old, -1)
        if new is not None:
            deltas.add(new, +1)
            changed.append(Snapshot(message_id=message_id, **_snapshot(new)))
    apply(deltas)
    Snapshot.objects.filter(message_id__in=[i for i in ids if i in before and i not in current]).delete()
    Snapshot.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["message_id"], update_fields=list(SNAPSHOT_FIELDS)
    )


def roll_up(*, limit: int | None = None, now: datetime | None = None) -> int | None:
    """One pass over up to `limit` queued messages; how many queue entries it took, or None
    when another pass holds the lock."""
    now = now or timezone.now()
    limit = limit or settings.DLR_ROLLUP_BATCH
    with transaction.atomic():
        if not take_pass_lock():
            return None
        with db.cursor() as cursor:
            if COUNT_IN_DATABASE:
                oldest = {f"oldest_{grain}": kept_since(grain, now) for grain in Grain.values}
                cursor.execute(PASS_SQL, {"limit": limit, **oldest})
                return int(cursor.fetchone()[0])
            cursor.execute(CLAIM_SQL, [limit])
            claimed = [row[0] for row in cursor.fetchall()]
        recount_messages(claimed, now=now)
    return len(claimed)


def roll_up_all(*, seconds: float, now: datetime | None = None) -> int:
    """Passes until one finds the queue shorter than a batch, another pass runs, or `seconds`
    have gone by.

    A short pass drained the queue as it was when the pass claimed it: whatever arrived since
    waits for the next run. Chasing it cost more than it saved: a pass has a fixed cost of
    several milliseconds whatever it takes, and at 300 receipts/s runs that looped until the
    queue was empty made ~65 passes of ~20 messages each, holding a worker process for 1.4 s
    of every 5 (bench/decision_latency.py, 2026-12-07)."""
    started = timezone.now()
    limit = settings.DLR_ROLLUP_BATCH
    total = 0
    while (timezone.now() - started).total_seconds() < seconds:
        taken = roll_up(limit=limit, now=now)
        total += taken or 0
        if not taken or taken < limit:
            break
    return total


def prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete buckets older than each grain keeps, and cells every change has emptied."""
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    with transaction.atomic():
        if not take_pass_lock():
            return deleted
        for grain in Grain.values:
            oldest = kept_since(grain, now)
            if oldest is not None:
                deleted[grain] = Rollup.objects.filter(grain=grain, bucket__lt=oldest).delete()[0]
                RollupReason.objects.filter(grain=grain, bucket__lt=oldest).delete()
                CoarseRollup.objects.filter(grain=grain, bucket__lt=oldest).delete()
                CoarseRollupReason.objects.filter(grain=grain, bucket__lt=oldest).delete()
        # Every contribution counts one message: a cell with none left counts nothing at all.
        deleted["empty"] = Rollup.objects.filter(messages=0).delete()[0]
        RollupReason.objects.filter(count=0).delete()
        CoarseRollup.objects.filter(messages=0).delete()
        CoarseRollupReason.objects.filter(count=0).delete()
        deleted["refusals"] = refusals_prune(now=now)
    return deleted
