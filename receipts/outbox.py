"""The outbox: changes the apps above must see (a status change, a missing receipt), written in
the transaction that made the change (receipts/store.py), published to Celery after commit off
the request path (receipts/publisher.py), and handed to the registered consumers.

Receipts knows nothing of what its consumers do: an app above subscribes with
`register_consumer` from its AppConfig.ready (retries registers the rules' decisions), as
healthchecks keeps its `Flip` records beside `Check` and lets the alerting side read them.

An event's life: created with `dispatched_at` stamped (it is handed to the publisher as the
transaction commits; the publisher publishes a task unless one already waits in the broker,
which will claim it) → processed once (`processed_at`). A publish that fails clears the stamp;
the sweeper publishes again what has no stamp, and what was stamped long ago and is still not
processed (the process died between commit and publish, or the broker lost it). Stamping
optimistically spares the hot path a second write per event. Tasks are idempotent: an event
published twice is processed once.

One bad event never blocks the others: a consumer that raises on an event (a poison event)
has what it wrote rolled back to a savepoint, the failure is recorded on the event (count,
masked error, when to try again) and the batch goes on. The sweeper publishes it again after
its backoff, after the events that never failed; after FAILURE_BACKOFF is spent it is parked
as failed, listed in the admin (Receipts → Outbox events) and counted by
`outbox_failure_counts`, until an admin puts it back in line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dlrconsole.lib.failures import failure_summary
from dlrconsole.lib.request_id import request_id_bound
from dlrconsole.lib.tasks import kick_taken, kicks_coalesced, mark_waiting, task_by_name
from receipts import store
from receipts.models import OutboxEvent
from receipts.publisher import OutboxPublisher

# How long one task goes on deciding the backlog before handing the rest to another task. Short:
# the worker's processes take the feed and the sends between drains. With 5 s, one of two
# processes drained decisions all the time and resends waited up to 74 s for the other
# (bench/decision_latency.py at 300/s, 2026-12-07).
DRAIN_SECONDS = 1.0
# Dispatched but unprocessed this long: lost in flight. Well below the broker's visibility
# timeout, well above a normal queue wait.
REDISPATCH_AFTER = timedelta(minutes=2)
# receipts/tasks.py, which imports this module.
PROCESS_OUTBOX_EVENTS = "receipts.tasks.process_outbox_events"
# Waits after a consumer failed on an event before it is tried again; one failure more and the
# event is parked as failed. A bug fixed within the hour lets the event through unaided.
FAILURE_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1))
# The task header mapping each event id of a batch to its webhook's request id. Each event
# also keeps the id in its row (`OutboxEvent.request_id`), which is what the task binds: the
# sweeper publishes without a header. The header serves the events written before the column.
REQUEST_IDS_HEADER = "dlr_request_ids"

logger = logging.getLogger(__name__)


class BatchRun(Protocol):
    """A consumer's run over one claimed batch: it reads what the events share once, set-based
    (their messages, locked), consumes each event, and may hold back what it writes for
    `finish`, which writes it all set-based after the last event, in the claim's transaction.
    If `finish` raises, the claim is rolled back and the batch runs again event by event with
    the plain `consume`: a batch's failure costs speed, never an event."""

    def holds(self, event: OutboxEvent) -> bool:
        """`consume` will only hold rows for the event, writing nothing: no savepoint is needed to
        undo it. (It may read what every event reads alike, e.g. cached rules; an error there is
        not the event's, and fails the whole batch, which its task retries.)"""

    def consume(self, event: OutboxEvent, now: datetime) -> object: ...

    def discard(self, event: OutboxEvent) -> None:
        """The event just consumed failed (this consumer or another): hold nothing of it."""

    def finish(self, now: datetime) -> object: ...


@dataclass(frozen=True)
class Consumer:
    """`consume(event, now)` runs inside the transaction that claims the event, so what it
    writes commits together with the claim: exactly once. `batch(events, now)`, if given, is
    called once for a claimed batch, before its events, and returns the run that consumes them
    (BatchRun)."""

    name: str
    consume: Callable[[OutboxEvent, datetime], object]
    batch: Callable[[list[OutboxEvent], datetime], BatchRun] | None = None


class _BatchWriteFailed(Exception):
    """A consumer's `finish` failed: the batch runs again event by event."""


_consumers: dict[str, Consumer] = {}


def register_consumer(consumer: Consumer) -> None:
    _consumers[consumer.name] = consumer


def outbox_consumers() -> list[Consumer]:
    return list(_consumers.values())


def publish_after_commit(event_ids: Sequence[int]) -> None:
    transaction.on_commit(lambda: _hand_off(event_ids))


