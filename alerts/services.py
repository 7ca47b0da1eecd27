"""The alert lifecycle: raising (a rule about one message, or an alert rule firing), resolving,
acknowledging, commenting and snoozing; every change leaves an AlertEvent."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts import notify
from alerts.channels.base import ChannelError
from alerts.channels.email import EmailChannel
from alerts.channels.registry import get_channel
from alerts.models import Alert, AlertChannel, AlertEvent, AlertRule, Notification, Severity

logger = logging.getLogger(__name__)

MAX_COMMENT = 2000


def alert_raise_for_decision(*, decision: Any, now: datetime) -> Alert:
    """In the decision's transaction: the alert exists iff the decision does. Whoever is on the
    alert list (DLR_ALERT_EMAILS) is mailed after commit, best effort: the alert is kept and shown
    whether or not the mail goes out. Channels that take per-message alerts are notified too."""
    message = decision.message
    title = f"{message.connection.slug} {message.provider_message_id}: {message.status}"
    if message.reason:
        title += f" ({message.reason})"
    alert = Alert.objects.create(
        source=Alert.Source.RULE, title=f"{title} — {decision.why}"[:255], message=message, decision=decision,
        severity=Severity.WARNING, created_at=now,
    )  # fmt: skip
    AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.FIRED, at=now, text=decision.why[:255])
    channels = AlertChannel.objects.filter(enabled=True, per_message_alerts=True)
    notify.notifications_queue(alert, Notification.Event.FIRED, channels, now=now)
    if settings.DLR_ALERT_EMAILS:
        transaction.on_commit(lambda: _mail(alert))
    return alert


def _mail(alert: Alert) -> None:
    try:
        get_channel(EmailChannel.kind, {"to": list(settings.DLR_ALERT_EMAILS)}).send(
            notify.notice_for(alert, Notification.Event.FIRED)
        )
    except ChannelError as exc:  # a mail server down must not lose or fail the decision
        logger.warning("alert %s kept but not mailed: %s", alert.pk, exc.reason)


def alert_fire(*, rule: AlertRule, value: float, volume: int, summary: str, now: datetime) -> Alert:
    """Open the rule's alert (in the evaluation's transaction) and queue its notifications."""
    alert = Alert.objects.create(
        source=Alert.Source.ALERT_RULE, rule=rule, title=rule.name[:255], severity=rule.severity,
        value=value, volume=volume, threshold=rule.threshold, created_at=now,
    )  # fmt: skip
    AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.FIRED, at=now, text=summary)
    notify.notifications_queue(alert, Notification.Event.FIRED, rule.channels.filter(enabled=True), now=now)
    return alert


def alert_resolve(*, alert: Alert, now: datetime, why: str, user: Any = None) -> bool:
    """Resolve once (False if it already was); the channels that heard of the firing hear of it."""
    done = Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(state=Alert.State.RESOLVED, resolved_at=now)
    if not done:
        return False
    AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.RESOLVED, at=now, user=user, text=why[:255])
    told = AlertChannel.objects.filter(
        enabled=True, notifications__alert=alert, notifications__event=Notification.Event.FIRED
    ).distinct()
    notify.notifications_queue(alert, Notification.Event.RESOLVED, told, now=now)
    return True


def alert_acknowledge(*, alert: Alert, user: Any, now: datetime | None = None) -> bool:
    """Acknowledge once; False if it already was."""
    now = now or timezone.now()
    done = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=user
    )
    if done:
        AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.ACKNOWLEDGED, at=now, user=user)
    return bool(done)


def alert_comment(*, alert: Alert, user: Any, text: str, now: datetime | None = None) -> AlertEvent:
    text = text.strip()
    if not text:
        raise ValueError("A comment needs some text.")
    if len(text) > MAX_COMMENT:
        raise ValueError(f"A comment is at most {MAX_COMMENT} characters.")
    return AlertEvent.objects.create(
        alert=alert, kind=AlertEvent.Kind.COMMENTED, at=now or timezone.now(), user=user, text=text
    )


def alert_snooze(*, alert: Alert, user: Any, until: datetime | None, now: datetime | None = None) -> None:
    """Snooze until a time (None: wake it up). A snoozed alert sorts after the others and its
    channels are not notified until then; it still resolves."""
    now = now or timezone.now()
    if until is not None and until <= now:
        raise ValueError("Snooze until a time in the future.")
    Alert.objects.filter(pk=alert.pk).update(snoozed_until=until)
    text = f"until {until.isoformat(timespec='minutes')}" if until else "woken up"
    AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.SNOOZED, at=now, user=user, text=text)
