"""The periodic passes (the product feed, the attempt runner) against real local servers that
answer slowly: a pass never starts a request it cannot finish before its deadline and releases
what it holds; a pass stopped mid-request (the soft time limit) records that request as timed
out; one delivery or attempt that raises is recorded and the pass moves on. Timeouts are small
and every sleep bounded: each test takes a few seconds at most."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.attempts import attempts_run_due
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_deliver_due, feed_publish
from retries.models import Attempt, ConnectionSender
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.senders.http_server import ScriptedServer, provider_api

__all__ = ["provider_api"]

pytestmark = pytest.mark.django_db

# Every request of these tests may take connect + read = 1 s at most.
CONNECT, READ = 0.2, 0.8
SLOW = 0.6  # how long the slow server takes to answer: inside the read timeout


@contextmanager
def soft_time_limit_in(seconds: float) -> Iterator[None]:
    """What Celery's soft time limit does to a task: SoftTimeLimitExceeded raised by a signal
    handler in the task's thread, wherever it is (here mid-request)."""

    def expire(signum: int, frame: Any) -> None:
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# The product feed


@pytest.fixture
def feed(provider_api: ScriptedServer, settings: Any) -> list[FeedDelivery]:
    settings.DLR_FEED_CONNECT_TIMEOUT_SECONDS, settings.DLR_FEED_READ_TIMEOUT_SECONDS = CONNECT, READ
    ProductEndpoint.objects.create(name="slow", url=provider_api.url + "/feed", secret=GENERIC_SECRET)
    for _ in range(3):
        feed_publish(message=MessageFactory(), event_type="message.delivered")
    return list(FeedDelivery.objects.order_by("id"))


def released(deliveries: list[FeedDelivery]) -> bool:
    """Open, never tried, and due now: given back rather than left to their lease."""
    fresh = FeedDelivery.objects.filter(pk__in=[d.pk for d in deliveries])
    return all(d.status == "pending" and d.attempts == 0 and d.next_attempt_at <= timezone.now() for d in fresh)


def test_a_feed_pass_never_starts_a_post_it_cannot_finish_and_releases_the_rest(
    provider_api: ScriptedServer, feed: list[FeedDelivery]
) -> None:
    for _ in feed:
        provider_api.reply(200, {}, delay=SLOW)
    # Room for one POST (1 s at most); after a slow answer, less than a POST's timeouts remain.
    assert feed_deliver_due(deadline=time.monotonic() + CONNECT + READ + 0.5) == 1
    assert len(provider_api.requests) == 1
    assert FeedDelivery.objects.get(pk=feed[0].pk).status == "delivered"
    assert released(feed[1:])
    assert feed_deliver_due() == 2  # the next pass takes them at once


def test_a_feed_pass_stopped_mid_post_records_it_as_timed_out_and_releases_the_rest(
    provider_api: ScriptedServer, feed: list[FeedDelivery]
) -> None:
    provider_api.reply(200, {}, delay=SLOW)
    with soft_time_limit_in(SLOW / 2), pytest.raises(SoftTimeLimitExceeded):
        feed_deliver_due()
    first = FeedDelivery.objects.get(pk=feed[0].pk)
    assert (first.status, first.attempts, first.last_error) == ("failed", 1, "timed out: the delivery pass was stopped")
    assert first.next_attempt_at > timezone.now()  # on the schedule, as any timeout
    assert FeedAttempt.objects.get(delivery=first).error == "timed out: the delivery pass was stopped"
    assert released(feed[1:])


