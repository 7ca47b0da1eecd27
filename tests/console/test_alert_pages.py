"""The console's alert pages: admins set up rules and channels with choices and get a reason when
a value cannot work; support and admins see open alerts first by severity with the figure that
fired them, a chart and the messages behind them, and acknowledge, comment and snooze."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as db
from django.db import transaction
from django.test import Client
from django.utils import timezone

from alerts import metrics, selectors
from alerts.models import Alert, AlertChannel, AlertRule, Metric, Notification
from alerts.services import alert_fire, alert_resolve
from dlrconsole.audit.models import AuditEntry
from dlrconsole.lib import standard_webhooks
from receipts.rollups.figures import STATUS_COLUMNS
from receipts.rollups.maintain import bucket_start
from receipts.rollups.models import LEVEL_DIMENSIONS, CoarseRollup, Grain, Rollup
from receipts.rollups.rebuild import coarse_sql
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory, user_in_role
from tests.product_endpoint import ProductEndpointServer

pytestmark = pytest.mark.django_db


def client_as(role: str) -> Client:
    client = Client()
    client.force_login(user_in_role(role))
    return client


def rule_form(**fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "OTP delivery rate FR", "metric": "delivery_rate", "comparison": "below", "threshold": "90",
        "window_minutes": "15", "min_volume": "50", "hold_minutes": "5", "cooldown_minutes": "5",
        "severity": "critical", "country": "fr", "flow": "login-otp", "enabled": "on",
    }  # fmt: skip
    values.update(fields)
    return values


def test_an_admin_creates_a_rule_from_choices() -> None:
    response = client_as("admin").post("/console/alerts/rules/new/", rule_form())
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.metric, rule.country, rule.threshold, rule.state) == ("delivery_rate", "FR", Decimal(90), "ok")
    assert rule.history.count() == 1  # audited


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"threshold": "120"}, "between 0%"),
        ({"metric": "reason_rate", "threshold": "5"}, "Choose the reason"),
        ({"window_minutes": "7"}, "not one of the available choices"),
        ({"metric": "outbox_lag", "threshold": "60"}, "leave the scope empty"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_its_reason_and_not_stored(fields, reason) -> None:
    response = client_as("admin").post("/console/alerts/rules/new/", rule_form(**fields))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not AlertRule.objects.exists()


def test_support_sees_alerts_but_does_not_edit_rules() -> None:
    support = client_as("support")
    assert support.get("/console/alerts/").status_code == 200
    assert support.get("/console/alerts/rules/").status_code == 403


def rolled_up(grain: str, moment: datetime, **cell: Any) -> None:
    """One rollup cell: 10 messages, 4 delivered, 6 undelivered; and the coarse levels made
    again from the fine rows, as the passes keep them."""
    cell = {"connection": ConnectionFactory(), "country": "FR", "network": "", "flow": "login-otp"} | cell
    Rollup.objects.create(
        grain=grain, bucket=bucket_start(moment, grain), connection_id=cell["connection"].pk, country=cell["country"],
        network=cell["network"], flow=cell["flow"], currency="", messages=10,
        **{STATUS_COLUMNS[Status.DELIVERED]: 4, STATUS_COLUMNS[Status.UNDELIVERED]: 6},
    )  # fmt: skip
    CoarseRollup.objects.all().delete()
    with db.cursor() as cursor:
        for level in LEVEL_DIMENSIONS:
            cursor.execute(coarse_sql(level))


def fired(name: str, severity: str, **rule_fields: object) -> Alert:
    rule = AlertRule.objects.create(
        name=name, metric=Metric.DELIVERY_RATE, threshold=Decimal(90), severity=severity, **rule_fields
    )
    with transaction.atomic():
        return alert_fire(rule=rule, value=70.0, volume=300, summary="", now=timezone.now() - timedelta(minutes=3))


def test_open_alerts_come_first_by_severity_then_snoozed_then_resolved() -> None:
    fired("info alert", "info")
    resolved = fired("resolved alert", "critical")
    alert_resolve(alert=resolved, now=timezone.now(), why="back to normal")
    snoozed = fired("snoozed alert", "critical")
    Alert.objects.filter(pk=snoozed.pk).update(snoozed_until=timezone.now() + timedelta(hours=1))
    fired("critical alert", "critical")
    page = client_as("support").get("/console/alerts/").content.decode()
    order = [page.index(name) for name in ("critical alert", "info alert", "snoozed alert", "resolved alert")]
    assert order == sorted(order)
    assert "Delivery rate (% of finished messages delivered): 70.0% (falls below 90.0%, 300 messages)" in page


def test_an_alert_page_shows_its_figure_chart_and_the_messages_behind_it() -> None:
    connection = ConnectionFactory(slug="twilio-eu")
    alert = fired("FR OTP", "warning", connection=connection, country="FR", flow="login-otp", window_minutes=15)
    rolled_up(Grain.MINUTE, alert.created_at - timedelta(minutes=5), connection=connection)
    page = client_as("support").get(f"/console/alerts/{alert.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html
    assert 'data-testid="alert-chart"' in html
    link = page.context["messages_url"]
    query = parse_qs(urlsplit(link).query)
    assert query["connection"] == ["twilio-eu"]
    assert query["country"] == ["FR"]
    assert query["flow"] == ["login-otp"]
    assert set(query["status"]) == {"undelivered", "expired", "rejected", "failed"}
    assert "submitted_after" in query
    assert client_as("admin").get(link).status_code == 200  # the search takes these filters


def test_an_alert_with_no_messages_around_it_says_so_instead_of_an_empty_chart() -> None:
    alert = fired("FR OTP", "warning", country="FR")
    html = client_as("support").get(f"/console/alerts/{alert.pk}/").content.decode()
    assert "<svg" not in html
    assert "No messages to judge per minute from" in html


def test_an_alert_over_hours_is_charted_per_hour_around_the_firing() -> None:
    connection = ConnectionFactory()
    alert = fired("FR OTP daily", "warning", connection=connection, country="FR", window_minutes=1440)
    for hours in (1, 5, 20):
        rolled_up(Grain.HOUR, alert.created_at - timedelta(hours=hours), connection=connection)
    rolled_up(Grain.HOUR, alert.created_at - timedelta(hours=30), connection=connection)  # before the chart
    chart = selectors.chart_for(alert)
    assert chart is not None
    assert (chart.grain, chart.empty, len(chart.points.split())) == ("hour", False, 3)
    assert chart.start == bucket_start(alert.created_at, Grain.HOUR) - timedelta(hours=24)
    html = client_as("support").get(f"/console/alerts/{alert.pk}/").content.decode()
    assert "Per hour, 40.0% to 90.0%" in html


@pytest.mark.parametrize(
    ("metric", "threshold", "says"),
    [
        (Metric.OUTBOX_LAG, 60, "<strong>70.0 s</strong> (rises above 60.0 s). Now: <strong>0.0 s</strong>"),
        (Metric.FEED_BACKLOG, 50, "<strong>70</strong> (rises above 50). Now: <strong>0</strong>"),
        (Metric.OVERDUE_ATTEMPTS, 5, "<strong>70</strong> (rises above 5). Now: <strong>0</strong>"),
        (Metric.BEAT_LATE, 60, "<strong>70.0 s</strong> (rises above 60.0 s). Now: <strong>0.0 s</strong>"),
    ],
)
def test_a_system_alert_states_its_figure_then_and_now_instead_of_a_chart(metric, threshold, says) -> None:
    rule = AlertRule.objects.create(name="System", metric=metric, comparison="above", threshold=Decimal(threshold))
    with transaction.atomic():
        alert = alert_fire(rule=rule, value=70.0, volume=0, summary="", now=timezone.now())
    html = client_as("support").get(f"/console/alerts/{alert.pk}/").content.decode()
    assert "<svg" not in html
    assert f"When it fired: {says}" in html
    assert "not kept over time" in html


def test_a_missing_receipt_alert_on_a_network_links_to_exactly_the_messages_it_counted() -> None:
    now = timezone.now()
    rule = AlertRule.objects.create(
        name="Orange FR missing receipts", metric=Metric.MISSING_RATE, comparison="above", threshold=Decimal(5),
        network="20801", window_minutes=15,
    )  # fmt: skip
    with transaction.atomic():
        alert = alert_fire(rule=rule, value=50.0, volume=4, summary="", now=now)
    window = metrics.window_for(15, now)
    inside = window.start + timedelta(minutes=3)
    reported = {"no_receipt_at": now, "submitted_at": inside, "status": Status.SENT}
    counted = [MessageFactory(network="20801", **reported) for _ in range(2)]
    MessageFactory(network="20810", **reported)  # another network
    MessageFactory(network="20801", submitted_at=inside, status=Status.DELIVERED)  # its receipt came
    MessageFactory(network="20801", **(reported | {"submitted_at": window.start - timedelta(minutes=1)}))
    MessageFactory(network="20801", **(reported | {"submitted_at": window.end}))  # after the window read
    support = client_as("support")
    response = support.get(support.get(f"/console/alerts/{alert.pk}/").context["messages_url"])
    assert response.status_code == 200
    assert sorted(message.pk for message in response.context["page"].rows) == sorted(m.pk for m in counted)


def test_support_acknowledges_comments_and_snoozes_and_the_history_says_so() -> None:
    alert = fired("FR OTP", "warning")
    support = client_as("support")
    assert support.post(f"/console/alerts/{alert.pk}/acknowledge/").status_code == 302
    assert (
        support.post(f"/console/alerts/{alert.pk}/comment/", {"text": "Twilio says a carrier outage"}).status_code
        == 302
    )
    assert support.post(f"/console/alerts/{alert.pk}/comment/", {"text": "  "}).status_code == 400
    assert support.post(f"/console/alerts/{alert.pk}/snooze/", {"hours": "4"}).status_code == 302
    assert support.post(f"/console/alerts/{alert.pk}/snooze/", {"hours": "999"}).status_code == 400
    assert support.post(f"/console/alerts/{alert.pk}/resolve/").status_code == 302  # refused: resolves itself
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "support-user"
    assert alert.snoozed_until is not None
    assert alert.state == "open"
    kinds = list(alert.events.values_list("kind", "text"))
    assert kinds[1:] == [("acknowledged", ""), ("commented", "Twilio says a carrier outage"), ("snoozed", kinds[3][1])]


def test_acknowledging_commenting_and_snoozing_an_alert_are_on_the_audit_log() -> None:
    alert = fired("FR OTP", "warning")
    support = client_as("support")
    support.post(f"/console/alerts/{alert.pk}/acknowledge/")
    support.post(f"/console/alerts/{alert.pk}/acknowledge/")  # already done: no second entry
    support.post(f"/console/alerts/{alert.pk}/comment/", {"text": "carrier outage"})
    support.post(f"/console/alerts/{alert.pk}/snooze/", {"hours": "1"})
    support.post(f"/console/alerts/{alert.pk}/snooze/", {"hours": "0"})
    entries = AuditEntry.objects.filter(model="alerts.alert", object_id=str(alert.pk)).order_by("id")
    changes = [(e.username, e.changes[0]["label"], e.changes[0]["new"]) for e in entries]
    assert changes[:2] == [("support-user", "Acknowledged", "yes"), ("support-user", "Comment", "carrier outage")]
    assert changes[2][1] == "Snoozed until"
    assert changes[2][2] != "woken up"
    assert changes[3] == ("support-user", "Snoozed until", "woken up")
    assert entries[3].changes[0]["old"] == changes[2][2]
    page = client_as("admin").get("/console/audit/", {"model": "alerts.alert"}).content.decode()
    assert "carrier outage" in page
    assert "FR OTP" in page


def test_a_channel_secret_is_write_only_and_the_test_result_is_kept(product: ProductEndpointServer) -> None:
    admin = client_as("admin")
    secret = standard_webhooks.generate_secret()
    form = {"name": "Ops hook", "config_url": product.url, "config_secret": secret, "enabled": "on"}
    response = admin.post("/console/alerts/channels/new/?kind=webhook", form)
    assert response.status_code == 302, response.context["form"].errors
    channel = AlertChannel.objects.get()
    page = admin.get(f"/console/alerts/channels/{channel.pk}/").content.decode()
    assert secret not in page
    # Saved again without typing the secret: it is kept.
    admin.post(
        f"/console/alerts/channels/{channel.pk}/", {"name": "Ops hook 2", "config_url": product.url, "enabled": "on"}
    )
    channel.refresh_from_db()
    assert (channel.name, channel.config["secret"]) == ("Ops hook 2", secret)

    product.fail_first(1, status=500)
    admin.post(f"/console/alerts/channels/{channel.pk}/test/")
    admin.post(f"/console/alerts/channels/{channel.pk}/test/")
    tests = Notification.objects.filter(channel=channel, event="test").order_by("id")
    assert [n.state for n in tests] == ["failed", "sent"]
    log = admin.get(f"/console/alerts/channels/{channel.pk}/").content.decode()
    assert "the service answered 500" in log


def test_a_channel_with_an_unusable_address_is_refused_with_a_reason() -> None:
    admin = client_as("admin")
    response = admin.post(
        "/console/alerts/channels/new/?kind=slack",
        {"name": "x", "config_url": "http://169.254.169.254/", "enabled": "on"},
    )
    assert response.status_code == 400
    assert "refused" in response.content.decode()
    assert admin.get("/console/alerts/channels/new/?kind=carrier-pigeon").status_code == 400
