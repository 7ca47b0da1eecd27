"""The `alert` action raises one support alert per decision, mailed to the alert list."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from alerts.models import Alert
from alerts.services import alert_acknowledge
from receipts.models import OutboxEvent
from receipts.outbox import outbox_process, outbox_process_batch
from retries.models import Decision, Rule
from tests.factories import MessageFactory, rule_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert_rule() -> Rule:
    return rule_with_steps("Blocked content: tell support", {"action": "alert"}, reasons=["blocked_content"])


def blocked(message):
    message.status, message.reason, message.error_class = "rejected", "blocked_content", "permanent"
    message.save()
    event = OutboxEvent.objects.create(message=message, kind="status_changed", status="rejected",
                                       created_at=timezone.now())  # fmt: skip
    return event


def test_an_alert_rule_raises_one_alert_and_mails_the_list(alert_rule, settings, django_capture_on_commit_callbacks):
    settings.DLR_ALERT_EMAILS = ["oncall@acme.test"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    event = blocked(MessageFactory(provider_message_id="SM9"))
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_process(event.pk) is True
        assert outbox_process(event.pk) is False  # redelivered: no second alert
    alert = Alert.objects.get()
    assert alert.decision.rule == alert_rule
    assert alert.title.startswith(f"{event.message.connection.slug} SM9: rejected (blocked_content)")
    [sent] = mail.outbox
    assert sent.to == ["oncall@acme.test"]
    assert "SM9" in sent.subject


def test_an_alert_is_acknowledged_once(alert_rule, admin_user):
    outbox_process(blocked(MessageFactory()).pk)
    alert = Alert.objects.get()
    assert alert_acknowledge(alert=alert, user=admin_user) is True
    assert alert_acknowledge(alert=alert, user=admin_user) is False
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin_user


def test_admins_acknowledge_alerts_from_the_admin(alert_rule, admin_client):
    outbox_process(blocked(MessageFactory()).pk)
    alert = Alert.objects.get()
    response = admin_client.post("/admin/alerts/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None


def test_a_per_message_alert_joins_the_lifecycle_and_reaches_channels_that_take_them(alert_rule, product, admin_user):
    from alerts.models import AlertChannel, Notification
    from alerts.notify import notifications_send_due
    from alerts.services import alert_resolve

    takes_them = AlertChannel.objects.create(name="support room", kind="slack", config={"url": product.url},
                                             per_message_alerts=True)  # fmt: skip
    AlertChannel.objects.create(name="on-call", kind="slack", config={"url": product.url})  # metric alerts only
    outbox_process(blocked(MessageFactory(provider_message_id="SM7")).pk)
    alert = Alert.objects.get()
    assert (alert.source, alert.state, alert.severity) == ("rule", "open", "warning")
    assert Notification.objects.get().channel == takes_them
    assert notifications_send_due() == 1
    assert "SM7" in product.received[0].event["text"]

    assert alert_resolve(alert=alert, now=timezone.now(), why="resolved by hand", user=admin_user) is True
    kinds = list(alert.events.values_list("kind", flat=True))
    assert kinds == ["fired", "notified", "resolved"]


def test_in_a_batch_an_alert_rules_event_is_written_on_its_own_and_the_others_held(default_rules, alert_rule):
    # default_rules first: it installs the shipped rules only into a table with none.
    events = [blocked(MessageFactory()), blocked(MessageFactory())]
    delivered = MessageFactory(status="delivered")
    events.append(
        OutboxEvent.objects.create(
            message=delivered, kind="status_changed", status="delivered", created_at=timezone.now()
        )
    )

    assert outbox_process_batch([e.pk for e in events]) == 3

    assert [a.decision.outbox_event_id for a in Alert.objects.order_by("id")] == [e.pk for e in events[:2]]
    assert list(Decision.objects.filter(outbox_event=events[2]).values_list("action", "state")) == [
        ("notify", "recorded")
    ]
