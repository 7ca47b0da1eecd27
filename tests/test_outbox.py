"""The outbox: every status change reaches the broker after commit, off the request path,
and is processed once."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from dlrconsole.queues import DECISIONS, queue_name
from receipts.models import OutboxEvent
from receipts.outbox import outbox_drain, outbox_hand_over, outbox_process, outbox_redispatch, publisher
from receipts.tasks import process_outbox_events
from tests.factories import MessageFactory
from tests.webhooks import post_status
from tests.worker import broker, hanging_broker

pytestmark = pytest.mark.django_db
QUEUE = queue_name(DECISIONS)  # where outbox batches go


def queued_batches(redis_client) -> list[list[int]]:
    """The outbox id batches of the task messages waiting in the real Redis queue, oldest first."""
    batches = []
    for item in reversed(redis_client.lrange(QUEUE, 0, -1)):  # kombu LPUSHes: newest first
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(item)["body"]))
        batches.append(args[0])
    return batches


@pytest.mark.django_db(transaction=True)
def test_a_status_change_is_published_to_the_broker_after_commit(client, redis_client):
    message = MessageFactory()
    post_status(client, message, "delivered")
    assert publisher.wait_idle(timeout=10)
    event = OutboxEvent.objects.get()
    assert queued_batches(redis_client) == [[event.pk]]
    assert (event.dispatch_count, event.processed_at) == (1, None)
    assert event.dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_events_committed_while_a_task_waits_add_no_task_and_that_task_decides_them(client, redis_client):
    messages = [MessageFactory() for _ in range(5)]
    for message in messages:
        post_status(client, message, "delivered")
    assert publisher.wait_idle(timeout=10)
    [batch] = queued_batches(redis_client)  # the first hand-over's; the rest found it waiting
    assert batch == list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))[: len(batch)]
    assert process_outbox_events.run(batch) == 5
    assert not OutboxEvent.objects.filter(processed_at=None).exists()


@pytest.mark.django_db(transaction=True)
def test_once_the_waiting_task_starts_the_next_hand_over_publishes_again(redis_client):
    first, second = (published_event() for _ in range(2))
    outbox_hand_over([first.pk])
    outbox_hand_over([second.pk])
    assert queued_batches(redis_client) == [[first.pk]]
    assert process_outbox_events.run([first.pk]) == 2  # its run took the other's event too
    third = published_event()
    outbox_hand_over([third.pk])
    assert queued_batches(redis_client) == [[first.pk], [third.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_hand_over_the_broker_refused_leaves_no_task_marked_as_waiting(redis_client):
    event = published_event()
    with broker("redis://127.0.0.1:1/0"), pytest.raises(OperationalError):
        outbox_hand_over([event.pk])
    outbox_hand_over([event.pk])
    assert queued_batches(redis_client) == [[event.pk]]


def test_a_task_decides_a_backlog_longer_than_one_claim(settings, monkeypatch):
    monkeypatch.setattr("receipts.outbox.DRAIN_SECONDS", 60.0)  # however slow the machine
    settings.DLR_OUTBOX_CLAIM_BATCH = 3
    backlog = [published_event() for _ in range(8)]
    assert process_outbox_events.run([backlog[0].pk]) == 8
    assert process_outbox_events.run([]) == 0


def test_a_task_out_of_time_hands_the_rest_of_the_backlog_to_a_task_of_its_own(settings, redis_client, monkeypatch):
    monkeypatch.setattr("receipts.outbox.DRAIN_SECONDS", 60.0)  # the task that takes the rest has time
    settings.DLR_OUTBOX_CLAIM_BATCH = 2
    for _ in range(5):
        published_event()
    assert outbox_drain([], seconds=0) == 2  # one claim, then its time is up
    assert queued_batches(redis_client) == [[]]
    assert process_outbox_events.run([]) == 3


def published_event() -> OutboxEvent:
    """An event as the webhook writes it: stamped as handed to the publisher."""
    event = OutboxEvent.objects.create(
        message=MessageFactory(status="delivered"), kind="status_changed", status="delivered",
        created_at=timezone.now(),
    )  # fmt: skip
    OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=timezone.now())
    return event


def test_nothing_is_published_when_the_transaction_does_not_commit(client, redis_client):
    message = MessageFactory()
    # The test's transaction never commits, so on_commit never runs.
    post_status(client, message, "delivered")
    assert publisher.wait_idle(timeout=10)
    assert redis_client.llen(QUEUE) == 0


@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_neither_blocks_the_webhook_nor_loses_the_event(client, redis_client):
    """The broker URL points at a closed loopback port: a real refused connection."""
    message = MessageFactory()
    with broker("redis://127.0.0.1:1/0"):
        response = post_status(client, message, "delivered")
        assert publisher.wait_idle(timeout=30)
    # The webhook does not publish at all: the background publisher does, after the response.
    assert response.status_code == 200
    event = OutboxEvent.objects.get()
    assert event.dispatched_at is None  # left for the sweeper
    assert outbox_redispatch() == 1
    assert queued_batches(redis_client) == [[event.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_hanging_broker_does_not_hold_the_webhook(client):
    """A broker that accepts and never answers keeps a publish busy for its socket timeout
    (2 s): the webhook has answered while the publish still hangs."""
    with hanging_broker() as url, broker(url):
        response = post_status(client, MessageFactory(), "delivered")
        assert response.status_code == 200
        assert not publisher.wait_idle(timeout=0.5)  # still publishing, after the answer
        assert publisher.wait_idle(timeout=30)
    assert OutboxEvent.objects.get().dispatched_at is None  # given up on: left for the sweeper


def test_a_batch_task_processes_each_event_once_however_often_it_is_delivered():
    message = MessageFactory()
    events = [
        OutboxEvent.objects.create(message=message, kind="status_changed", status=s, created_at=timezone.now())
        for s in ("sent", "delivered")
    ]
    ids = [e.pk for e in events]
    assert process_outbox_events.run(ids) == 2
    assert process_outbox_events.run(ids) == 0  # a redelivery after a lost ack
    assert outbox_process(ids[0]) is False
    assert all(e.processed_at for e in OutboxEvent.objects.all())


def test_redispatch_publishes_never_published_and_lost_events_only(redis_client):
    now = timezone.now()
    message = MessageFactory()

    def event(created_ago: timedelta, **fields) -> OutboxEvent:
        return OutboxEvent.objects.create(
            message=message, kind="status_changed", status="sent", created_at=now - created_ago, **fields
        )

    never_published = event(timedelta(seconds=30))  # its publish failed
    lost = event(timedelta(minutes=10), dispatched_at=now - timedelta(minutes=10), dispatch_count=1)
    event(timedelta(seconds=5), dispatched_at=now - timedelta(seconds=5), dispatch_count=1)  # in flight
    event(timedelta(seconds=30), processed_at=now)  # done

    assert outbox_redispatch(now=now) == 2
    assert queued_batches(redis_client) == [[never_published.pk, lost.pk]]
    lost.refresh_from_db()
    assert (lost.dispatched_at, lost.dispatch_count) == (now, 2)
    assert outbox_redispatch(now=now) == 0


def test_a_short_claim_ends_the_task_rather_than_polling_for_arrivals(settings, redis_client, monkeypatch):
    # Events that come later get a hand-over of their own; a task that went on while claims
    # found anything at all kept claiming a handful at a time.
    from receipts import outbox

    settings.DLR_OUTBOX_CLAIM_BATCH = 3
    claims, one_claim = [], outbox.outbox_process_batch

    def claim_then_an_arrival(*args, **kwargs) -> int:
        claims.append(one_claim(*args, **kwargs))
        published_event()
        return claims[-1]

    published_event()
    published_event()
    monkeypatch.setattr(outbox, "outbox_process_batch", claim_then_an_arrival)
    assert outbox_drain([], seconds=30) == 2
    assert claims == [2]
    assert queued_batches(redis_client) == []  # not handed on: the arrival's own hand-over will
