"""Sending scheduled reports: each period once, tried again after a failure, never lost."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime
from typing import Any

from django.core.mail import EmailMessage
from django.db import transaction

from alerts.reports.figures import Row, report_csv, report_rows
from alerts.reports.models import ReportDelivery, ReportSchedule, recipient_list
from alerts.reports.periods import last_period
from dlrconsole.lib.languages import in_default_language

logger = logging.getLogger(__name__)

# A mail server refusing for longer than this many runs (beat: every 5 minutes) needs a person.
MAX_TRIES = 12


def schedule_period(schedule: ReportSchedule, now: datetime) -> tuple[datetime, datetime]:
    return last_period(
        frequency=schedule.frequency, weekday=schedule.weekday, send_hour=schedule.send_hour,
        time_zone=schedule.time_zone, now=now,
    )  # fmt: skip


def reports_send_due(*, now: datetime) -> list[int]:
    """Deliver every enabled schedule's latest due period not sent yet; the deliveries tried.
    A period that ended before its schedule existed is not sent (the console's "Send now" is)."""
    tried = []
    for schedule in ReportSchedule.objects.filter(enabled=True):
        start, end = schedule_period(schedule, now)
        if end <= schedule.created_at:
            continue
        delivery, _ = ReportDelivery.objects.get_or_create(
            schedule=schedule, period_start=start, requested_by=None, defaults={"period_end": end}
        )
        if delivery.state == ReportDelivery.State.PENDING:
            report_deliver(delivery.pk, now=now)
            tried.append(delivery.pk)
    return tried


def report_send_now(schedule: ReportSchedule, *, user: Any, now: datetime) -> ReportDelivery:
    """The latest complete period, sent at once to the schedule's recipients (the console's button)."""
    start, end = schedule_period(schedule, now)
    delivery = ReportDelivery.objects.create(schedule=schedule, period_start=start, period_end=end, requested_by=user)
    report_deliver(delivery.pk, now=now)
    delivery.refresh_from_db()
    return delivery


def _subject(schedule: ReportSchedule, start: datetime, end: datetime) -> str:
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    first, last = start.astimezone(zone), end.astimezone(zone)
    if schedule.frequency == ReportSchedule.Frequency.DAILY:
        return f"[DLR Console] {schedule.name}: {first:%a %d %b %Y}"
    return f"[DLR Console] {schedule.name}: week of {first:%d %b} to {last:%d %b %Y}"


# A report goes to its recipients, not to whoever pressed "Send now": in the deployment's language.
@in_default_language
def _summary(schedule: ReportSchedule, rows: list[Row], start: datetime, end: datetime) -> str:
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    grouped = schedule.get_group_by_display().lower()
    lines = [
        f"{schedule.name}: messages from {start.astimezone(zone):%Y-%m-%d %H:%M} "
        f"to {end.astimezone(zone):%Y-%m-%d %H:%M} ({schedule.time_zone}), by {grouped}.",
        "",
    ]
    if not rows:
        lines.append("No messages were submitted in this period.")
    messages = sum(row.figures.messages for row in rows)
    delivered = sum(row.figures.delivered for row in rows)
    failed = sum(row.figures.failed for row in rows)
    if messages:
        rate = f"{delivered / (delivered + failed):.1%}" if delivered + failed else "no final status yet"
        lines.append(f"{messages} messages: {delivered} delivered, {failed} failed (delivery rate {rate}).")
        lines.append("")
        for row in rows[:10]:
            f = row.figures
            row_rate = f"{f.delivery_rate:.1%}" if f.delivery_rate is not None else "-"
            reasons = ", ".join(reason.reason.replace("_", " ") for reason in f.reasons[:3]) or "no failures"
            lines.append(f"- {row.group}: {f.messages} messages, {row_rate} delivered; {reasons}")
    lines += ["", "Every figure per group is in the attached CSV."]
    return "\n".join(lines)


def report_deliver(delivery_id: int, *, now: datetime) -> None:
    """Build and send one delivery, unless another run holds it or it is done already."""
    with transaction.atomic():
        delivery = (
            ReportDelivery.objects.select_for_update(skip_locked=True)
            .select_related("schedule")
            .filter(pk=delivery_id, state=ReportDelivery.State.PENDING)
            .first()
        )
        if delivery is None:
            return
        schedule = delivery.schedule
        rows = report_rows(
            start=delivery.period_start, end=delivery.period_end, group_by=schedule.group_by,
            flow=schedule.flow, connection_id=schedule.connection_id,
        )  # fmt: skip
        email = EmailMessage(
            subject=_subject(schedule, delivery.period_start, delivery.period_end)[:200],
            body=_summary(schedule, rows, delivery.period_start, delivery.period_end),
            to=recipient_list(schedule.recipients),
        )
        local_start = delivery.period_start.astimezone(zoneinfo.ZoneInfo(schedule.time_zone))
        email.attach(f"dlr-report-{schedule.pk}-{local_start:%Y-%m-%d}.csv", report_csv(rows), "text/csv")
        delivery.tries += 1
        try:
            email.send()
        except Exception as exc:  # a mail server down or refusing: tried again at the next run
            delivery.last_error = f"not sent: {type(exc).__name__}"[:255]
            if delivery.tries >= MAX_TRIES:
                delivery.state = ReportDelivery.State.FAILED
            logger.warning("report %s not sent (try %s): %s", schedule.pk, delivery.tries, type(exc).__name__)
        else:
            delivery.state, delivery.sent_at, delivery.rows, delivery.last_error = (
                ReportDelivery.State.SENT, now, len(rows), "",
            )  # fmt: skip
        delivery.save(update_fields=["tries", "last_error", "state", "sent_at", "rows"])
