"""Outbox events are claimed and decided in batches: one claim and one read of the messages and
their chains for the batch, each event still decided exactly once and as if on its own."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection as db
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from receipts.models import OutboxEvent
from receipts.outbox import outbox_process, outbox_process_batch
from receipts.statuses import Status
from receipts.tasks import process_outbox_events
from retries.feed.models import FeedEvent, ProductEndpoint
from retries.models import Attempt, Decision
from retries.rule_cache import rule_cache
from tests.factories import GENERIC_SECRET, MessageFactory

# (status the event reports, the message's reason and class): the shipped rules' main cases.
CASES = [
    ("delivered", "", ""),
    ("undelivered", "absent_subscriber", "temporary"),
    ("undelivered", "unknown_subscriber", "permanent"),
    ("expired", "", ""),
]


def event_for(message, status: str) -> OutboxEvent:
    return OutboxEvent.objects.create(message=message, kind="status_changed", status=status, created_at=timezone.now())


def traffic(connection=None) -> list[OutboxEvent]:
    """Events for fresh messages of every case, a failure then a late delivery of one message,
    and a resend's failure."""
    extra = {"connection": connection} if connection else {}
    events = []
    for status, reason, error_class in CASES * 3:
        message = MessageFactory(status=status, reason=reason, error_class=error_class, **extra)
        events.append(event_for(message, status))
    late = MessageFactory(status=Status.DELIVERED, reason="", error_class="", **extra)
    events += [event_for(late, "undelivered"), event_for(late, "delivered")]
    original = MessageFactory(status=Status.UNDELIVERED, reason="absent_subscriber", error_class="temporary", **extra)
    resend = MessageFactory(
        chain_root=original, status=Status.UNDELIVERED, reason="absent_subscriber", error_class="temporary",
        connection=original.connection,
    )  # fmt: skip
    events += [event_for(original, "undelivered"), event_for(resend, "undelivered")]
    return events


def decided(events: list[OutboxEvent]) -> list[list[tuple[str, str, str, str]]]:
    return [
        list(
            Decision.objects.filter(outbox_event=event)
            .order_by("id")
            .values_list("action", "state", "skip_reason", "rule__name")
        )
        for event in events
    ]