def _hand_off(event_ids: Sequence[int]) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The demo runs tasks in-process: there is no broker to wait on.
        outbox_publish(list(event_ids))
        return
    publisher.submit(event_ids)


def outbox_publish(event_ids: list[int], request_ids: dict[int, str] | None = None) -> None:
    """Publish one task for the batch. Raises if the broker refuses. `request_ids`: the webhook
    request that committed each event, carried in a header for the task's log lines (a header,
    not an argument: a task published by an older release still runs)."""
    headers = {REQUEST_IDS_HEADER: {str(k): v for k, v in request_ids.items()}} if request_ids else None
    task_by_name(PROCESS_OUTBOX_EVENTS).apply_async(args=[event_ids], headers=headers)


def outbox_hand_over(event_ids: list[int], request_ids: dict[int, str] | None = None) -> None:
    """The publisher's hand-over: a task, unless one already waits in the broker. That task
    claims every event committed before it starts (outbox_drain), these included; one task per
    publisher linger had kept ~2,000 tasks a minute at 300 receipts/s, each ~10 ms of a worker's
    time before its first event (bench/decision_latency.py, 2026-12-07). Events whose hand-over
    is skipped keep their dispatch stamp: if the waiting task is lost, the sweeper publishes
    them again, as any event lost in flight."""
    if not mark_waiting(PROCESS_OUTBOX_EVENTS):
        return
    try:
        outbox_publish(event_ids, request_ids)
    except Exception:
        kick_taken(PROCESS_OUTBOX_EVENTS)  # none waits: the next hand-over must publish
        raise


publisher = OutboxPublisher(outbox_hand_over, on_failure=store.outbox_mark_unpublished)


