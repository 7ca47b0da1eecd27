"""Counting every message again, in the database: what an upgrade or a repair runs.

Passes (maintain.py) recount the messages that changed, a batch at a time: right for the few
messages a few seconds of receipts change, far too slow for millions. The rebuild computes every
message's contribution (sql.CONTRIBUTION_COLUMNS) in one INSERT … SELECT into the snapshots, then
each grain's rows as GROUP BYs of the snapshots, so the rollups are exactly the sum of the
snapshots as a pass leaves them; the coarse rows are then GROUP BYs of the fine ones.

It holds the pass lock, and is exact while receipts keep arriving: it first empties the queue,
then reads the messages. A change committed after the queue was emptied is queued again by the
statement that made it, so the next pass recounts that message (a no-op when the rebuild
already saw the change). Readers of the rollups see the old rows until the rebuild commits.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from receipts.models import Message, RollupPending
from receipts.rollups import maintain
from receipts.rollups.figures import COUNT_COLUMNS
from receipts.rollups.maintain import kept_since, settled_before, take_pass_lock
from receipts.rollups.models import (
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
    CONTRIBUTION_COLUMNS,
    REASON_CELL,
    SNAPSHOT_FIELDS,
    bucket,
    coarse_dimensions,
    count_expressions,
)


class PassRunning(RuntimeError):
    """Another pass holds the lock."""


# One snapshot per message: figures.contribution, column for column.
SNAPSHOT_SQL = (
    f"INSERT INTO {Snapshot._meta.db_table} (message_id, {', '.join(SNAPSHOT_FIELDS)}) "
    f"SELECT {CONTRIBUTION_COLUMNS} FROM receipts_message"
)


def _rollup_sql(grain: str) -> str:
    dimensions = ", ".join(CELL[2:])
    return (
        f"INSERT INTO {Rollup._meta.db_table} ({', '.join(CELL)}, cost, {', '.join(COUNT_COLUMNS)}) "
        f"SELECT %(grain)s, {bucket(grain)} AS cell_bucket, {dimensions}, coalesce(sum(cost), 0), "
        f"{', '.join(count_expressions())} "
        f"FROM {Snapshot._meta.db_table} WHERE %(oldest)s::timestamptz IS NULL OR minute >= %(oldest)s "
        f"GROUP BY cell_bucket, {dimensions}"
    )


def _reason_sql(grain: str) -> str:
    dimensions = ", ".join(REASON_CELL[2:])
    return (
        f"INSERT INTO {RollupReason._meta.db_table} ({', '.join(REASON_CELL)}, count) "
        f"SELECT %(grain)s, {bucket(grain)} AS cell_bucket, {dimensions}, count(*) "
        f"FROM {Snapshot._meta.db_table} "
        f"WHERE reason <> '' AND (%(oldest)s::timestamptz IS NULL OR minute >= %(oldest)s) "
        f"GROUP BY cell_bucket, {dimensions}"
    )


def coarse_sql(level: str, *, columns: list[str] | None = None) -> str:
    """The coarse rows of `level` as GROUP BYs of the fine rows (maintain.coarse_cell in SQL):
    the rebuild fills them after the fine rows, so they are those rows' sums by construction.
    `columns`: the count columns, when the caller knows them (a migration's historical model)."""
    selected, grouped = coarse_dimensions(level)
    counts = columns if columns is not None else list(COUNT_COLUMNS)
    by = ", ".join(["grain", "bucket", *grouped, "currency"])
    return (
        f"INSERT INTO {CoarseRollup._meta.db_table} ({', '.join(COARSE_CELL)}, cost, {', '.join(counts)}) "
        f"SELECT grain, '{level}', bucket, {', '.join(selected)}, currency, sum(cost), "
        + ", ".join(f"sum({column})" for column in counts)
        + f" FROM {Rollup._meta.db_table} GROUP BY {by}"
    )


def coarse_reason_sql(level: str) -> str:
    selected, grouped = coarse_dimensions(level)
    by = ", ".join(["grain", "bucket", *grouped, "reason", "error_class"])
    return (
        f"INSERT INTO {CoarseRollupReason._meta.db_table} ({', '.join(COARSE_REASON_CELL)}, count) "
        f"SELECT grain, '{level}', bucket, {', '.join(selected)}, reason, error_class, sum(count) "
        f"FROM {RollupReason._meta.db_table} GROUP BY {by}"
    )


def rebuild(*, now: datetime | None = None) -> int:
    """Replace every snapshot and rollup row with a count of the messages as they are now, and
    empty the queue of the changes it counted. How many messages it counted. Raises
    PassRunning when a pass holds the lock (try again in a few seconds). PostgreSQL only."""
    now = now or timezone.now()
    if db.vendor != "postgresql":
        return _rebuild_with_passes(now)
    with transaction.atomic(), db.cursor() as cursor:
        if not take_pass_lock():
            raise PassRunning("a rollup pass is running; try again in a few seconds")
        # Enough memory for the GROUP BYs to hash their cells rather than sort millions of rows.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # The queue first, then the messages: see the module's docstring.
        cursor.execute("DELETE FROM receipts_rolluppending")
        # Only passes (which wait for the lock) and the check read the snapshots; pages read
        # the rollup rows, so those are deleted rather than truncated, never blocking a page.
        cursor.execute(f"TRUNCATE {Snapshot._meta.db_table}")
        # Settled buckets (their messages purged by retention) keep their fine rows: a recount
        # would find them empty. The coarse rows are all made again from the fine ones.
        settled = settled_before(now)
        for table in (Rollup._meta.db_table, RollupReason._meta.db_table):
            cursor.execute(f"DELETE FROM {table} WHERE %(settled)s::timestamptz IS NULL OR bucket >= %(settled)s",
                           {"settled": settled})  # fmt: skip
        cursor.execute(f"DELETE FROM {CoarseRollup._meta.db_table}")
        cursor.execute(f"DELETE FROM {CoarseRollupReason._meta.db_table}")
        cursor.execute(SNAPSHOT_SQL)
        counted = cursor.rowcount
        for grain in Grain.values:
            # A bucket older than a grain keeps is never written, as in maintain.Deltas.add;
            # nor is a settled one.
            oldest = max(filter(None, (kept_since(grain, now), settled)), default=None)
            cursor.execute(_rollup_sql(grain), {"grain": grain, "oldest": oldest})
            cursor.execute(_reason_sql(grain), {"grain": grain, "oldest": oldest})
        for level in LEVEL_DIMENSIONS:
            cursor.execute(coarse_sql(level))
            cursor.execute(coarse_reason_sql(level))
        # Fresh statistics for the pages' plans: right after a first rebuild the planner thinks
        # the tables hold one row per window (measured at 10 M: a sort where a hash would do).
        for model in (Rollup, RollupReason, CoarseRollup, CoarseRollupReason):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return counted


def _rebuild_with_passes(now: datetime) -> int:
    """The demo's SQLite, a few thousand messages: forget everything and let the passes count
    every message again (slow for millions; SQLite has one writer, so nothing runs meanwhile)."""
    with transaction.atomic():
        for model in (Rollup, RollupReason, CoarseRollup, CoarseRollupReason):
            model.objects.all().delete()
        Snapshot.objects.all().delete()
        RollupPending.objects.all().delete()
        RollupPending.objects.bulk_create(
            RollupPending(message_id=message_id) for message_id in Message.objects.values_list("id", flat=True)
        )
    counted = RollupPending.objects.count()
    maintain.roll_up_all(seconds=float("inf"), now=now)
    return counted