def told(events: list[OutboxEvent]) -> list[list[tuple[str, int]]]:
    """What the product is told of each event's message: the feed events and their deliveries."""
    return [
        sorted(
            (feed_event.type, feed_event.deliveries.count())
            for feed_event in FeedEvent.objects.filter(message_id=event.message_id)
        )
        for event in events
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("default_rules")
def test_a_batch_decides_each_event_as_it_would_be_decided_alone():
    # Two endpoints: one subscribed to everything, one to deliveries only.
    ProductEndpoint.objects.create(name="all", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    ProductEndpoint.objects.create(
        name="deliveries", url="http://127.0.0.1:9/delivered", secret=GENERIC_SECRET, event_types=["message.delivered"]
    )
    alone, batched = traffic(), traffic()
    for event in alone:
        assert outbox_process(event.pk) is True

    assert outbox_process_batch([event.pk for event in batched]) == len(batched)

    assert decided(batched) == decided(alone)
    assert told(batched) == told(alone)
    # A failure decided after its message was delivered sends nothing, in a batch as alone.
    assert not Attempt.objects.filter(chain_root_id=batched[-4].message_id).exists()
    # Three fresh temporary failures, the original and its resend (the chain's second attempt).
    assert Attempt.objects.filter(decision__outbox_event__in=batched).count() == 5


@pytest.mark.django_db
@pytest.mark.usefixtures("default_rules")
def test_a_batch_claims_and_reads_its_messages_in_the_same_statements_whatever_its_size(settings):
    def statements(size: int) -> int:
        events = [event_for(MessageFactory(status="delivered"), "delivered") for _ in range(size)]
        with CaptureQueriesContext(db) as queries:
            assert outbox_process_batch([e.pk for e in events]) == size
        return len(queries)

    # As in production, the rules are read once per few seconds (the tests' settings say never).
    settings.DLR_RULES_CACHE_SECONDS = 60
    rule_cache.clear()
    try:
        statements(2)
        small, large = statements(5), statements(25)
    finally:
        rule_cache.clear()
    # Per event: nothing. Its decision, feed event and delivery are decided in memory, with no
    # savepoint (nothing to undo). Per batch: the claim and the reads of the messages and chains
    # (with their savepoints), the endpoints read once (none here, so no deliveries), then one
    # insert of decisions and one of feed events.
    assert large == small
    assert small == 14


@pytest.mark.django_db
@pytest.mark.usefixtures("default_rules")
def test_a_batch_whose_writes_fail_runs_again_event_by_event_and_loses_nothing(caplog):
    events = [event_for(MessageFactory(status=s, reason=r, error_class=c), s) for s, r, c in CASES]
    failing = events[1]  # the temporary failure: its resend's key is taken, by another chain
    other = MessageFactory()
    Decision.objects.create(
        message=other, action="retry_same", state="scheduled", why="a resend", created_at=timezone.now()
    )
    Attempt.objects.create(
        decision=Decision.objects.get(message=other), chain_root=other, number=1, action="retry_same",
        idempotency_key=f"retry-of-message-{failing.message_id}", due_at=timezone.now(),
    )  # fmt: skip

    assert outbox_process_batch([e.pk for e in events]) == len(events)

    assert "running it again event by event" in caplog.text
    assert not OutboxEvent.objects.filter(pk__in=[e.pk for e in events], processed_at__isnull=True).exists()
    # Each event decided once, the clash settled as a lone event settles it.
    assert [[row[:3] for row in rows] for rows in decided(events)] == [
        [("notify", "recorded", "")],
        [("retry_same", "skipped", "already_retried")],
        [("notify", "recorded", "")],
        [("none", "recorded", "")],
    ]
    # The delivery and the permanent failure are told once each.
    assert FeedEvent.objects.filter(message_id__in=[e.message_id for e in events]).count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("default_rules")
def test_the_task_tops_its_batch_up_with_the_backlog_and_the_tasks_behind_find_theirs_done():
    def published(status: str = "delivered", **fields) -> OutboxEvent:
        event = event_for(MessageFactory(status=status), status)
        OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=timezone.now(), **fields)
        return event

    own = published()
    backlog = [published() for _ in range(4)]
    backing_off = published(retry_at=timezone.now() + timedelta(minutes=1), failures=1)
    unpublished = event_for(MessageFactory(status="delivered"), "delivered")  # the sweeper's

    assert process_outbox_events.run([own.pk]) == 5

    assert process_outbox_events.run([e.pk for e in backlog]) == 0  # already decided, once
    assert all(len(rows) == 1 for rows in decided([own, *backlog]))
    assert decided([backing_off, unpublished]) == [[], []]
    assert outbox_process(unpublished.pk) is True  # a plain call processes only what it names


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_rules")
def test_concurrent_batch_claimers_decide_every_event_exactly_once():
    events = traffic()
    ids = [event.pk for event in events]
    claimers = 4
    start = threading.Barrier(claimers)

    def claim(seed: int) -> int:
        order = ids[:]
        random.Random(seed).shuffle(order)  # overlapping batches in different orders
        try:
            start.wait(10)
            return outbox_process_batch(order)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=claimers) as pool:
        processed = list(pool.map(claim, range(claimers)))

    assert sum(processed) == len(events)
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()
    for rows in decided(events):
        assert rows, "an event without a decision"
        assert len(rows) == len(set(rows)), f"decided twice: {rows}"
    assert Attempt.objects.filter(decision__outbox_event__in=events).count() == Attempt.objects.count()
    assert FeedEvent.objects.filter(type="message.delivered").count() == len(
        {e.message_id for e in events if e.status == "delivered"}
    )
