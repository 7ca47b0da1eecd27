"""One bad event never blocks the others: a consumer that raises on an event has its writes
rolled back, the failure is recorded on the event, the batch goes on, the event is tried again
after a backoff and finally parked where the admin and monitoring see it. On real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from dlrconsole import roles
from receipts import outbox
from receipts.models import Message, OutboxEvent
from receipts.outbox import (
    Consumer,
    outbox_failure_counts,
    outbox_process,
    outbox_process_batch,
    outbox_redispatch,
    outbox_retry_parked,
)
from receipts.statuses import Status
from receipts.tasks import process_outbox_events
from retries.models import Decision
from tests.factories import MessageFactory, user_in_role
from tests.test_outbox import queued_batches

pytestmark = pytest.mark.django_db


class Poison(Exception):
    pass


@pytest.fixture
def poison(default_rules: None) -> Iterator[set[int]]:
    """A consumer, after the rules' decisions, that raises on the messages put in the set."""
    poisoned: set[int] = set()

    def consume(event: OutboxEvent, now: datetime) -> None:
        if event.message_id in poisoned:
            raise Poison(f"cannot handle message for +33612345678 with key 'whsec_{event.message_id}'")

    outbox.register_consumer(Consumer("poison", consume=consume))
    yield poisoned
    outbox._consumers.pop("poison")


def delivered_event(message: Message, now: datetime | None = None) -> OutboxEvent:
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED)
    return OutboxEvent.objects.create(
        message=message, kind="status_changed", status="delivered", created_at=now or timezone.now()
    )


def decided(event: OutboxEvent) -> int:
    return Decision.objects.filter(outbox_event=event).count()


def test_a_batch_with_one_poison_event_decides_all_the_others_once(poison: set[int]) -> None:
    messages = [MessageFactory() for _ in range(5)]
    events = [delivered_event(m) for m in messages]
    poison.add(messages[0].pk)  # first in the batch, as the sweeper's id order used to put it

    assert process_outbox_events.run([e.pk for e in events]) == 4  # the task does not fail

    assert [decided(e) for e in events] == [0, 1, 1, 1, 1]  # the poison's decision rolled back
    bad = OutboxEvent.objects.get(pk=events[0].pk)
    assert (bad.processed_at, bad.failures, bad.failed_at, bad.dispatched_at) == (None, 1, None, None)
    assert bad.last_error == "Poison: cannot handle message for … with key '…'"
    assert bad.retry_at is not None
    assert process_outbox_events.run([e.pk for e in events]) == 0  # a redelivery decides nothing twice
    assert [decided(e) for e in events] == [0, 1, 1, 1, 1]


def test_a_poison_event_is_retried_with_backoff_then_parked(poison: set[int], redis_client: Any) -> None:
    message = MessageFactory()
    event = delivered_event(message)
    poison.add(message.pk)
    now = timezone.now()
    retried_at = []
    for _ in range(len(outbox.FAILURE_BACKOFF) + 1):
        assert outbox_process(event.pk, now=now) is False
        event.refresh_from_db()
        if event.failed_at is not None:
            break
        # Not due before its backoff: neither processed nor published again.
        assert outbox_process(event.pk, now=event.retry_at - timedelta(seconds=1)) is False
        assert outbox_redispatch(now=event.retry_at - timedelta(seconds=1)) == 0
        assert outbox_redispatch(now=event.retry_at) == 1
        retried_at.append(event.retry_at - now)
        now = event.retry_at
    assert retried_at == list(outbox.FAILURE_BACKOFF)
    assert (event.failures, event.failed_at, event.retry_at) == (len(outbox.FAILURE_BACKOFF) + 1, now, None)
    assert outbox_failure_counts() == {"retrying": 0, "failed": 1}
    far = now + timedelta(days=30)
    assert outbox_process(event.pk, now=far) is False  # parked: never tried again by itself
    assert outbox_redispatch(now=far) == 0
    assert decided(event) == 0


def test_a_parked_event_put_back_in_line_is_decided_once(poison: set[int], redis_client: Any) -> None:
    message = MessageFactory()
    event = delivered_event(message)
    poison.add(message.pk)
    OutboxEvent.objects.filter(pk=event.pk).update(failures=5, failed_at=timezone.now(), last_error="Poison")
    poison.clear()  # the bug is fixed

    assert outbox_retry_parked([event.pk]) == 1
    assert outbox_redispatch() == 1
    assert queued_batches(redis_client) == [[event.pk]]
    assert outbox_process_batch([event.pk, event.pk]) == 1
    assert decided(event) == 1
    assert outbox_failure_counts() == {"retrying": 0, "failed": 0}


def test_the_sweeper_publishes_healthy_events_before_failing_ones(redis_client: Any) -> None:
    now = timezone.now()
    due_again = {"failures": 2, "retry_at": now - timedelta(seconds=1)}
    failing = [
        OutboxEvent.objects.create(
            message=MessageFactory(), kind="status_changed", status="sent", created_at=now, **due_again
        )
        for _ in range(3)
    ]
    healthy = [
        OutboxEvent.objects.create(message=MessageFactory(), kind="status_changed", status="sent", created_at=now)
        for _ in range(2)
    ]
    assert outbox_redispatch(now=now, limit=2) == 2
    assert queued_batches(redis_client) == [[e.pk for e in healthy]]
    assert outbox_redispatch(now=now, limit=10) == 3
    assert queued_batches(redis_client)[1] == [e.pk for e in failing]


def test_the_admin_lists_parked_events_and_puts_them_back_in_line(poison: set[int]) -> None:
    event = delivered_event(MessageFactory())
    OutboxEvent.objects.filter(pk=event.pk).update(failures=5, failed_at=timezone.now(), last_error="Poison: x")
    client = Client()
    client.force_login(user_in_role(roles.ADMIN, "operator"))  # the admin role, not a superuser
    page = client.get("/admin/receipts/outboxevent/?state=failed").content.decode()
    assert "Poison: x" in page
    assert "Poison: x" not in client.get("/admin/receipts/outboxevent/?state=processed").content.decode()
    client.post("/admin/receipts/outboxevent/", {"action": "retry_parked", "_selected_action": [event.pk], "index": 0})
    event.refresh_from_db()
    assert (event.failed_at, event.failures) == (None, 5)
