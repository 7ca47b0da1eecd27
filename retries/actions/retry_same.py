"""Retry on the same connection: the message's own route, with the step's waits. For a
temporary failure (a phone off, a full inbox, a congested route)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_noop

from retries.actions.resending import Resend

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Step


class RetrySame(Resend):
    slug = "retry_same"
    label = gettext_noop("Retry on the same connection")

    def attempt_through(self, step: Step, message: Message) -> dict[str, int | None]:
        return {"connection_id": message.connection_id}
