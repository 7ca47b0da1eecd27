"""Scheduled reports: a CSV of the rollups' figures for the last day or week, e-mailed with a
short summary. Configured in the console by admins (dlrconsole/console/reports.py)."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _

from dlrconsole.lib.history import AuditedHistory

MAX_RECIPIENTS = 20


def recipient_list(text: str) -> list[str]:
    """The addresses of a recipients field: one per line or separated by commas."""
    return [address.strip() for address in text.replace(",", "\n").splitlines() if address.strip()]


def validate_recipients(text: str) -> None:
    addresses = recipient_list(text)
    if not addresses:
        raise ValidationError(_("Give at least one e-mail address."))
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError(_("At most %(limit)s addresses."), params={"limit": MAX_RECIPIENTS})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(_("%(address)s is not an e-mail address."), params={"address": address}) from None


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a time zone (e.g. Europe/Paris)."), params={"value": value})


class ReportSchedule(models.Model):
    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily: the previous day")
        WEEKLY = "weekly", _("Weekly: the previous week, Monday to Sunday")

    class GroupBy(models.TextChoices):
        FLOW = "flow", _("Flow")
        CONNECTION = "connection", _("Connection")
        COUNTRY = "country", _("Country")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    name = models.CharField(max_length=120)
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(
        choices=Weekday.choices, default=Weekday.MONDAY, help_text=_("For a weekly report: the day it is sent.")
    )
    send_hour = models.PositiveSmallIntegerField(
        default=7, validators=[MaxValueValidator(23)], help_text=_("The hour it is sent, in its time zone.")
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    group_by = models.CharField(max_length=16, choices=GroupBy.choices, default=GroupBy.FLOW)
    # Optional scope: one flow, one connection, or everything.
    flow = models.SlugField(max_length=64, blank=True, help_text=_("Only this flow; empty: every flow."))
    connection = models.ForeignKey(
        "receipts.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text=_("Only this connection; empty: every connection."),
    )  # fmt: skip
    recipients = models.TextField(validators=[validate_recipients], help_text=_("One address per line."))
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = AuditedHistory()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ReportDelivery(models.Model):
    """One period's report of one schedule: created before sending, so a period is sent at most
    once (the unique constraint) and a failed send is tried again at the next run."""

    class State(models.TextChoices):
        PENDING = "pending", _("Not sent yet")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Gave up")

    schedule = models.ForeignKey(ReportSchedule, on_delete=models.CASCADE, related_name="deliveries")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    # Who asked for it when sent from the console's "Send now"; empty for the schedule's own runs.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "period_start"],
                name="report_delivery_once_per_period",
                condition=models.Q(requested_by__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.period_start:%Y-%m-%d}"
