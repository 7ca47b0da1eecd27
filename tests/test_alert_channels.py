"""Alert channels against a real local HTTP server: each kind posts what its service expects, a
failed send is retried with backoff until the server accepts it (every try logged with its
status code, never the reply's body), a permanent refusal stops at once, and PagerDuty's
incident is resolved with the key it was triggered with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from alerts.models import Alert, AlertChannel, AlertEvent, AlertRule, Metric, Notification
from alerts.notify import notifications_send_due
from alerts.services import alert_fire, alert_resolve, alert_snooze
from dlrconsole.lib import standard_webhooks
from tests.product_endpoint import ProductEndpointServer

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 8, 30, tzinfo=UTC)
ROUTING_KEY = "R" * 32


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def channel(kind: str, **config: Any) -> AlertChannel:
    made = AlertChannel(name=f"{kind} channel", kind=kind, config=config)
    made.full_clean()
    made.save()
    return made


def fire(*channels: AlertChannel) -> Alert:
    rule = AlertRule.objects.create(
        name="FR delivery rate", metric=Metric.DELIVERY_RATE, country="FR", threshold=Decimal(90), severity="critical"
    )
    rule.channels.set(channels)
    with transaction.atomic():
        return alert_fire(rule=rule, value=61.5, volume=420, summary="Delivery rate: 61.5%", now=NOW)


def test_a_channel_is_tried_again_with_backoff_until_the_service_accepts(clock: Any, product: ProductEndpointServer):
    product.fail_first(2, status=503)
    slack = channel("slack", url=product.url)
    alert = fire(slack)

    assert notifications_send_due() == 1  # 503
    assert notifications_send_due() == 0  # not due again before its backoff
    clock.shift(timedelta(seconds=30))
    assert notifications_send_due() == 1  # 503 again; the next pause is longer
    clock.shift(timedelta(seconds=30))
    assert notifications_send_due() == 0
    clock.shift(timedelta(seconds=30))
    assert notifications_send_due() == 1  # accepted

    notification = Notification.objects.get()
    assert notification.state == "sent"
    attempts = list(notification.attempts.values_list("outcome", "status_code", "error"))
    assert attempts == [("retry", 503, "the service answered 503"), ("retry", 503, "the service answered 503"),
                        ("sent", 200, "")]  # fmt: skip
    assert len(product.received) == 3
    body = product.received[-1].event
    assert body["text"] == "[FIRING] [critical] FR delivery rate"
    assert body["attachments"][0]["title_link"].endswith(f"/console/alerts/{alert.pk}/")
    assert AlertEvent.objects.filter(alert=alert, kind="notified").count() == 1


def test_a_refusal_that_cannot_get_better_is_not_tried_again(clock: Any, product: ProductEndpointServer) -> None:
    product.fail_first(1, status=404)
    fire(channel("teams", url=product.url))
    notifications_send_due()
    clock.shift(timedelta(hours=1))
    assert notifications_send_due() == 0
    notification = Notification.objects.get()
    assert notification.state == "failed"
    assert list(notification.attempts.values_list("outcome", "status_code")) == [("failed", 404)]


def test_teams_gets_an_adaptive_card(clock: Any, product: ProductEndpointServer) -> None:
    fire(channel("teams", url=product.url))
    notifications_send_due()
    body = product.received[0].event
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == "[FIRING] [critical] FR delivery rate"


def test_the_signed_webhook_is_signed_as_standard_webhooks_say(clock: Any, product: ProductEndpointServer) -> None:
    secret = standard_webhooks.generate_secret()
    alert = fire(channel("webhook", url=product.url, secret=secret))
    notifications_send_due()
    received = product.received[0]
    assert standard_webhooks.signature_matches(
        secret=secret, msg_id=received.headers["webhook-id"], timestamp=int(received.headers["webhook-timestamp"]),
        body=received.body, header=received.headers["webhook-signature"],
    )  # fmt: skip
    assert received.event["type"] == "alert.fired"
    assert received.event["data"]["alert_id"] == alert.pk


def test_pagerduty_triggers_on_fire_and_resolves_the_same_incident(clock: Any, product: ProductEndpointServer) -> None:
    pagerduty = channel("pagerduty", routing_key=ROUTING_KEY, url=product.url)
    alert = fire(pagerduty)
    notifications_send_due()
    clock.shift(timedelta(minutes=20))
    with transaction.atomic():
        assert alert_resolve(alert=alert, now=NOW + timedelta(minutes=20), why="back to normal") is True
        assert alert_resolve(alert=alert, now=NOW + timedelta(minutes=21), why="again") is False
    notifications_send_due()
    trigger, resolve = (received.event for received in product.received)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"dlr-console-alert-{alert.pk}"
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["severity"] == "critical"


def test_e_mail_goes_through_the_configured_backend(clock: Any, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    fire(channel("email", to=["oncall@acme.test"]))
    notifications_send_due()
    assert mail.outbox[0].to == ["oncall@acme.test"]
    assert mail.outbox[0].subject == "[DLR Console] [FIRING] [critical] FR delivery rate"
    assert Notification.objects.get().state == "sent"


def test_a_snoozed_alert_tells_nobody_that_it_resolved(clock: Any, product: ProductEndpointServer) -> None:
    alert = fire(channel("slack", url=product.url))
    notifications_send_due()
    alert_snooze(alert=alert, user=None, until=NOW + timedelta(hours=4), now=NOW)
    alert.refresh_from_db()
    with transaction.atomic():
        alert_resolve(alert=alert, now=NOW + timedelta(minutes=5), why="back to normal")
    clock.shift(timedelta(minutes=5))
    assert notifications_send_due() == 0
    assert len(product.received) == 1


@pytest.mark.parametrize(
    ("kind", "config", "complaint"),
    [
        ("slack", {"url": "ftp://hooks.example/x"}, "url"),
        ("slack", {"url": "http://169.254.169.254/latest"}, "refused"),
        ("webhook", {"url": "https://hooks.example/x", "secret": "not-a-secret"}, "secret"),
        ("pagerduty", {"routing_key": "short"}, "routing_key"),
        ("email", {"to": ["not an address"]}, "to"),
    ],
)
def test_a_channel_that_cannot_work_is_refused_with_a_reason(kind: str, config: dict[str, Any], complaint: str) -> None:
    with pytest.raises(Exception, match=complaint):
        AlertChannel(name="x", kind=kind, config=config).full_clean()


def test_channel_secrets_are_kept_out_of_the_audit_history() -> None:
    secret = standard_webhooks.generate_secret()
    made = channel("webhook", url="https://hooks.example/alerts", secret=secret)
    record = made.history.latest()
    assert secret not in json.dumps(record.config)
    assert record.config["url"] == "https://hooks.example/alerts"
