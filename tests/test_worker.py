"""The outbox end to end: a webhook's status change reaches a real Celery worker through the
real broker and is processed once."""

from __future__ import annotations

import pytest

from dlrconsole.queues import DECISIONS, queue_name
from receipts.models import OutboxEvent
from receipts.outbox import outbox_redispatch, publisher
from tests.factories import MessageFactory
from tests.webhooks import post_status
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_status_changes_are_processed_by_a_real_worker_once(client, redis_client):
    messages = [MessageFactory() for _ in range(3)]
    with celery_worker():
        for message in messages:
            for status in ("sent", "delivered", "sent"):  # the late `sent` changes nothing
                assert post_status(client, message, status).status_code == 200
        assert publisher.wait_idle(timeout=10)
        assert wait_until(lambda: not OutboxEvent.objects.filter(processed_at__isnull=True).exists(), timeout=30)
    assert OutboxEvent.objects.count() == 6
    assert redis_client.llen(queue_name(DECISIONS)) == 0


def test_an_event_published_twice_is_processed_once(client, redis_client):
    message = MessageFactory()
    post_status(client, message, "delivered")
    assert publisher.wait_idle(timeout=10)
    event = OutboxEvent.objects.get()
    # As if its first publish were lost in flight: the sweeper publishes it again.
    OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=None)
    assert outbox_redispatch() == 1
    assert redis_client.llen(queue_name(DECISIONS)) == 2
    with celery_worker():
        assert wait_until(lambda: redis_client.llen(queue_name(DECISIONS)) == 0, timeout=30)
        assert wait_until(lambda: OutboxEvent.objects.get().processed_at is not None, timeout=30)
    event.refresh_from_db()
    assert event.dispatch_count == 2
