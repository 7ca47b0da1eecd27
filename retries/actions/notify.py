"""Tell the product: a delivery, a missing receipt, or a failure that is final (never retried),
each at most once per message (retries/notifications.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.utils.translation import gettext_noop

from receipts.statuses import FAILURE_STATUSES, NO_RECEIPT, Status
from retries.actions.base import Action
from retries.notifications import Event, notify_failure_final, notify_once

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Decision


class Notify(Action):
    slug = "notify"
    label = gettext_noop("Notify the product")
    holdable = True

    def decided(self, decision: Decision, *, message: Message, seen: str, now: datetime) -> None:
        if seen == Status.DELIVERED:
            notify_once(message, Event.DELIVERED, locked=True)
        elif seen == NO_RECEIPT:
            notify_once(message, Event.NO_RECEIPT, locked=True)
        elif seen in FAILURE_STATUSES:
            notify_failure_final(message, decision.why, locked=True)
