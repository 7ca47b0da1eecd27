"""The `alert` decision action, which alerts contributes to the rules (retries/actions/):
raise one support alert per decision, in the decision's transaction."""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext_noop

from alerts.services import alert_raise_for_decision
from receipts.models import Message
from retries.actions.base import Action
from retries.models import Decision


class RaiseAlert(Action):
    slug = "alert"
    label = gettext_noop("Raise a support alert")

    def decided(self, decision: Decision, *, message: Message, seen: str, now: datetime) -> None:
        alert_raise_for_decision(decision=decision, now=now)
