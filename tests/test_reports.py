"""Scheduled reports: the right period in the schedule's time zone, each period e-mailed once
with the rollups' figures as CSV, a failed send tried again, configured by admins in the console."""

from __future__ import annotations

import csv
import io
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from alerts.reports.figures import Row, report_csv
from alerts.reports.models import ReportDelivery, ReportSchedule
from alerts.reports.periods import last_period
from alerts.reports.services import reports_send_due
from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from receipts.ingestion import ingest
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.rollups import maintain
from receipts.rollups.selectors import Figures
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory, user_in_role

PARIS = "Europe/Paris"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 06:59 in Paris on 10 June: today's report is not due yet; the latest is 8 June's.
        (datetime(2026, 6, 10, 4, 59, tzinfo=UTC), (datetime(2026, 6, 7, 22, tzinfo=UTC), datetime(2026, 6, 8, 22, tzinfo=UTC))),  # noqa: E501
        # 07:00: 9 June's, midnight to midnight in Paris.
        (datetime(2026, 6, 10, 5, 0, tzinfo=UTC), (datetime(2026, 6, 8, 22, tzinfo=UTC), datetime(2026, 6, 9, 22, tzinfo=UTC))),  # noqa: E501
    ],
)  # fmt: skip
def test_a_daily_report_covers_the_previous_local_day_once_its_hour_has_come(now: datetime, expected: Any) -> None:
    assert last_period(frequency="daily", weekday=0, send_hour=7, time_zone=PARIS, now=now) == expected


def test_the_day_clocks_go_forward_lasts_23_hours() -> None:
    start, end = last_period(
        frequency="daily", weekday=0, send_hour=7, time_zone=PARIS, now=datetime(2026, 3, 30, 6, tzinfo=UTC)
    )
    assert (start, end - start) == (datetime(2026, 3, 28, 23, tzinfo=UTC), timedelta(hours=23))


def test_a_weekly_report_covers_monday_to_sunday_before_its_day() -> None:
    # Wednesday 2026-06-10 at 09:00 in Paris, sent on Wednesdays at 08:00: the week of 1-7 June.
    start, end = last_period(
        frequency="weekly", weekday=2, send_hour=8, time_zone=PARIS, now=datetime(2026, 6, 10, 7, tzinfo=UTC)
    )
    assert (start, end) == (datetime(2026, 5, 31, 22, tzinfo=UTC), datetime(2026, 6, 7, 22, tzinfo=UTC))
    # An hour earlier it is not due yet: the week before.
    earlier = last_period(
        frequency="weekly", weekday=2, send_hour=8, time_zone=PARIS, now=datetime(2026, 6, 10, 5, tzinfo=UTC)
    )
    assert earlier == (datetime(2026, 5, 24, 22, tzinfo=UTC), datetime(2026, 5, 31, 22, tzinfo=UTC))


def test_a_group_name_that_reads_as_a_formula_is_neutralised_in_the_csv() -> None:
    text = report_csv([Row(group="=HYPERLINK(1)", figures=Figures(group={}))])
    assert list(csv.reader(io.StringIO(text)))[1][0] == "'=HYPERLINK(1)"


def _traffic() -> None:
    """Yesterday (9 June, Paris): two login OTPs, one delivered in 4 s, one absent subscriber;
    one marketing message delivered."""
    connection = ConnectionFactory(slug="twilio-eu")
    request = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")
    fates = [("a", "login-otp", Status.DELIVERED, ""), ("b", "login-otp", Status.UNDELIVERED, "1"),
             ("c", "marketing", Status.DELIVERED, "")]  # fmt: skip
    for provider_id, flow, _status, _code in fates:
        message_register(
            MessageRegistration(
                connection=connection, provider_message_id=provider_id, recipient=parse_number("+33612345678"),
                flow=flow,
            )
        )  # fmt: skip
    with time_machine.travel(timedelta(seconds=4)):
        for provider_id, _, status, code in fates:
            event = ReceiptEvent(
                provider_message_id=provider_id, provider_status=status, status=status, error_code=code
            )
            ingest(connection=connection, request=request, events=[event], headers={})
    maintain.roll_up()


@pytest.fixture
def yesterday_traffic(db: None) -> Any:
    with time_machine.travel(datetime(2026, 6, 9, 10, 0, tzinfo=UTC), tick=False) as clock:
        schedule = ReportSchedule.objects.create(
            name="OTP daily",
            send_hour=7,
            time_zone=PARIS,
            group_by="flow",
            recipients="ops@example.com\nbi@example.com",
        )
        _traffic()
        yield schedule, clock


