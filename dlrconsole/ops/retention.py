"""Retention: each big table keeps its rows as long as its setting says (DLR_RETENTION_*,
docs/SCALING.md "Retention"), and a daily beat task deletes what is older.

Every table is purged in batches of DLR_RETENTION_BATCH rows, one short transaction per batch
whose rows are locked with SKIP LOCKED (a row the hot path is writing waits for the next run),
so no lock is held long and no transaction grows with the backlog. When asked, a batch is
written to the export (dlrconsole/lib/purge_export.py) before it is deleted.

The rollups are not recounted: a message is deleted with its rollup snapshot, in one
transaction, and never while a change of it waits in the rollup queue, so the day and hour
rows already built keep counting it (receipts/rollups/maintain.py `settled_before`).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db import models, transaction
from django.utils import timezone

from alerts.models import Alert, Notification
from dlrconsole.lib.purge_export import PurgeExport
from dlrconsole.ops.cascade import delete_cascading
from receipts.models import Message, OutboxEvent, Receipt, RollupPending
from receipts.rollups.models import Snapshot
from retries.feed.models import FeedDelivery, FeedEvent
from retries.models import Attempt, Decision

RUN_LOCK = int.from_bytes(hashlib.blake2b(b"retention-run", digest_size=8).digest(), "big", signed=True)
# Never exported: kept only to resend, and never shown to anyone (receipts/models.py).
NOT_EXPORTED: dict[type[models.Model], set[str]] = {Message: {"body"}}
# Counted apart (and within receipts_receipt too): the parked receipts that expired.
PARKED = "parked receipts expired"
OPEN_DELIVERIES = (FeedDelivery.Status.PENDING, FeedDelivery.Status.FAILED)


def cutoff(days: int, now: datetime) -> datetime | None:
    """The start of the oldest UTC day a table keeps (whole days, so whole day buckets of the
    rollups are either kept or settled); None when the table keeps its rows for ever."""
    if not days:
        return None
    return (now - timedelta(days=days)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Run:
    """One run's limits, its export and what it deleted (per table)."""

    now: datetime
    batch: int
    deadline: float
    export: PurgeExport | None = None
    deleted: Counter[str] = field(default_factory=Counter)

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    def save(self, model: type[models.Model], ids: list[int]) -> None:
        if self.export is None or not ids:
            return
        skipped = NOT_EXPORTED.get(model, set())
        names = [f.attname for f in model._meta.concrete_fields if f.name not in skipped]
        self.export.write(model._meta.db_table, model._default_manager.filter(pk__in=ids).order_by("pk").values(*names))


def retention_apply(
    *,
    now: datetime | None = None,
    export_dir: str | Path | None = None,
    seconds: float | None = None,
    batch: int | None = None,
) -> dict[str, int] | None:
    """Delete what every table keeps no longer; rows deleted per table, or None when another
    run holds the lock. `export_dir` (default DLR_RETENTION_EXPORT_DIR) gets the rows first."""
    now = now or timezone.now()
    directory = export_dir if export_dir is not None else settings.DLR_RETENTION_EXPORT_DIR
    run = Run(
        now=now,
        batch=batch or settings.DLR_RETENTION_BATCH,
        deadline=time.monotonic() + (seconds or settings.DLR_RETENTION_PASS_SECONDS),
        export=PurgeExport(directory, started=now) if directory else None,
    )
    if not _take_run_lock():
        return None
    try:
        # Dependants first: what is left of a message when it goes is then already small.
        _purge_feed(run, cutoff(settings.DLR_RETENTION_FEED_DAYS, now))
        _purge_alerts(run, cutoff(settings.DLR_RETENTION_ALERTS_DAYS, now))
        _purge_outbox(run, cutoff(settings.DLR_RETENTION_OUTBOX_DAYS, now))
        _purge_parked_receipts(run, cutoff(settings.DLR_RETENTION_PARKED_RECEIPTS_DAYS, now))
        _purge_receipts(run, cutoff(settings.DLR_RETENTION_RECEIPTS_DAYS, now))
        _purge_messages(run, cutoff(settings.DLR_RETENTION_MESSAGES_DAYS, now))
    finally:
        _release_run_lock()
    return dict(run.deleted)


def _take_run_lock() -> bool:
    """A session lock for the whole run (its batches are many transactions): a second beat,
    or the command run by hand meanwhile, does nothing. SQLite (the demo) has one writer."""
    if db.vendor != "postgresql":
        return True
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUN_LOCK])
        return bool(cursor.fetchone()[0])


def _release_run_lock() -> None:
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RUN_LOCK])


def _batches(run: Run, take: Callable[[], list[int]], delete: Callable[[list[int]], None]) -> None:
    """Batches until nothing is left to take or the run's time is up: each batch is taken
    (locked), exported and deleted in its own transaction."""
    while run.time_left():
        with transaction.atomic():
            ids = take()
            if not ids:
                return
            delete(ids)


def _ids(queryset: models.QuerySet[Any], run: Run, *order: str) -> list[int]:
    locked = queryset.select_for_update(skip_locked=True, of=("self",)) if db.vendor == "postgresql" else queryset
    return list(locked.order_by(*order).values_list("pk", flat=True)[: run.batch])


def _keyset(run: Run, queryset: models.QuerySet[Any], stamp: str, before: datetime) -> Callable[[], list[int]]:
    """Takes for a table without an index on its time: walks the primary key from the oldest
    row (ids grow with time) and stops past `before`, so a batch never scans the whole table
    to find that nothing is left. Rows kept on the way (still needed) are stepped over."""
    state = {"after": 0, "done": False}

    def take() -> list[int]:
        while not state["done"] and run.time_left():
            window = list(
                queryset.model._default_manager.filter(pk__gt=state["after"])
                .order_by("pk")
                .values_list("pk", stamp)[: run.batch]
            )
            if not window:
                state["done"] = True
                return []
            state["after"] = window[-1][0]
            state["done"] = window[-1][1] >= before
            in_window = [pk for pk, at in window if at < before]
            if ids := _ids(queryset.filter(pk__in=in_window), run, "pk"):
                return ids
        return []

    return take


