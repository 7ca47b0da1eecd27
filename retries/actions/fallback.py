"""Send through a fallback channel (the step's target): e-mail to the address the product
registered, or a signed webhook the product turns into a voice call or an app push."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from retries.actions.base import Action, NotSendable, Plan, build_sender
from retries.notifications import notify_fallback_sent

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Attempt, Step
    from retries.senders.base import SendResult


class Fallback(Action):
    slug = "fallback"
    label = gettext_noop("Send through a fallback channel")
    attempts: ClassVar[bool] = True
    holdable = True

    def missing_target(self, step: Step) -> str:
        return "" if step.fallback_channel_id else _("no fallback channel configured on the step")

    def missing_input(self, step: Step, root: Message) -> str:
        channel = step.fallback_channel
        if channel is not None and channel.kind == "email" and not root.fallback_email:
            return _("no fallback e-mail address was registered for the %(channel)s channel") % {
                "channel": channel.slug
            }
        return ""

    def attempt_through(self, step: Step, message: Message) -> dict[str, int | None]:
        return {"channel_id": step.fallback_channel_id}

    def plan(self, attempt: Attempt) -> Plan:
        root, channel = attempt.chain_root, attempt.channel
        if channel is None or not channel.enabled:
            raise NotSendable("the fallback channel is missing or disabled")
        to = root.fallback_email if channel.kind == "email" else root.recipient
        if not to:
            raise NotSendable(f"no fallback e-mail address was registered for the {channel.slug} channel")
        return Plan(build_sender(channel), to, root.body, channel.sender_id)

    def sent(self, attempt: Attempt, result: SendResult, *, now: datetime) -> tuple[str, Message | None]:
        notify_fallback_sent(attempt, attempt.decision.message)
        return "sent", None
