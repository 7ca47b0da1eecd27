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
from receipts.rollups.maintain import _CELL, _REASON_CELL, SNAPSHOT_FIELDS, Deltas, settled_before
from receipts.rollups.models import Rollup, RollupReason, Snapshot

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


def _found_rows(now: datetime) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    columns = (*_CELL, "cost", *COUNT_COLUMNS)
    found = {}
    for values in _unsettled(Rollup.objects.order_by(), now).values_list(*columns).iterator(chunk_size=CHUNK):
        cell, figures = values[: len(_CELL)], values[len(_CELL) :]
        if any(figures):
            found[cell] = figures
    return found


def _unsettled(rows: QuerySet[Any], now: datetime) -> QuerySet[Any]:
    settled = settled_before(now)
    return rows if settled is None else rows.filter(bucket__gte=settled)


def _compare(expected: Deltas) -> list[Difference]:
    differences = []
    wanted = {tuple(row[: len(_CELL)]): tuple(row[len(_CELL) :]) for row in expected.rows()}
    found = _found_rows(expected.now)
    names = ("cost", *COUNT_COLUMNS)
    zeros = (Decimal(0),) + (0,) * len(COUNT_COLUMNS)
    for cell in wanted.keys() | found.keys():
        for name, want, got in zip(names, wanted.get(cell, zeros), found.get(cell, zeros), strict=True):
            if want != got:
                differences.append(Difference("rollup", cell, name, want, got))
    wanted_reasons = {tuple(row[:-1]): row[-1] for row in expected.reason_rows()}
    found_reasons = {
        tuple(values[:-1]): values[-1]
        for values in _unsettled(RollupReason.objects.order_by(), expected.now)
        .values_list(*_REASON_CELL, "count")
        .iterator(chunk_size=CHUNK)
        if values[-1]
    }
    for cell in wanted_reasons.keys() | found_reasons.keys():
        if wanted_reasons.get(cell, 0) != found_reasons.get(cell, 0):
            differences.append(
                Difference("reason", cell, "count", wanted_reasons.get(cell, 0), found_reasons.get(cell, 0))
            )
    return differences


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
