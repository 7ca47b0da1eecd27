"""Decisions executed end to end, each exactly once: receipts posted to the real webhook, a real
Celery worker (with its embedded beat) on the real broker, a real local gateway standing in for
the provider's send API and a real local server for the product's feed endpoint."""

from __future__ import annotations

import json
import time

import pytest

from receipts.models import ErrorCodeOverride, Message, OutboxEvent
from receipts.outbox import publisher
from retries.feed.models import FeedDelivery, FeedEvent, ProductEndpoint
from retries.models import Attempt, Decision, Step
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.product_endpoint import ProductEndpointServer
from tests.send_api import FakeGateway
from tests.webhooks import post_status
from tests.worker import PrivateRedis, broker, celery_worker, kill_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ABSENT_SUBSCRIBER = "27"  # GSM MAP: temporary
UNKNOWN_SUBSCRIBER = "1"  # GSM MAP: permanent, a number problem


def backoff(*seconds: int) -> None:
    Step.objects.filter(action="retry_same").update(delays=list(seconds))


def feed_types(product: ProductEndpointServer) -> list[tuple[str, int]]:
    return [(r.event["type"], r.event["data"]["message_id"]) for r in product.received]


def all_processed() -> bool:
    return not OutboxEvent.objects.filter(processed_at__isnull=True).exists()


def feed_idle() -> bool:
    return not FeedDelivery.objects.exclude(status="delivered").exists()


def settle(seconds: float = 3.0) -> None:
    """Give the worker's beat (every second in tests) a few passes to do anything it should not."""
    time.sleep(seconds)


@pytest.fixture
def otp(gateway: FakeGateway, product: ProductEndpointServer, default_rules: None) -> Message:
    ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    message = MessageFactory(body="Your code is 123456")
    gateway.configure(message.connection)
    return message


def test_a_temporary_failure_is_retried_after_its_backoff_and_delivered_with_exactly_one_resend(
    client, otp, gateway, product
):
    backoff(1)
    with celery_worker(beat=True):
        assert post_status(client, otp, "undelivered", error_code=ABSENT_SUBSCRIBER).status_code == 200
        assert wait_until(lambda: Attempt.objects.filter(outcome="succeeded").exists(), timeout=30)
        resend = Message.objects.get(chain_root=otp)
        assert post_status(client, otp, "delivered", provider_message_id=resend.provider_message_id).status_code == 200
        assert wait_until(lambda: all_processed() and feed_idle() and len(product.received) == 2, timeout=30)
        settle()
    assert len(gateway.sends) == 1
    assert Message.objects.filter(chain_root=otp).count() == 1
    resend.refresh_from_db()
    assert resend.status == "delivered"
    assert feed_types(product) == [("message.retry_scheduled", otp.pk), ("message.delivered", resend.pk)]


def test_a_late_delivery_cancels_the_scheduled_retry_and_nothing_is_sent(client, otp, gateway, product):
    backoff(4)
    with celery_worker(beat=True):
        post_status(client, otp, "undelivered", error_code=ABSENT_SUBSCRIBER)
        assert wait_until(lambda: Attempt.objects.filter(outcome="scheduled").exists(), timeout=30)
        post_status(client, otp, "delivered")  # the handset came back before the retry was due
        assert wait_until(lambda: Attempt.objects.filter(outcome="cancelled").exists(), timeout=30)
        settle(5)  # past the retry's due time
        assert wait_until(lambda: feed_idle() and len(product.received) == 2, timeout=30)
    assert gateway.requests == []
    assert Decision.objects.get(outbox_event__status="undelivered").state == "cancelled"
    assert feed_types(product) == [("message.retry_scheduled", otp.pk), ("message.delivered", otp.pk)]


def test_a_worker_killed_mid_attempt_runs_it_again_and_the_send_happens_once(client, otp, gateway):
    backoff(0)
    gateway.hang_after_send = 20  # the gateway sends, then holds its answer: the worker dies waiting
    lease = {"DLR_ATTEMPT_LEASE_SECONDS": "3"}
    with celery_worker(beat=True, env=lease) as worker:
        post_status(client, otp, "undelivered", error_code=ABSENT_SUBSCRIBER)
        assert wait_until(lambda: len(gateway.sends) == 1, timeout=30)
        kill_worker(worker)  # SIGKILL, mid-send
    assert Attempt.objects.get().outcome == "running"
    with celery_worker(beat=True, env=lease):
        assert wait_until(lambda: Attempt.objects.get().outcome == "succeeded", timeout=30)
        settle()
    attempt = Attempt.objects.get()
    assert attempt.tries == 2
    assert [r["key"] for r in gateway.requests] == [attempt.idempotency_key] * 2  # the same key, twice
    assert len(gateway.sends) == 1  # ... and one send
    assert Message.objects.filter(chain_root=otp).count() == 1