def test_a_due_report_is_mailed_once_with_the_figures_per_flow(yesterday_traffic: Any) -> None:
    schedule, clock = yesterday_traffic
    clock.move_to(datetime(2026, 6, 10, 5, 30, tzinfo=UTC))  # 07:30 in Paris
    assert len(reports_send_due(now=datetime.now(UTC))) == 1
    (email,) = mail.outbox
    assert email.to == ["ops@example.com", "bi@example.com"]
    assert email.subject == "[DLR Console] OTP daily: Tue 09 Jun 2026"
    assert "3 messages: 2 delivered, 1 failed (delivery rate 66.7%)." in email.body
    name, content, mimetype = email.attachments[0]
    assert (name, mimetype) == (f"dlr-report-{schedule.pk}-2026-06-09.csv", "text/csv")
    rows = {row["group"]: row for row in csv.DictReader(io.StringIO(content))}
    assert (rows["login-otp"]["messages"], rows["login-otp"]["delivered"], rows["login-otp"]["failed"]) == (
        "2",
        "1",
        "1",
    )
    assert rows["login-otp"]["delivery_rate"] == "0.5000"
    assert rows["login-otp"]["p50_seconds_to_delivery"] == "4.0"
    assert rows["login-otp"]["top_reasons"].endswith(" 1")
    assert rows["marketing"]["delivered"] == "1"
    # The next run, and the one after, send nothing more for this period.
    reports_send_due(now=datetime.now(UTC))
    clock.shift(timedelta(hours=3))
    reports_send_due(now=datetime.now(UTC))
    assert len(mail.outbox) == 1
    assert ReportDelivery.objects.get().state == ReportDelivery.State.SENT


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_report_the_mail_server_refused_is_sent_at_a_later_run(yesterday_traffic: Any, settings: Any) -> None:
    _, clock = yesterday_traffic
    clock.move_to(datetime(2026, 6, 10, 5, 30, tzinfo=UTC))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    reports_send_due(now=datetime.now(UTC))
    delivery = ReportDelivery.objects.get()
    assert (delivery.state, delivery.tries, delivery.last_error) == ("pending", 1, "not sent: ConnectionRefusedError")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reports_send_due(now=datetime.now(UTC))
    delivery.refresh_from_db()
    assert (delivery.state, delivery.tries, len(mail.outbox)) == ("sent", 2, 1)


def test_a_new_schedule_does_not_send_periods_that_ended_before_it_existed(db: None) -> None:
    with time_machine.travel(datetime(2026, 6, 10, 12, tzinfo=UTC), tick=False):
        ReportSchedule.objects.create(name="New", send_hour=7, time_zone=PARIS, recipients="ops@example.com")
        assert reports_send_due(now=datetime.now(UTC)) == []
    assert mail.outbox == []


def _form(**changes: str) -> dict[str, str]:
    return {
        "name": "Weekly routes", "frequency": "weekly", "weekday": "0", "send_hour": "8", "time_zone": PARIS,
        "group_by": "connection", "flow": "", "connection": "", "recipients": "ops@example.com", "enabled": "on",
        **changes,
    }  # fmt: skip


def test_an_admin_schedules_a_report_in_the_console_and_the_change_is_audited(db: None) -> None:
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    refused = admin.post(
        "/console/reports/new/", _form(recipients="ops@example.com, not-an-address", time_zone="Mars/Olympus")
    )
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "not-an-address is not an e-mail address." in page
    assert "Mars/Olympus is not one of the available choices." in page
    assert not ReportSchedule.objects.exists()
    assert admin.post("/console/reports/new/", _form()).status_code == 302
    schedule = ReportSchedule.objects.get()
    assert (schedule.frequency, schedule.group_by, schedule.created_by.username) == ("weekly", "connection", "boss")
    listing = admin.get("/console/reports/").content.decode()
    assert "Weekly routes" in listing
    assert "Mondays at 08:00" in listing
    entry = AuditEntry.objects.get(model="reports.reportschedule")
    assert (entry.username, entry.object_id) == ("boss", str(schedule.pk))


def test_send_now_mails_the_last_period_and_shows_it_sent(yesterday_traffic: Any) -> None:
    schedule, clock = yesterday_traffic
    clock.move_to(datetime(2026, 6, 10, 9, tzinfo=UTC))
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    response = admin.post(f"/console/reports/{schedule.pk}/send/", follow=True)
    assert "Report sent to 2 addresses, 2 rows." in response.content.decode()
    assert len(mail.outbox) == 1
    assert ReportDelivery.objects.get().requested_by.username == "boss"
    # The schedule's own run still sends its period: "Send now" is not the scheduled delivery.
    reports_send_due(now=datetime.now(UTC))
    assert len(mail.outbox) == 2


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.VIEWER])
def test_only_admins_configure_reports(db: None, role: str) -> None:
    client = Client()
    client.force_login(user_in_role(role))
    assert client.get("/console/reports/").status_code == 403
    assert client.post("/console/reports/new/", _form()).status_code == 403
