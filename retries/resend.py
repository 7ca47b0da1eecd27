"""A resend asked for by a person (support, from the console) rather than decided by a rule.

It is an ordinary attempt with a decision that names who asked, so it runs, cancels and shows
on the timeline like any retry. The form's one-time key makes it idempotent: a double-clicked
confirmation resends once.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dlrconsole.lib.tasks import kick
from receipts import store
from receipts.errors import describe_reason
from receipts.models import Message
from receipts.reasons import RetryAdvice
from receipts.selectors import chain_delivered
from retries.actions.retry_same import RetrySame
from retries.decisions import RUN_DUE_ATTEMPTS, attempts_made
from retries.models import Attempt, ConnectionSender, Decision
from retries.notifications import notify_retry_scheduled


class ResendRefused(Exception):
    """Why this message cannot be resent now; shown to the person who asked."""


MAX_REASON_CHARS = 500


def resend_against_advice(message: Message) -> bool:
    """The error catalog says this failure is never retried (an unknown number, an opt-out): a
    resend fails the same way or goes where it must not, so a person resending it says why."""
    return describe_reason(message.reason, message.error_class)["retry_advice"] == RetryAdvice.NEVER


def resend_request(*, message: Message, user: Any, request_key: str = "", reason: str = "") -> Attempt:
    """Schedule a resend of `message` now, through its own connection; idempotent by
    `request_key` (a fresh one per confirmation form). A failure the catalog says never to
    retry needs the person's `reason`, kept on the decision. Raises ResendRefused."""
    reason = " ".join(reason.split())[:MAX_REASON_CHARS]
    key = f"manual-{message.pk}-{request_key or uuid.uuid4().hex}"[:64]
    now = timezone.now()
    with transaction.atomic():
        root = message.chain_root or message
        store.message_lock(root.pk)
        if (existing := Attempt.objects.filter(idempotency_key=key).first()) is not None:
            return existing
        resend_refusal(message)
        if resend_against_advice(message) and not reason:
            raise ResendRefused(_("the error catalog says never to retry this failure: give a reason to resend it"))
        asked = f"resend requested by {user.get_username() or 'an API client'}"
        decision = Decision.objects.create(
            message=message, outbox_event=None, requested_by=user if user.is_authenticated else None,
            action=RetrySame.slug, state=Decision.State.SCHEDULED, created_at=now,
            why=(f"{asked} against the catalog's advice: {reason}" if reason else asked)[:255],
        )  # fmt: skip
        made = attempts_made(root)
        try:
            with transaction.atomic():
                attempt = Attempt.objects.create(
                    decision=decision, chain_root=root, number=made + 1, idempotency_key=key, due_at=now,
                    action=RetrySame.slug, connection=message.connection,
                )  # fmt: skip
        except IntegrityError:
            raise ResendRefused(_("this resend was already requested")) from None
        notify_retry_scheduled(attempt, message)
        transaction.on_commit(lambda: kick(RUN_DUE_ATTEMPTS))
    return attempt


def resend_refusal(message: Message) -> None:
    """Raise ResendRefused if `message` cannot be resent now (the console shows the reason
    before asking for confirmation)."""
    root = message.chain_root or message
    if chain_delivered(root):
        raise ResendRefused(_("this message's chain was already delivered: the recipient has it"))
    if Attempt.objects.filter(
        chain_root=root, outcome__in=(Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING)
    ).exists():
        raise ResendRefused(_("a resend of this message is already scheduled or running"))
    if not root.body:
        raise ResendRefused(_("no message text is kept for this message (not registered, or erased)"))
    if not ConnectionSender.objects.filter(connection_id=message.connection_id, enabled=True).exists():
        raise ResendRefused(_("connection %(slug)s has no send API configured") % {"slug": message.connection.slug})
