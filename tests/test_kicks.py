"""Work due now is kicked to a worker instead of waiting for beat: once per batch of events, not
once per event; the feed deliverer claims again while its claims come back full."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from dlrconsole.lib.tasks import kick
from receipts.models import OutboxEvent
from receipts.tasks import process_outbox_events
from retries.feed.models import FeedDelivery, ProductEndpoint
from retries.feed.services import DELIVER_FEED, feed_deliver_due, feed_publish
from retries.feed.tasks import deliver_feed
from retries.models import Step
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.worker import queued_task_names

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # each event's transaction commits, as in a worker
def test_a_batch_of_events_kicks_the_attempt_runner_and_the_feed_once_each(redis_client, default_rules):
    Step.objects.filter(action="retry_same").update(delays=[0])
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    events = []
    for _ in range(3):
        message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
        events.append(OutboxEvent.objects.create(message=message, kind="status_changed", status="undelivered",
                                                 created_at=timezone.now()))  # fmt: skip
    assert process_outbox_events.run([e.pk for e in events]) == 3
    assert sorted(queued_task_names(redis_client)) == [
        "retries.feed.tasks.deliver_feed", "retries.tasks.run_due_attempts",
    ]  # fmt: skip


def test_the_deliverer_claims_again_while_its_claims_come_back_full(product):
    endpoint = ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    for _ in range(5):
        feed_publish(message=MessageFactory(), event_type="message.delivered")
    assert feed_deliver_due(limit=2) == 5
    assert FeedDelivery.objects.filter(endpoint=endpoint, status="delivered").count() == 5


def test_the_deliverer_releases_what_it_claimed_when_its_time_is_up(product):
    ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    for _ in range(3):
        feed_publish(message=MessageFactory(), event_type="message.delivered")
    assert feed_deliver_due(deadline=time.monotonic()) == 0  # no time left for any POST
    assert FeedDelivery.objects.filter(status="pending", next_attempt_at__lte=timezone.now()).count() == 3


def test_a_kick_while_one_waits_in_the_broker_sends_nothing_more_until_its_task_starts(redis_client):
    for _ in range(3):
        kick(DELIVER_FEED)
    assert queued_task_names(redis_client) == [DELIVER_FEED]  # one waiting: the others add nothing

    deliver_feed()  # the task starts: what is committed from now on needs a kick of its own
    kick(DELIVER_FEED)
    kick(DELIVER_FEED)
    assert queued_task_names(redis_client) == [DELIVER_FEED, DELIVER_FEED]