def outbox_redispatch(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish again what was never published, was lost in flight, or is due again after a
    failure; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        # Locked, SKIP LOCKED: two sweepers never publish the same row twice.
        rows = store.outbox_lost(lost_before=now - REDISPATCH_AFTER, now=now, limit=limit)
        if rows:
            # Published inside the transaction: if the broker refuses, the stamp rolls back.
            outbox_publish(rows)
            store.outbox_mark_dispatched(rows, now=now)
    return len(rows)


def outbox_process_batch(
    event_ids: Sequence[int],
    *,
    now: datetime | None = None,
    request_ids: Mapping[str, object] | None = None,
    fill: bool = False,
) -> int:
    """Process a batch of events, each at most once; one event whose consumer fails is recorded
    and the others go on. What the consumers kick (the attempt runner, the feed deliverer) is
    kicked once for the whole batch. How many were processed now. Each event is processed
    under the id of the request that committed it, kept in its row (or, for an event written
    before the row kept it, given in `request_ids`, by event id as text).

    `fill` (the task's way): top each claim up to DLR_OUTBOX_CLAIM_BATCH with other events
    waiting. Under load the broker holds many small batches (one per publisher linger); the
    first task to run then decides the backlog in full batches and the tasks behind it find
    their events done, so a batch's fixed cost is paid once for hundreds of events, not once
    for a handful."""
    now = now or timezone.now()
    size = settings.DLR_OUTBOX_CLAIM_BATCH
    with kicks_coalesced():
        return sum(
            _process_claimed(event_ids[i : i + size], now=now, request_ids=request_ids or {}, fill=size if fill else 0)
            for i in range(0, max(len(event_ids), 1), size)
        )


def outbox_drain(
    event_ids: Sequence[int], *, request_ids: Mapping[str, object] | None = None, seconds: float | None = None
) -> int:
    """The task's way: the events named, each claim topped up with the backlog, then the backlog
    in full claims until one comes back short or `seconds` have gone by; how many were
    processed. A task stopped by its time with work left hands the rest to a task of its own
    (hand-overs skip publishing while a task waits, so the backlog must not wait for the next).

    A short claim ends the task: events committed after it get a hand-over of their own (the
    mark was cleared when the task started). Going on while claims found anything at all polled
    the outbox: at 150 receipts/s each claim found a handful, and the worker spent twice the
    CPU per event it spends at 300/s (bench/decision_latency.py, 2026-12-07)."""
    full = settings.DLR_OUTBOX_CLAIM_BATCH
    seconds = DRAIN_SECONDS if seconds is None else seconds
    started = time.monotonic()
    done = last = outbox_process_batch(event_ids, request_ids=request_ids, fill=True)
    while last >= full and time.monotonic() - started < seconds:
        last = outbox_process_batch([], fill=True)
        done += last
    if last >= full:
        try:
            outbox_hand_over([])
        except Exception as exc:  # the sweeper publishes what waits too long
            logger.warning("outbox: could not ask for the rest of the backlog (%s)", exc)
    return done


def outbox_process(event_id: int, *, now: datetime | None = None) -> bool:
    """Hand an event to every consumer, exactly once; False if it was already processed, is
    not due (a failure's backoff, parked), or a consumer failed on it now."""
    return _process_claimed([event_id], now=now or timezone.now()) == 1


def _process_claimed(
    event_ids: Sequence[int], *, now: datetime, request_ids: Mapping[str, object] | None = None, fill: int = 0
) -> int:
    """Claim the events (one statement; a second tops the claim up) and hand each to the
    consumers; how many succeeded.

    The claims and what the consumers write commit together: a worker that dies in between
    leaves the events unclaimed, and their redelivery (acks late) processes them then. Each
    event's consumers run in a savepoint: when one raises, all they wrote for that event is
    rolled back, the failure is recorded on the event in the claim's transaction, and the event
    is tried again later; the batch goes on. A batch is a few hundred events at most
    (DLR_OUTBOX_CLAIM_BATCH): the messages it locks wait for it, and receipts for them too."""
    try:
        return _claim_and_consume(event_ids, now=now, request_ids=request_ids, batched=True, fill=fill)
    except _BatchWriteFailed as failed:
        logger.warning("outbox batch of %d: %s; running it again event by event", len(event_ids), failed)
        return _claim_and_consume(event_ids, now=now, request_ids=request_ids, batched=False, fill=fill)


def _claim_and_consume(
    event_ids: Sequence[int], *, now: datetime, request_ids: Mapping[str, object] | None, batched: bool, fill: int
) -> int:
    with transaction.atomic():
        events = store.outbox_claim_batch(event_ids, now=now, fill=fill)
        if not events:
            return 0
        runs = [(consumer, _for_batch(consumer, events, now) if batched else None) for consumer in outbox_consumers()]
        processed = 0
        for event in events:
            try:
                request_id = event.request_id or (request_ids or {}).get(str(event.pk))
                # A savepoint undoes what a failing event wrote; an event every consumer only
                # holds rows for writes nothing to undo (two round trips saved per event).
                held = all(run is not None and run.holds(event) for _, run in runs)
                with request_id_bound(request_id), nullcontext() if held else transaction.atomic():
                    for consumer, run in runs:
                        (run.consume if run is not None else consumer.consume)(event, now)
            except SoftTimeLimitExceeded:
                raise  # the task ran out of time, not the event: unclaimed, redelivered whole
            except Exception as exc:
                for _, run in runs:
                    if run is not None:
                        run.discard(event)
                _record_failure(event, exc, now=now)
            else:
                processed += 1
        for consumer, run in runs:
            if run is not None:
                _finish(consumer, run, now)
    return processed


def _for_batch(consumer: Consumer, events: list[OutboxEvent], now: datetime) -> BatchRun | None:
    if consumer.batch is None:
        return None
    try:
        with transaction.atomic():
            return consumer.batch(events, now)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # Reading ahead is an optimisation: without it each event reads for itself.
        logger.warning("outbox consumer %s could not prepare a batch: %s", consumer.name, failure_summary(exc))
        return None


def _finish(consumer: Consumer, run: BatchRun, now: datetime) -> None:
    try:
        run.finish(now)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        # Raised out of the claim's transaction, which rolls everything back.
        raise _BatchWriteFailed(f"consumer {consumer.name} could not write the batch: {failure_summary(exc)}") from exc


def outbox_retry_delay(failures: int) -> timedelta | None:
    """The wait after an event's `failures`-th failure; None: park it."""
    return FAILURE_BACKOFF[failures - 1] if failures <= len(FAILURE_BACKOFF) else None


def _record_failure(event: OutboxEvent, exc: Exception, *, now: datetime) -> None:
    failures = event.failures + 1
    delay = outbox_retry_delay(failures)
    error = failure_summary(exc)
    store.outbox_record_failure(event.pk, error=error, retry_at=None if delay is None else now + delay, now=now)
    if delay is None:
        logger.error("outbox event %s parked as failed after %s failures: %s", event.pk, failures, error)
    else:
        logger.warning("outbox event %s failed (%s of %s): %s", event.pk, failures, len(FAILURE_BACKOFF) + 1, error)


def outbox_failure_counts() -> dict[str, int]:
    """For monitoring: events waiting to be tried again after a failure, and events parked."""
    pending = OutboxEvent.objects.filter(processed_at__isnull=True)
    return {
        "retrying": pending.filter(failed_at__isnull=True, failures__gt=0).count(),
        "failed": pending.filter(failed_at__isnull=False).count(),
    }


def outbox_retry_parked(event_ids: Sequence[int]) -> int:
    """Put parked events back in line once their cause is fixed (the admin's action)."""
    return store.outbox_retry_parked(event_ids)
