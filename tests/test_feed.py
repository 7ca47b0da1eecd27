"""The product feed against a real local HTTP server standing in for the product's endpoint."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext

from receipts.providers.base import WebhookRequest
from receipts.providers.standard_webhooks import StandardWebhooksAdapter
from retries.feed.models import FeedDelivery, FeedEvent, ProductEndpoint
from retries.feed.services import (
    SCHEDULE,
    feed_deliver_due,
    feed_endpoint_enable,
    feed_headers,
    feed_next_delay,
    feed_publish,
    feed_retry_after,
)
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.product_endpoint import Received

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock_stopped_at_t0(time_machine: time_machine.TimeMachineFixture) -> None:
    """Deliveries are published at the real clock's now and driven at T0 and after: the whole
    clock stands at T0 so both agree on any day the suite runs."""
    time_machine.move_to(T0, tick=False)


def make_endpoint(url: str, **fields: object) -> ProductEndpoint:
    return ProductEndpoint.objects.create(name="product", url=url, secret=GENERIC_SECRET, **fields)


def verify(received: Received, at: datetime) -> None:
    """The adapter's own verify: what the product would run."""
    adapter = StandardWebhooksAdapter(clock=lambda: at.timestamp())
    request = WebhookRequest(method="POST", url="http://product/feed", headers=received.headers, body=received.body)
    adapter.verify(request, [GENERIC_SECRET])


def drive(until: datetime, start: datetime = T0) -> None:
    """Run the deliverer at each due time up to `until`: the schedule without sleeping."""
    now = start
    for _ in range(2000):  # bounded
        if feed_deliver_due(now, 100):
            continue  # a delivery may have released the next one of its message
        # Nothing left to try now: jump to the next due time.
        due = (
            FeedDelivery.objects.filter(status__in=["pending", "failed"], endpoint__enabled=True)
            .filter(next_attempt_at__gt=now)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if due is None or due > until:
            return
        now = due
    raise AssertionError("the schedule did not settle")


# Pure functions


def test_schedule_is_the_standard_webhooks_one():
    assert [feed_next_delay(n) for n in range(11)] == [*SCHEDULE, None]
    assert feed_next_delay(1) == timedelta(seconds=5)
    assert feed_next_delay(9) == timedelta(hours=24)


def test_retry_after_reads_seconds_and_dates_and_is_bounded():
    assert feed_retry_after("120", now=T0) == timedelta(seconds=120)
    assert feed_retry_after("Fri, 27 Nov 2026 10:10:00 GMT", now=T0) == timedelta(minutes=10)
    assert feed_retry_after("999999999", now=T0) == timedelta(hours=24)
    assert feed_retry_after("soon", now=T0) is None
    assert feed_retry_after("", now=T0) is None


def test_headers_are_verified_by_the_standard_webhooks_adapter():
    body = b'{"type":"message.delivered"}'
    headers = feed_headers(secret=GENERIC_SECRET, webhook_id="evt_1", timestamp=int(T0.timestamp()), body=body)
    verify(Received(headers, body), T0)


# Publishing


@pytest.mark.django_db
def test_publish_records_one_delivery_per_enabled_subscribed_endpoint():
    message = MessageFactory()
    everything = make_endpoint("http://127.0.0.1:9/a")
    failures_only = make_endpoint("http://127.0.0.1:9/b", event_types=["message.failed"])
    make_endpoint("http://127.0.0.1:9/c", enabled=False)
    event = feed_publish(message=message, event_type="message.delivered", payload={})
    assert set(event.deliveries.values_list("endpoint", flat=True)) == {everything.pk}
    failed = feed_publish(message=message, event_type="message.failed", payload={})
    assert set(failed.deliveries.values_list("endpoint", flat=True)) == {everything.pk, failures_only.pk}


@pytest.mark.django_db
def test_failed_event_carries_class_reason_advice_and_explanation():
    message = MessageFactory(status="undelivered", error_code="1", reason="absent_subscriber", error_class="temporary")
    event = feed_publish(message=message, event_type="message.failed", payload={"attempt": 1})
    assert event.payload["type"] == "message.failed"
    data = event.payload["data"]
    assert (data["status"], data["error_code"], data["reason"], data["error_class"]) == (
        "undelivered", "1", "absent_subscriber", "temporary",
    )  # fmt: skip
    assert data["retry_advice"]
    assert isinstance(data["explanation"], str)
    assert data["explanation"]
    assert data["attempt"] == 1


@pytest.mark.django_db
def test_publish_rolls_back_with_the_callers_transaction():
    make_endpoint("http://127.0.0.1:9/a")
    message = MessageFactory()

    def publish_then_fail() -> None:
        with transaction.atomic():
            feed_publish(message=message, event_type="message.delivered", payload={})
            raise RuntimeError

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert not FeedEvent.objects.exists()
    assert not FeedDelivery.objects.exists()


# Delivering


@pytest.mark.django_db
def test_failing_then_recovering_endpoint_gets_every_event_in_order_per_message_once(product):
    product.fail_first(4)
    make_endpoint(product.url)
    messages = [MessageFactory(), MessageFactory()]
    types = ["message.retry_scheduled", "message.failed", "message.delivered"]
    published = {m.pk: [feed_publish(message=m, event_type=t, payload={}).webhook_id for t in types] for m in messages}
    drive(until=T0 + timedelta(days=4))

    assert FeedDelivery.objects.filter(status="delivered").count() == 6
    ok = product.received[4:]  # the first 4 requests were answered 500
    assert sorted(r.headers["webhook-id"] for r in ok) == sorted(itertools.chain(*published.values()))  # each once
    for message_id, ids in published.items():
        seen = [r.headers["webhook-id"] for r in ok if r.event["data"]["message_id"] == message_id]
        assert seen == ids  # in order per message
    for delivery in FeedDelivery.objects.all():
        assert delivery.log.count() == delivery.attempts


@pytest.mark.django_db
def test_deliveries_are_signed_and_retry_on_the_schedule(product):
    product.fail_first(2)
    make_endpoint(product.url)
    event = feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    assert feed_deliver_due(T0, 10) == 1
    delivery = FeedDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 500)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=5)
    assert feed_deliver_due(T0 + timedelta(seconds=4), 10) == 0  # not due yet
    assert feed_deliver_due(T0 + timedelta(seconds=5), 10) == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=5) + timedelta(minutes=5)
    later = T0 + timedelta(minutes=6)
    assert feed_deliver_due(later, 10) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("delivered", 3, later)
    last = product.received[-1]
    assert last.headers["webhook-id"] == event.webhook_id
    assert last.headers["webhook-timestamp"] == str(int(later.timestamp()))
    verify(last, later)
    assert last.event["type"] == "message.delivered"
    assert "timestamp" in last.event


