"""The outbox: every status change reaches the broker after commit, and is processed once."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from retries.models import OutboxEvent
from retries.outbox import outbox_process, outbox_redispatch
from tests.factories import MessageFactory
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db
QUEUE = "dlrconsole-test"


def queued_event_ids(redis_client) -> list[int]:
    """The outbox ids of the task messages waiting in the real Redis queue, oldest first."""
    ids = []
    for item in reversed(redis_client.lrange(QUEUE, 0, -1)):  # kombu LPUSHes: newest first
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(item)["body"]))
        ids.append(args[0])
    return ids


def test_a_status_change_is_published_to_the_broker_after_commit(
    client, redis_client, django_capture_on_commit_callbacks
):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
        )
    event = OutboxEvent.objects.get()
    assert queued_event_ids(redis_client) == [event.pk]
    assert event.dispatched_at is not None


def test_nothing_is_published_when_the_transaction_does_not_commit(client, redis_client):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body)
    # Without the capture the test's transaction never commits, so on_commit never runs.
    client.post(
        f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert redis_client.llen(QUEUE) == 0


def test_processing_an_event_twice_has_effect_once():
    event = OutboxEvent.objects.create(
        message=MessageFactory(), kind="status_changed", status="delivered", created_at=timezone.now()
    )
    assert outbox_process(event.pk) is True
    assert outbox_process(event.pk) is False
    event.refresh_from_db()
    assert event.processed_at is not None


def test_redispatch_publishes_never_published_and_lost_events_only(redis_client):
    now = timezone.now()
    message = MessageFactory()

    def event(**fields) -> OutboxEvent:
        return OutboxEvent.objects.create(
            message=message, kind="status_changed", status="sent", created_at=now, **fields
        )

    never_published = event(dispatched_at=None)
    lost = event(dispatched_at=now - timedelta(minutes=10))
    event(dispatched_at=now - timedelta(seconds=5))  # in flight: leave it alone
    event(dispatched_at=None, processed_at=now)  # done

    assert outbox_redispatch(now=now) == 2
    assert queued_event_ids(redis_client) == [never_published.pk, lost.pk]
    lost.refresh_from_db()
    assert (lost.dispatched_at, lost.dispatch_count) == (now, 2)
    assert outbox_redispatch(now=now) == 0
