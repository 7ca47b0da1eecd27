"""Retry on another connection (the step's target): for a failure of the route rather than of
the number (a destination the route cannot reach, a carrier that refused it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from retries.actions.resending import Resend

if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Step


class RetryOther(Resend):
    slug = "retry_other"
    label = gettext_noop("Retry on another connection")

    def missing_target(self, step: Step) -> str:
        return "" if step.target_connection_id else _("no other connection configured on the step")

    def attempt_through(self, step: Step, message: Message) -> dict[str, int | None]:
        return {"connection_id": step.target_connection_id}