def test_a_delivery_whose_processing_raises_is_recorded_and_the_pass_moves_on(
    provider_api: ScriptedServer, feed: list[FeedDelivery]
) -> None:
    broken = ProductEndpoint.objects.create(name="broken", url=provider_api.url + "/b", secret=GENERIC_SECRET)
    feed_publish(message=MessageFactory(), event_type="message.delivered")
    # A secret that passed validation once and no longer decodes (edited in the database).
    ProductEndpoint.objects.filter(pk=broken.pk).update(secret="whsec_!!!not-base64!!!")
    for _ in range(4):
        provider_api.reply(200, {})
    assert feed_deliver_due() == 5  # 4 to the healthy endpoint, the new event's included
    assert FeedDelivery.objects.filter(endpoint__name="slow", status="delivered").count() == 4
    bad = FeedDelivery.objects.get(endpoint=broken)
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert (
        bad.last_error
        == "internal error: ValueError: a Standard Webhooks secret is base64, optionally prefixed with whsec_"
    )
    assert bad.next_attempt_at > timezone.now()
    assert len(provider_api.requests) == 4


# The attempt runner


@pytest.fixture
def due_attempts(provider_api: ScriptedServer, default_rules: None) -> list[Attempt]:
    """Two resends due, through a slow generic send API with the tests' small timeouts."""
    attempts = []
    for n in range(2):
        message = MessageFactory(body=f"code {n}")
        ConnectionSender.objects.create(
            connection=message.connection, kind="generic-http",
            config={"url": provider_api.url + "/send", "connect_timeout": CONNECT, "read_timeout": READ},
        )  # fmt: skip
        Message.objects.filter(pk=message.pk).update(
            status=Status.UNDELIVERED, reason="absent_subscriber", error_class="temporary"
        )
        event = OutboxEvent.objects.create(message=message, kind="status_changed", status="undelivered",
                                           created_at=timezone.now())  # fmt: skip
        outbox_process(event.pk)
        attempts.append(Attempt.objects.get(decision__outbox_event=event))
    Attempt.objects.update(due_at=timezone.now())
    return attempts


def test_an_attempt_pass_never_starts_a_send_it_cannot_finish(
    provider_api: ScriptedServer, due_attempts: list[Attempt]
) -> None:
    provider_api.reply(200, {"id": "gw-1"}, delay=SLOW)
    provider_api.reply(200, {"id": "gw-2"}, delay=SLOW)
    assert attempts_run_due(deadline=time.monotonic() + CONNECT + READ + 0.5) == 1
    first, second = (Attempt.objects.get(pk=a.pk) for a in due_attempts)
    assert first.outcome == "succeeded"
    # Given back unrun: due at once, its try not counted.
    assert (second.outcome, second.tries) == ("scheduled", 0)
    assert second.due_at <= timezone.now()
    assert len(provider_api.requests) == 1
    assert attempts_run_due() == 1


def test_an_attempt_pass_stopped_mid_send_records_it_as_timed_out(
    provider_api: ScriptedServer, due_attempts: list[Attempt]
) -> None:
    provider_api.reply(200, {"id": "gw-1"}, delay=SLOW)
    with soft_time_limit_in(SLOW / 2), pytest.raises(SoftTimeLimitExceeded):
        attempts_run_due()
    first, second = (Attempt.objects.get(pk=a.pk) for a in due_attempts)
    assert (first.outcome, first.tries) == ("scheduled", 1)
    assert first.detail == "temporary: timed out: the attempt runner was stopped"
    assert first.due_at > timezone.now() + timedelta(seconds=20)  # its first retry delay, 30 s
    assert (second.outcome, second.tries) == ("scheduled", 0)  # never claimed


def test_an_attempt_that_raises_is_recorded_and_the_pass_moves_on(
    provider_api: ScriptedServer, due_attempts: list[Attempt]
) -> None:
    provider_api.reply(200, {"id": "x" * 300})  # longer than a message id may be: the resend cannot be stored
    provider_api.reply(200, {"id": "gw-2"})
    assert attempts_run_due() == 2
    first, second = (Attempt.objects.get(pk=a.pk) for a in due_attempts)
    assert first.outcome == "scheduled"
    assert first.detail.startswith("temporary: internal error: DataError")
    assert first.due_at > timezone.now()
    assert second.outcome == "succeeded"
