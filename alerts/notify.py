"""Telling channels about alert events: a Notification row per event and channel, written in
the event's transaction (so none is lost or sent for an event rolled back), then sent by the
beat's pass with backoff until the peer takes it or MAX_TRIES are spent. Every try is logged
(NotificationAttempt: when, outcome, status code; never the reply's body)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts.channels.base import ChannelError, Notice
from alerts.channels.registry import get_channel
from alerts.models import METRIC_UNITS, Alert, AlertChannel, AlertEvent, Notification, NotificationAttempt
from dlrconsole.lib.languages import in_default_language
from dlrconsole.lib.tasks import kick

logger = logging.getLogger(__name__)

SEND_TASK = "alerts.tasks.send_notifications"
MAX_TRIES = 8
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=30)
BATCH = 50


def backoff(tries: int) -> timedelta:
    """After the n-th failed try: 30 s, 1 min, 2 min, ... at most 30 min."""
    return min(FIRST_BACKOFF * 2 ** max(tries - 1, 0), MAX_BACKOFF)


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "no figure"
    text = f"{value:.1f}" if unit in ("%", "s") else f"{value:.0f}"
    return f"{text}{' ' if unit == 's' else ''}{unit}"


# Notices go to a team, and the alert's history is everyone's: in the deployment's language
# (LANGUAGE_CODE), whatever the language of the person whose click sent them.
@in_default_language
def alert_summary(alert: Alert) -> str:
    if alert.rule_id is None or alert.value is None:
        return alert.title
    rule = alert.rule
    assert rule is not None
    unit = METRIC_UNITS.get(rule.metric, "")
    return (
        f"{rule.get_metric_display()}: {figure(alert.value, unit)} "
        f"({rule.get_comparison_display()} {figure(float(alert.threshold or 0), unit)}"
        f"{f', {alert.volume} messages' if alert.volume is not None and not rule.is_system else ''})"
    )


def notice_for(alert: Alert, event: str) -> Notice:
    return Notice(
        event=event, alert_id=alert.pk, title=alert.title, severity=alert.severity, summary=alert_summary(alert),
        url=settings.PUBLIC_BASE_URL + reverse("console:alert", args=[alert.pk]),
        at=timezone.now().isoformat(timespec="seconds"),
    )  # fmt: skip


def test_notice() -> Notice:
    return Notice(
        event="test", alert_id=None, title="Test from DLR Console", severity="info",
        summary="This channel is set up: alerts will arrive here.",
        url=settings.PUBLIC_BASE_URL + reverse("console:alerts"), at=timezone.now().isoformat(timespec="seconds"),
    )  # fmt: skip


def notifications_queue(alert: Alert, event: str, channels: Iterable[AlertChannel], *, now: datetime) -> int:
    """In the caller's transaction. A snoozed alert tells nobody until it wakes."""
    if alert.snoozed_until is not None and alert.snoozed_until > now:
        return 0
    made = Notification.objects.bulk_create(
        [Notification(channel=channel, alert=alert, event=event, due_at=now, created_at=now) for channel in channels]
    )
    if made:
        transaction.on_commit(lambda: kick(SEND_TASK))
    return len(made)


def notifications_send_due(*, now: datetime | None = None) -> int:
    """Try every notification due; the number tried. Rows are claimed with SKIP LOCKED, so two
    passes at once never send one twice."""
    tried = 0
    while True:
        with transaction.atomic():
            batch = list(
                Notification.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("channel", "alert", "alert__rule")
                .filter(state=Notification.State.PENDING, due_at__lte=now or timezone.now())
                .order_by("due_at", "id")[:BATCH]
            )
            for notification in batch:
                _try(notification, now=now or timezone.now())
        tried += len(batch)
        if len(batch) < BATCH:
            return tried


def notification_send_test(channel: AlertChannel, *, user: Any, now: datetime | None = None) -> Notification:
    """The console's "Send a test": one try now, kept with the channel's log."""
    now = now or timezone.now()
    notification = Notification.objects.create(
        channel=channel, event=Notification.Event.TEST, due_at=now, created_at=now, requested_by=user
    )
    _try(notification, now=now, retry=False)
    return notification


@in_default_language
def _try(notification: Notification, *, now: datetime, retry: bool = True) -> None:
    channel = notification.channel
    alert = notification.alert
    notice = notice_for(alert, notification.event) if alert is not None else test_notice()
    notification.tries += 1
    started = time.monotonic()
    code: int | None = None
    error = ""
    try:
        code = get_channel(channel.kind, channel.config).send(notice)
        outcome = NotificationAttempt.Outcome.SENT
    except ValueError as exc:  # a configuration that no longer validates
        outcome, error = NotificationAttempt.Outcome.FAILED, f"configuration: {exc}"
    except ChannelError as exc:
        code, error = exc.status_code, exc.reason
        final = exc.permanent or not retry or notification.tries >= MAX_TRIES
        outcome = NotificationAttempt.Outcome.FAILED if final else NotificationAttempt.Outcome.RETRY
    NotificationAttempt.objects.create(
        notification=notification, at=now, outcome=outcome, status_code=code, error=error[:255],
        duration_ms=int((time.monotonic() - started) * 1000),
    )  # fmt: skip
    if outcome == NotificationAttempt.Outcome.SENT:
        notification.state, notification.sent_at = Notification.State.SENT, now
        if alert is not None:
            AlertEvent.objects.create(
                alert=alert, kind=AlertEvent.Kind.NOTIFIED, at=now,
                text=f"{notification.get_event_display()} sent to {channel.name}",
            )  # fmt: skip
    elif outcome == NotificationAttempt.Outcome.FAILED:
        notification.state = Notification.State.FAILED
        logger.warning("alert notification %s to channel %s given up: %s", notification.pk, channel.pk, error)
    else:
        notification.due_at = now + backoff(notification.tries)
    notification.save(update_fields=["tries", "state", "sent_at", "due_at"])
