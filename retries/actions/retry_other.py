"""Retry on another connection (the rule's target): for a failure of the route rather than of
the number (a destination the route cannot reach, a carrier that refused it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retries.actions.resending import Resend

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Rule


class RetryOther(Resend):
    slug = "retry_other"
    label = "Retry on another connection"

    def missing_target(self, rule: Rule) -> str:
        return "" if rule.target_connection_id else "no other connection configured on the rule"

    def attempt_through(self, rule: Rule, message: Message) -> dict[str, int | None]:
        return {"connection_id": rule.target_connection_id}
