"""Alerts in a real browser: an admin sets up a rule with the form's choices, the next round of
evaluation fires it over real traffic (messages and receipts through the flow, a rollup pass),
and the admin finds it first on the alerts page, with its figure, and acknowledges it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from alerts import evaluation
from alerts.models import Alert
from receipts.ingestion import ingest
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.rollups import maintain
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.browser.conftest import screenshot, sign_in
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def failing_traffic() -> None:
    """Ten OTPs to France in the last minute, four delivered and six undelivered."""
    connection = ConnectionFactory(slug="twilio-eu", name="Twilio EU")
    request = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")
    for n in range(10):
        provider_id = f"SM{n:04d}"
        message_register(MessageRegistration(
            connection=connection, provider_message_id=provider_id, recipient=parse_number(f"+336123456{n:02d}"),
            flow="login-otp", submitted_at=timezone.now() - timedelta(seconds=30),
        ))  # fmt: skip
        status = Status.DELIVERED if n < 4 else Status.UNDELIVERED
        event = ReceiptEvent(provider_message_id=provider_id, provider_status=status.value, status=status,
                             event_id=f"{provider_id}:{status}")  # fmt: skip
        ingest(connection=connection, request=request, events=[event], headers={})
    while maintain.roll_up():
        pass


def test_an_admin_creates_a_rule_sees_it_fire_and_acknowledges_it(page: Page, live_server, roles) -> None:
    failing_traffic()
    sign_in(page, live_server.url, "admin")
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_test_id("no-alerts")).to_be_visible()
    page.get_by_test_id("alert-rules").click()
    page.get_by_test_id("new-alert-rule").click()
    page.get_by_label("Name").fill("France OTP delivery rate")
    page.get_by_label("Metric").select_option("delivery_rate")
    page.get_by_label("Fires when the figure").select_option("below")
    page.get_by_label("Threshold").fill("90")
    page.get_by_label("Window").select_option("15")
    page.get_by_label("Minimum volume").fill("5")
    page.get_by_label("Fires after holding for").select_option("0")
    page.get_by_label("Severity").select_option("critical")
    page.get_by_label("Country").fill("FR")
    page.get_by_test_id("save-alert-rule").click()
    expect(page.get_by_role("link", name="France OTP delivery rate")).to_be_visible()

    # The beat's next round, a minute on (a window ends where the current minute starts).
    assert evaluation.evaluate_all(now=timezone.now() + timedelta(minutes=1)) == 1
    page.goto(f"{live_server.url}/console/alerts/")
    row = page.get_by_test_id("alert-row").first
    expect(row).to_contain_text("France OTP delivery rate")
    expect(row).to_contain_text("40.0% (falls below 90.0%, 10 messages)")
    row.get_by_role("link", name="France OTP delivery rate").click()
    expect(page.get_by_test_id("alert-chart")).to_be_visible()
    screenshot(page, "alert")
    page.get_by_test_id("acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("Alert acknowledged")
    expect(page.get_by_test_id("alert-history")).to_contain_text(re.compile(r"Acknowledged by admin-agent"))
    assert Alert.objects.get().acknowledged_by.username == "admin-agent"