def test_with_redis_down_webhooks_answer_at_once_and_every_decision_runs_once_when_it_is_back(
    client, otp, gateway, product
):
    backoff(0)
    messages = [otp] + [MessageFactory(connection=otp.connection, body=f"code {n}") for n in range(9)]
    redis = PrivateRedis()
    redis.start()
    try:
        with broker(redis.url), celery_worker(beat=True, redis_url=redis.url):
            redis.stop()
            timings = []
            for n, message in enumerate(messages):
                status, code = ("undelivered", ABSENT_SUBSCRIBER) if n % 2 else ("delivered", "")
                started = time.monotonic()
                response = post_status(client, message, status, error_code=code)
                timings.append(time.monotonic() - started)
                assert response.status_code == 200
            assert publisher.wait_idle(timeout=60)
            assert OutboxEvent.objects.filter(processed_at__isnull=True).count() == 10
            redis.start()
            assert wait_until(lambda: all_processed() and Attempt.objects.filter(outcome="succeeded").count() == 5,
                              timeout=90)  # fmt: skip
            assert wait_until(lambda: feed_idle() and len(product.received) == 10, timeout=60)
            settle()
    finally:
        redis.stop()
    assert max(timings) < 1.0, timings  # the bound: the webhook never waits on the broker
    assert Decision.objects.count() == 10
    assert len(gateway.sends) == 5
    assert Message.objects.filter(chain_root__isnull=False).count() == 5
    assert sorted(t for t, _ in feed_types(product)) == ["message.delivered"] * 5 + ["message.retry_scheduled"] * 5


@pytest.mark.parametrize(
    ("provider_code", "reason"), [(UNKNOWN_SUBSCRIBER, "unknown_subscriber"), ("STOP", "opted_out")]
)
def test_a_permanent_or_opt_out_failure_is_never_retried_and_the_product_is_told_once(
    client, otp, gateway, product, provider_code, reason
):
    ErrorCodeOverride.objects.create(provider="standard-webhooks", code="STOP", reason="opted_out")
    with celery_worker(beat=True):
        post_status(client, otp, "failed", error_code=provider_code)
        post_status(client, otp, "undelivered", error_code=provider_code)  # a stronger final: a second decision
        assert wait_until(lambda: all_processed() and feed_idle() and len(product.received) >= 1, timeout=30)
        settle()
    assert Decision.objects.count() == 2
    assert not Attempt.objects.exists()
    assert gateway.requests == []
    [received] = product.received
    data = received.event["data"]
    assert (received.event["type"], data["reason"], data["error_class"]) == ("message.failed", reason, "permanent")
    assert data["explanation"]
    assert FeedEvent.objects.count() == 1
    assert json.loads(received.body)["data"]["recipient"] == otp.recipient


def test_a_failing_then_recovering_product_endpoint_gets_every_event_once_in_order_per_message(client, otp, product):
    backoff(60)  # the retries stay scheduled; the feed is what is under test
    messages = [otp] + [MessageFactory(connection=otp.connection, body="hi") for _ in range(2)]
    # The first try of each message's first event fails; the schedule's next slot is 5 s later,
    # and each message's second event waits for its first.
    product.fail_first(3, status=503)
    with celery_worker(beat=True):
        for message in messages:
            post_status(client, message, "undelivered", error_code=ABSENT_SUBSCRIBER)
        # Decided before the deliveries arrive (decided after, a failure needs no retry).
        assert wait_until(lambda: Attempt.objects.filter(outcome="scheduled").count() == 3, timeout=30)
        for message in messages:
            post_status(client, message, "delivered")
        assert wait_until(lambda: feed_idle() and len(product.received) >= 9, timeout=60)
        settle()
    assert [r.event["type"] for r in product.received[:3]] == ["message.retry_scheduled"] * 3  # refused
    delivered = product.received[3:]
    assert len(delivered) == 6
    ids = [r.headers["webhook-id"] for r in delivered]
    assert len(set(ids)) == 6  # every event once
    for message in messages:
        types = [r.event["type"] for r in delivered if r.event["data"]["message_id"] == message.pk]
        assert types == ["message.retry_scheduled", "message.delivered"]
