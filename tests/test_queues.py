"""Decisions, the product feed and alerts travel on queues of their own (dlrconsole/queues.py), so a
product endpoint that hangs holds a feed worker, never the one deciding what to retry."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from dlrconsole.lib.tasks import task_by_name
from dlrconsole.queues import ALERTS, DECISIONS, FEED, SENDS, queue_name
from retries.feed.models import ProductEndpoint
from retries.models import Decision
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.webhooks import post_status
from tests.worker import celery_worker, wait_until

pytestmark = pytest.mark.django_db

ABSENT_SUBSCRIBER = "27"  # GSM MAP: temporary, retried by the shipped rules


def queued(redis_client) -> dict[str, list[str]]:
    """Task names waiting in each of the test's queues of the real Redis broker."""
    found = {}
    for queue in settings.CELERY_TASK_QUEUES:
        names = [json.loads(raw)["headers"]["task"] for raw in redis_client.lrange(queue.name, 0, -1)]
        if names:
            found[queue.name] = names
    return found


@pytest.mark.parametrize(
    ("task_name", "purpose"),
    [
        ("receipts.tasks.process_outbox_events", DECISIONS),
        ("receipts.tasks.redispatch_outbox", DECISIONS),
        ("receipts.tasks.sweep_missing_receipts", DECISIONS),
        ("retries.tasks.run_due_attempts", SENDS),
        ("retries.tasks.send_pilot", SENDS),
        ("retries.feed.tasks.deliver_feed", FEED),
        ("alerts.tasks.evaluate_alert_rules", ALERTS),
        ("alerts.tasks.send_notifications", ALERTS),
        ("alerts.reports.tasks.send_due_reports", ALERTS),
        ("receipts.rollups.tasks.roll_up", None),
        ("retries.tasks.erase_message_bodies", None),
    ],
)
def test_each_task_is_sent_to_the_queue_of_its_purpose(redis_client, task_name, purpose):
    task = task_by_name(task_name)
    args = {"receipts.tasks.process_outbox_events": [[1]], "retries.tasks.send_pilot": [1]}.get(task_name)
    task.apply_async(args=args)
    expected = queue_name(purpose) if purpose else settings.CELERY_TASK_DEFAULT_QUEUE
    assert queued(redis_client) == {expected: [task_name]}


def test_every_periodic_task_goes_to_a_queue_that_workers_consume():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    from dlrconsole.celery import app

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        route = app.amqp.router.route({}, entry["task"])
        assert route["queue"].name in declared, entry["task"]


def test_queue_names_follow_the_default_queue_so_deployments_sharing_a_redis_stay_apart():
    assert queue_name(DECISIONS, "acme") == "acme.decisions"
    assert [queue.name for queue in settings.CELERY_TASK_QUEUES] == [
        "dlrconsole-test", "dlrconsole-test.decisions", "dlrconsole-test.sends", "dlrconsole-test.feed",
        "dlrconsole-test.alerts",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_product_endpoint_that_hangs_does_not_delay_decisions(client, product, default_rules):
    ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    product.hold()
    delivered, failed = MessageFactory(), MessageFactory()
    with celery_worker(queues=[queue_name(FEED)]), celery_worker(queues=[queue_name(DECISIONS)]):
        assert post_status(client, delivered, "delivered").status_code == 200
        # The feed worker is now stuck in its POST to the product, which does not answer.
        assert wait_until(lambda: product.waiting == 1, timeout=30)
        assert post_status(client, failed, "undelivered", error_code=ABSENT_SUBSCRIBER).status_code == 200
        assert wait_until(lambda: Decision.objects.filter(message=failed).exists(), timeout=30)
        # Decided while the feed's POST still hung.
        assert product.waiting == 1
        assert not product.gate.is_set()
        product.release()
