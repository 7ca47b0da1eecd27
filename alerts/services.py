"""Raising and acknowledging alerts."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.channels.base import ChannelError
from alerts.channels.email import EmailChannel
from alerts.channels.registry import get_channel
from alerts.models import Alert

logger = logging.getLogger(__name__)


def alert_raise_for_decision(*, decision: Any, now: datetime) -> Alert:
    """In the decision's transaction: the alert exists iff the decision does. Whoever is on the
    alert list (DLR_ALERT_EMAILS) is mailed after commit, best effort: the alert is kept and shown
    whether or not the mail goes out."""
    message = decision.message
    title = f"{message.connection.slug} {message.provider_message_id}: {message.status}"
    if message.reason:
        title += f" ({message.reason})"
    alert = Alert.objects.create(
        source=Alert.Source.RULE, title=f"{title} — {decision.why}"[:255], message=message, decision=decision,
        created_at=now,
    )  # fmt: skip
    if settings.DLR_ALERT_EMAILS:
        transaction.on_commit(lambda: _mail(alert))
    return alert


def _mail(alert: Alert) -> None:
    try:
        get_channel(EmailChannel.kind, {"to": list(settings.DLR_ALERT_EMAILS)}).send(alert)
    except ChannelError as exc:  # a mail server down must not lose or fail the decision
        logger.warning("alert %s kept but not mailed: %s", alert.pk, exc.reason)


def alert_acknowledge(*, alert: Alert, user: Any, now: datetime | None = None) -> bool:
    """Acknowledge once; False if it already was."""
    return bool(
        Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now or timezone.now(), acknowledged_by=user
        )
    )