def _purge_feed(run: Run, before: datetime | None) -> None:
    """Feed events whose every delivery is finished (delivered or abandoned), with them."""
    if before is None:
        return
    finished = FeedEvent.objects.filter(created_at__lt=before).exclude(deliveries__status__in=OPEN_DELIVERIES)

    def delete(ids: list[int]) -> None:
        if run.export is not None:
            run.save(FeedEvent, ids)
            run.save(FeedDelivery, list(FeedDelivery.objects.filter(event_id__in=ids).values_list("pk", flat=True)))
        run.deleted.update(delete_cascading(FeedEvent, ids))

    _batches(run, _keyset(run, finished, "created_at", before), delete)


def _purge_alerts(run: Run, before: datetime | None) -> None:
    """Resolved alerts (their events, notifications and tries go with them), and test sends."""
    if before is None:
        return
    resolved = Alert.objects.filter(state=Alert.State.RESOLVED, resolved_at__lt=before)
    tests = Notification.objects.filter(alert__isnull=True, created_at__lt=before)
    _purge_by_id(run, Alert, resolved)
    _purge_by_id(run, Notification, tests)


def _purge_by_id(run: Run, model: type[models.Model], queryset: models.QuerySet[Any]) -> None:
    def delete(ids: list[int]) -> None:
        run.save(model, ids)
        run.deleted.update(delete_cascading(model, ids))

    _batches(run, lambda: _ids(queryset, run, "pk"), delete)


def _purge_outbox(run: Run, before: datetime | None) -> None:
    """Processed events no decision points to: the rules have seen them, nothing shows them.
    Events with a decision stay with their message (the decision says what made it)."""
    if before is None:
        return
    seen = OutboxEvent.objects.filter(processed_at__isnull=False).exclude(
        pk__in=Decision.objects.filter(outbox_event__isnull=False).values("outbox_event_id")
    )

    def delete(ids: list[int]) -> None:
        run.save(OutboxEvent, ids)
        run.deleted.update(delete_cascading(OutboxEvent, ids))

    _batches(run, _keyset(run, seen, "created_at", before), delete)


def _delete_receipts(run: Run, ids: list[int]) -> None:
    # Raw statements: the ORM's delete would load every receipt, raw payload included, to
    # find the outbox events pointing to it.
    run.save(Receipt, ids)
    with db.cursor() as cursor:
        cursor.execute(UNLINK_RECEIPTS_SQL, [ids])
        cursor.execute(DELETE_RECEIPTS_SQL, [ids])
        run.deleted[Receipt._meta.db_table] += cursor.rowcount


UNLINK_RECEIPTS_SQL = f"UPDATE {OutboxEvent._meta.db_table} SET receipt_id = NULL WHERE receipt_id = ANY(%s)"  # noqa: S608 - constants
DELETE_RECEIPTS_SQL = f"DELETE FROM {Receipt._meta.db_table} WHERE id = ANY(%s)"  # noqa: S608 - constants
MESSAGES_RECEIPTS_SQL = f"SELECT id FROM {Receipt._meta.db_table} WHERE message_id = ANY(%s)"  # noqa: S608 - constants
DELETE_SNAPSHOTS_SQL = f"DELETE FROM {Snapshot._meta.db_table} WHERE message_id = ANY(%s)"  # noqa: S608 - constants


def _purge_parked_receipts(run: Run, before: datetime | None) -> None:
    """Receipts that never found their message: the product never registered it."""
    if before is None:
        return
    parked = Receipt.objects.filter(message__isnull=True, received_at__lt=before)

    def delete(ids: list[int]) -> None:
        _delete_receipts(run, ids)
        run.deleted[PARKED] += len(ids)

    # No order: the parked receipts' own partial index finds them; the time index would walk
    # every receipt kept since the receipts' cutoff.
    _batches(run, lambda: _ids(parked, run), lambda ids: delete(ids))


def _purge_receipts(run: Run, before: datetime | None) -> None:
    if before is None:
        return
    old = Receipt.objects.filter(received_at__lt=before)
    _batches(run, lambda: _ids(old, run, "received_at"), lambda ids: _delete_receipts(run, ids))


def _purge_messages(run: Run, before: datetime | None) -> None:
    """Messages with all that hangs on them. One whose change waits in the rollup queue is
    left for the next run: deleting it now would lose that change from the settled rollups."""
    if before is None:
        return
    old = Message.objects.filter(submitted_at__lt=before).exclude(pk__in=RollupPending.objects.values("message_id"))

    def delete(ids: list[int]) -> None:
        with db.cursor() as cursor:
            cursor.execute(MESSAGES_RECEIPTS_SQL, [ids])
            receipts = [row[0] for row in cursor.fetchall()]
        if run.export is not None:
            run.save(Message, ids)
            run.save(Decision, list(Decision.objects.filter(message_id__in=ids).values_list("pk", flat=True)))
            run.save(Attempt, list(Attempt.objects.filter(chain_root_id__in=ids).values_list("pk", flat=True)))
        _delete_receipts(run, receipts)
        with db.cursor() as cursor:
            cursor.execute(DELETE_SNAPSHOTS_SQL, [ids])
        run.deleted.update(delete_cascading(Message, ids))

    _batches(run, lambda: _ids(old, run, "submitted_at", "pk"), delete)
