"""Proof that the rollups are right: every cell equals the sum of its messages' contributions.

Kept exact by two facts the check verifies in one snapshot of the database: the rollup rows are
the sum of the messages' snapshot contributions, and every message no longer queued has the
snapshot of its current row. A queued message (a receipt arrived since the last pass) is
counted by its snapshot, as the rollups count it until the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from receipts.models import Message, RollupPending
from receipts.rollups.figures import COUNT_COLUMNS, MESSAGE_FIELDS, Contribution, contribution
from receipts.rollups.maintain import Deltas, settled_before
from receipts.rollups.models import CoarseRollup, CoarseRollupReason, Rollup, RollupReason, Snapshot
from receipts.rollups.sql import CELL, COARSE_CELL, COARSE_REASON_CELL, REASON_CELL, SNAPSHOT_FIELDS

CHUNK = 5000


@dataclass(frozen=True)
class Difference:
    table: str
    cell: tuple[Any, ...]
    column: str
    expected: Any
    found: Any


def _expected(now: datetime) -> Deltas:
    queued = set(RollupPending.objects.values_list("message_id", flat=True))
    snapshots = {
        row["message_id"]: Contribution(**{name: row[name] for name in SNAPSHOT_FIELDS})
        for row in Snapshot.objects.filter(message_id__in=queued).values("message_id", *SNAPSHOT_FIELDS)
    }
    expected = Deltas(now=now)
    messages = Message.objects.order_by()
    if (settled := settled_before(now)) is not None:
        # Settled buckets count messages retention has deleted: nothing to recount them from.
        messages = messages.filter(submitted_at__gte=settled)
    for row in messages.values(*MESSAGE_FIELDS).iterator(chunk_size=CHUNK):
        if row["id"] in queued:
            if row["id"] in snapshots:
                expected.add(snapshots[row["id"]], +1)
        else:
            expected.add(contribution(row), +1)
    return expected


def _found_rows(
    model: type[Rollup] | type[CoarseRollup], cell: tuple[str, ...], now: datetime
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    columns = (*cell, "cost", *COUNT_COLUMNS)
    found = {}
    for values in _unsettled(model.objects.order_by(), now).values_list(*columns).iterator(chunk_size=CHUNK):
        key, figures = values[: len(cell)], values[len(cell) :]
        if any(figures):
            found[key] = figures
    return found


def _found_reasons(
    model: type[RollupReason] | type[CoarseRollupReason], cell: tuple[str, ...], now: datetime
) -> dict[tuple[Any, ...], int]:
    rows = _unsettled(model.objects.order_by(), now).values_list(*cell, "count")
    return {tuple(values[:-1]): values[-1] for values in rows.iterator(chunk_size=CHUNK) if values[-1]}


def _unsettled(rows: QuerySet[Any], now: datetime) -> QuerySet[Any]:
    """Rows of buckets not yet settled: a settled bucket's messages may be purged (retention)."""
    settled = settled_before(now)
    return rows if settled is None else rows.filter(bucket__gte=settled)


def _compare_rows(
    table: str, cell: tuple[str, ...], wanted_rows: list[tuple[Any, ...]], found: dict[tuple[Any, ...], tuple[Any, ...]]
) -> list[Difference]:
    differences = []
    wanted = {tuple(row[: len(cell)]): tuple(row[len(cell) :]) for row in wanted_rows}
    names = ("cost", *COUNT_COLUMNS)
    zeros = (Decimal(0),) + (0,) * len(COUNT_COLUMNS)
    for key in wanted.keys() | found.keys():
        for name, want, got in zip(names, wanted.get(key, zeros), found.get(key, zeros), strict=True):
            if want != got:
                differences.append(Difference(table, key, name, want, got))
    return differences


def _compare_reasons(
    table: str, wanted_rows: list[tuple[Any, ...]], found: dict[tuple[Any, ...], int]
) -> list[Difference]:
    wanted = {tuple(row[:-1]): row[-1] for row in wanted_rows}
    return [
        Difference(table, key, "count", wanted.get(key, 0), found.get(key, 0))
        for key in wanted.keys() | found.keys()
        if wanted.get(key, 0) != found.get(key, 0)
    ]


def _compare(expected: Deltas) -> list[Difference]:
    """The fine rows against the recount, and the coarse rows against the same recount added up
    per level: both must equal what every message contributes."""
    now = expected.now
    return [
        *_compare_rows("rollup", CELL, expected.rows(), _found_rows(Rollup, CELL, now)),
        *_compare_reasons("reason", expected.reason_rows(), _found_reasons(RollupReason, REASON_CELL, now)),
        *_compare_rows(
            "coarse rollup", COARSE_CELL, expected.coarse_rows(), _found_rows(CoarseRollup, COARSE_CELL, now)
        ),
        *_compare_reasons(
            "coarse reason",
            expected.coarse_reason_rows(),
            _found_reasons(CoarseRollupReason, COARSE_REASON_CELL, now),
        ),
    ]


def check(*, now: datetime | None = None) -> list[Difference]:
    """Every cell that differs from a full recount (empty when the rollups are right)."""
    now = now or timezone.now()
    outermost = not db.in_atomic_block
    with transaction.atomic():
        if outermost and db.vendor == "postgresql":
            # One snapshot for the messages, the queue, the snapshots and the rollups alike.
            with db.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _compare(_expected(now))