@pytest.mark.django_db
def test_a_pass_records_its_successful_posts_together(product):
    endpoint = make_endpoint(product.url, consecutive_failures=2)
    events = [feed_publish(message=MessageFactory(), event_type="message.delivered", payload={}) for _ in range(5)]

    with CaptureQueriesContext(db_connection) as queries:
        assert feed_deliver_due(T0, 10) == 5

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "feed_feedattempt"')]
    assert len(inserts) == 1  # one transaction for the pass's five successes, not five
    assert sorted(r.headers["webhook-id"] for r in product.received) == sorted(e.webhook_id for e in events)
    for delivery in FeedDelivery.objects.all():
        assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.next_attempt_at) == (
            "delivered", 1, T0, None,
        )  # fmt: skip
        assert list(delivery.log.values_list("number", "status_code", "attempted_at")) == [(1, 200, T0)]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0  # a success ends the streak


@pytest.mark.django_db
def test_a_failure_after_held_successes_counts_its_streak_from_them(product):
    product.script = [(200, {}), (500, {})]
    endpoint = make_endpoint(product.url, consecutive_failures=2)
    for _ in range(2):
        feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})

    assert feed_deliver_due(T0, 10) == 2

    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1  # reset by the success, then the failure
    assert sorted(FeedDelivery.objects.values_list("status", flat=True)) == ["delivered", "failed"]


@pytest.mark.django_db
def test_a_later_event_waits_for_the_earlier_one_of_the_same_message(product):
    product.fail_first(1)
    make_endpoint(product.url)
    message, other = MessageFactory(), MessageFactory()
    first = feed_publish(message=message, event_type="message.failed", payload={})
    second = feed_publish(message=message, event_type="message.delivered", payload={})
    unrelated = feed_publish(message=other, event_type="message.delivered", payload={})
    feed_deliver_due(T0, 10)
    # The first failed; the second waits for it; another message's event does not.
    assert [r.headers["webhook-id"] for r in product.received] == [first.webhook_id, unrelated.webhook_id]
    assert FeedDelivery.objects.get(event=second).attempts == 0
    feed_deliver_due(T0 + timedelta(seconds=5), 10)  # the first succeeds; the second is next
    feed_deliver_due(T0 + timedelta(seconds=6), 10)
    assert [r.headers["webhook-id"] for r in product.received[2:]] == [first.webhook_id, second.webhook_id]


