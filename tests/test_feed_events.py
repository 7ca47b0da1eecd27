"""What the product receives: each event type's payload, field by field, as docs/FEED.md
documents it, produced through the real decisions and attempts; and a webhook-id that is the
event's own for ever."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.utils import timezone

from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.attempts import attempts_run_due
from retries.feed.models import FeedDelivery, FeedEvent, ProductEndpoint
from retries.feed.services import feed_deliver_due, feed_publish
from retries.models import FallbackChannel
from retries.resend import resend_request
from tests.factories import GENERIC_SECRET, MessageFactory, rule_with_steps, user_in_role
from tests.send_api import FakeGateway
from tests.test_attempts import fail, run_later

pytestmark = pytest.mark.django_db

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MESSAGE_FIELDS = {"message_id", "provider_message_id", "client_reference", "connection", "recipient", "flow", "status"}
FAILURE_FIELDS = {"error_code", "reason", "error_class", "retry_advice", "explanation"}


@pytest.fixture
def otp(gateway: FakeGateway, default_rules: None) -> Message:
    message = MessageFactory(client_reference="login-42", fallback_email="user@example.com")
    gateway.configure(message.connection, sender_id="ACME")
    return message


def data_of(event_type: str, message: Message | None = None) -> dict:
    events = FeedEvent.objects.filter(type=event_type)
    event = (events.filter(message=message) if message else events).get()
    assert event.payload["type"] == event_type
    assert RFC3339_UTC.match(event.payload["timestamp"])
    return event.payload["data"]


def test_delivered_says_the_message_and_nothing_else(default_rules):
    message = MessageFactory(client_reference="order-7")
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED)
    outbox_process(
        OutboxEvent.objects.create(
            message=message, kind="status_changed", status="delivered", created_at=timezone.now()
        ).pk
    )
    data = data_of("message.delivered")
    assert set(data) == MESSAGE_FIELDS
    assert data["message_id"] == message.pk
    assert data["provider_message_id"] == message.provider_message_id
    assert (data["client_reference"], data["connection"], data["status"]) == (
        "order-7",
        message.connection.slug,
        "delivered",
    )


def test_retry_scheduled_names_the_attempt_and_when_it_runs_without_its_key(otp):
    fail(otp)
    data = data_of("message.retry_scheduled")
    assert set(data) == MESSAGE_FIELDS | FAILURE_FIELDS | {"attempt", "next_attempt_at"}
    assert data["attempt"] == {"number": 1, "action": "retry_same"}
    assert RFC3339_UTC.match(data["next_attempt_at"])
    assert data["message_id"] == otp.pk
    assert (data["reason"], data["error_class"]) == ("absent_subscriber", "temporary")


def test_failed_after_a_failed_attempt_carries_no_time_that_reads_like_a_coming_retry(otp, gateway):
    gateway.fail_next(400)
    fail(otp)
    run_later()
    data = data_of("message.failed")
    # The escalation's steps ran out: the failure is final, and nothing names a time.
    assert set(data) == MESSAGE_FIELDS | FAILURE_FIELDS | {"final", "why"}
    assert data["final"] is True
    assert "due_at" not in str(data)


def test_failed_after_a_failed_manual_resend_names_the_attempt_as_done(otp, gateway):
    Message.objects.filter(pk=otp.pk).update(status=Status.UNDELIVERED, reason="absent_subscriber",
                                             error_class="temporary")  # fmt: skip
    otp.refresh_from_db()
    gateway.fail_next(400)
    resend_request(message=otp, user=user_in_role("support"), request_key="k1")
    assert attempts_run_due() == 1
    data = data_of("message.failed")
    assert set(data) == MESSAGE_FIELDS | FAILURE_FIELDS | {"final", "why", "attempt"}
    assert data["attempt"] == {"number": 1, "action": "retry_same", "outcome": "failed"}
    assert "next_attempt_at" not in data
    assert "due_at" not in str(data)


def test_failed_when_the_steps_run_out_says_why(default_rules):
    message = MessageFactory()
    fail(message, reason="unknown_subscriber", error_class="permanent")
    data = data_of("message.failed")
    assert set(data) == MESSAGE_FIELDS | FAILURE_FIELDS | {"final", "why"}
    assert data["final"] is True
    assert data["reason"] == "unknown_subscriber"


def test_fallback_sent_names_the_channel(otp, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps("Fallback", {"action": "fallback", "fallback_channel": channel}, statuses=["undelivered"])
    fail(otp)
    assert attempts_run_due() == 1
    assert len(mail.outbox) == 1
    data = data_of("message.fallback_sent")
    assert set(data) == MESSAGE_FIELDS | FAILURE_FIELDS | {"attempt"}
    assert data["attempt"] == {"number": 1, "action": "fallback", "channel": "email"}


def test_a_resend_names_the_original_message(otp, gateway):
    fail(otp)
    run_later()
    resend = Message.objects.get(chain_root=otp)
    fail(resend)
    data = data_of("message.retry_scheduled", resend)
    assert data["message_id"] == resend.pk
    assert data["chain_root_message_id"] == otp.pk
    assert data["attempt"]["number"] == 2


def test_no_event_carries_an_idempotency_key(otp, gateway):
    gateway.fail_next(400)
    fail(otp)
    run_later()
    assert FeedEvent.objects.count() == 2
    assert "idempotency" not in str([event.payload for event in FeedEvent.objects.all()])


# The webhook-id


def test_two_events_get_different_webhook_ids_that_do_not_derive_from_their_row():
    message = MessageFactory()
    first = feed_publish(message=message, event_type="message.delivered")
    second = feed_publish(message=message, event_type="message.failed")
    assert first.webhook_id != second.webhook_id
    for event in (first, second):
        assert re.fullmatch(r"evt_[0-9a-f]{32}", event.webhook_id)
        assert str(event.pk) not in {event.webhook_id.removeprefix("evt_"), event.webhook_id[-len(str(event.pk)) :]}


def test_a_rebuilt_database_numbering_rows_again_still_gives_new_webhook_ids():
    message = MessageFactory()
    first = feed_publish(message=message, event_type="message.delivered")
    seen = first.webhook_id
    first_pk = first.pk
    FeedEvent.objects.all().delete()
    # The same row number again, as after a restore into a new database.
    again = FeedEvent.objects.create(
        pk=first_pk, type="message.delivered", message=message, payload={}, created_at=timezone.now()
    )
    assert again.webhook_id != seen


def test_every_attempt_of_every_delivery_of_an_event_keeps_its_webhook_id(product):
    product.fail_first(2)
    ProductEndpoint.objects.create(name="a", url=product.url, secret=GENERIC_SECRET)
    ProductEndpoint.objects.create(name="b", url=product.url, secret=GENERIC_SECRET)
    event = feed_publish(message=MessageFactory(), event_type="message.delivered")
    now = timezone.now()
    for _ in range(4):  # bounded: two failures, then both delivered
        feed_deliver_due(now, 10)
        due = FeedDelivery.objects.filter(next_attempt_at__isnull=False).values_list("next_attempt_at", flat=True)
        now = max(due, default=now)
    assert set(FeedDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert len(product.received) == 4
    assert {received.headers["webhook-id"] for received in product.received} == {event.webhook_id}
