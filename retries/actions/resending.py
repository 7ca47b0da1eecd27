"""What both SMS retries share: resend the original's text to the original's number through a
connection's send API, and register the resend as a new message of the chain, whose receipts
then take the normal path."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext, gettext_noop

from receipts.models import Message
from receipts.phones import PhoneNumber
from receipts.services import MessageRegistration, RegistrationConflict, messages_register
from retries.actions.base import Action, NotSendable, Plan, build_sender

if TYPE_CHECKING:
    from retries.models import Attempt, Step
    from retries.senders.base import SendResult

NO_TEXT = gettext_noop("no message text is kept for this message (not registered, or erased)")


class Resend(Action):
    attempts: ClassVar[bool] = True
    holdable = True

    def missing_input(self, step: Step, root: Message) -> str:
        return "" if root.body else gettext(NO_TEXT)

    def plan(self, attempt: Attempt) -> Plan:
        root, connection = attempt.chain_root, attempt.connection
        if connection is None:
            raise NotSendable("no connection to resend through")
        try:
            configured = connection.sender
        except ObjectDoesNotExist:
            configured = None
        if configured is None or not configured.enabled:
            raise NotSendable(f"connection {connection.slug} has no send API configured")
        if not root.body:
            raise NotSendable(NO_TEXT)
        callback = connection.public_url or f"{settings.PUBLIC_BASE_URL}{connection.webhook_path()}"
        return Plan(build_sender(configured), root.recipient, root.body, configured.sender_id, callback)

    def sent(self, attempt: Attempt, result: SendResult, *, now: datetime) -> tuple[str, Message | None]:
        return self.sent_together([(attempt, result, now)])[0]

    def sent_together(self, sends: Sequence[tuple[Attempt, SendResult, datetime]]) -> list[tuple[str, Message | None]]:
        # Every resend joins its chain as a new message: registered together, one statement each.
        registered = messages_register([_resend_registration(attempt, result, now) for attempt, result, now in sends])
        outcomes: list[tuple[str, Message | None]] = []
        for (_attempt, result, _now), registration in zip(sends, registered, strict=True):
            if isinstance(registration, RegistrationConflict):
                # The provider gave an id we know for another message: record the send, but do
                # not attach that message's receipts to this chain.
                outcomes.append(
                    (f"sent as {result.provider_message_id[:64]}, an id already registered for another message", None)
                )
            else:
                resend, _created = registration
                outcomes.append((f"resent as message {resend.pk}", resend))
        return outcomes


def _resend_registration(attempt: Attempt, result: SendResult, now: datetime) -> MessageRegistration:
    root = attempt.chain_root
    assert attempt.connection is not None
    return MessageRegistration(
        connection=attempt.connection, provider_message_id=result.provider_message_id,
        recipient=PhoneNumber(root.recipient, root.country), flow=root.flow,
        client_reference=root.client_reference, submitted_at=now, chain_root=root,
    )  # fmt: skip
