"""Retry on the same connection: the message's own route, with the rule's backoff. For a
temporary failure (a phone off, a full inbox, a congested route)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retries.actions.resending import Resend

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Rule


class RetrySame(Resend):
    slug = "retry_same"
    label = "Retry on the same connection"

    def attempt_through(self, rule: Rule, message: Message) -> dict[str, int | None]:
        return {"connection_id": message.connection_id}