@pytest.mark.django_db
def test_abandoning_a_delivery_disables_the_endpoint_and_releases_the_next(product):
    product.fail_first(len(SCHEDULE))
    endpoint = make_endpoint(product.url)
    message = MessageFactory()
    first = feed_publish(message=message, event_type="message.failed", payload={})
    second = feed_publish(message=message, event_type="message.delivered", payload={})
    drive(until=T0 + timedelta(days=5))
    endpoint.refresh_from_db()
    assert FeedDelivery.objects.get(event=first).status == "abandoned"
    assert not endpoint.enabled
    assert "abandoned" in endpoint.disabled_reason
    assert FeedDelivery.objects.get(event=second).attempts == 0  # disabled: nothing more sent
    resume_at = T0 + timedelta(days=6)
    assert feed_endpoint_enable(endpoint=endpoint, now=resume_at) == 1
    feed_deliver_due(resume_at, 10)
    assert FeedDelivery.objects.get(event=second).status == "delivered"
    assert product.received[-1].headers["webhook-id"] == second.webhook_id


@pytest.mark.django_db
def test_410_disables_the_endpoint_at_once_and_reenabling_resumes(product):
    product.script = [(410, {})]
    endpoint = make_endpoint(product.url)
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    feed_deliver_due(T0, 10)
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "410" in endpoint.disabled_reason
    assert feed_deliver_due(T0 + timedelta(days=1), 10) == 0
    feed_endpoint_enable(endpoint=endpoint, now=T0 + timedelta(days=1))
    assert feed_deliver_due(T0 + timedelta(days=1), 10) == 1
    assert FeedDelivery.objects.get().status == "delivered"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [429, 502, 504])
def test_retry_after_is_honoured(product, status):
    product.script = [(status, {"Retry-After": "600"})]
    make_endpoint(product.url)
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    feed_deliver_due(T0, 10)
    assert FeedDelivery.objects.get().next_attempt_at == T0 + timedelta(seconds=600)


@pytest.mark.django_db
def test_retry_after_is_ignored_on_other_statuses(product):
    product.script = [(500, {"Retry-After": "600"})]
    make_endpoint(product.url)
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    feed_deliver_due(T0, 10)
    assert FeedDelivery.objects.get().next_attempt_at == T0 + timedelta(seconds=5)


@pytest.mark.django_db
def test_an_unreachable_endpoint_is_a_recorded_failure_without_the_url():
    make_endpoint("http://127.0.0.1:9/secret-path-token")
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    feed_deliver_due(T0, 10)
    delivery = FeedDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert delivery.last_error
    assert "secret-path-token" not in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliverers_never_deliver_the_same_delivery_twice(product):
    make_endpoint(product.url)
    for _ in range(30):
        feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    barrier = threading.Barrier(2, timeout=10)
    counts: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            counts.append(feed_deliver_due(T0, 100))
        finally:
            db_connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [r.headers["webhook-id"] for r in product.received]
    assert sum(counts) == 30
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert FeedDelivery.objects.filter(status="delivered", attempts=1).count() == 30


@pytest.mark.django_db
def test_the_task_runs_the_deliverer_and_is_registered_for_beat(product):
    from retries.feed.tasks import deliver_feed

    make_endpoint(product.url)
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    assert deliver_feed.apply().get() == 1
    assert deliver_feed.apply().get() == 0  # run again: nothing due, nothing sent twice
    assert len(product.received) == 1
    assert deliver_feed.acks_late
    assert deliver_feed.reject_on_worker_lost
    from dlrconsole.settings import CELERY_BEAT_SCHEDULE  # production's, before the tests' 1 s

    beat = CELERY_BEAT_SCHEDULE["feed-deliver"]
    assert (beat["task"], beat["schedule"]) == (deliver_feed.name, 5.0)


@pytest.mark.django_db
def test_a_delivery_is_stamped_when_the_reply_arrives(product):
    make_endpoint(product.url)
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    assert feed_deliver_due() == 1  # production's clock: no `now` given
    delivery = FeedDelivery.objects.get()
    assert delivery.delivered_at.timestamp() >= product.received[0].at
    assert delivery.log.get().attempted_at == delivery.delivered_at
