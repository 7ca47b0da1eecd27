"""The decision-action contract: what a step of a rule does when the escalation reaches it,
and, for actions that send something again, what an attempt sends and what its success means.

`retries/escalation.py` holds the flow every action shares (the rule's steps in order, each
step's attempts and waits, the deadline, telling the product when the escalation runs out); an
action says only what is its own. A new action is one module with a subclass, plus its line in
`registry.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext

from retries.senders.base import Sender

# Actions are handed the records they act on and never import the models (which take their
# choices from the registry): these imports are for the type checker only.
if TYPE_CHECKING:
    from receipts.models import Message
    from retries.models import Attempt, ConnectionSender, Decision, FallbackChannel, Step
    from retries.senders.base import SendResult


class NotSendable(Exception):
    """Nothing to send with: a missing configuration, text or address. Permanent."""


@dataclass(frozen=True)
class Plan:
    sender: Sender
    to: str
    body: str
    sender_id: str
    status_callback_url: str = ""


def build_sender(configured: ConnectionSender | FallbackChannel) -> Sender:
    try:
        return configured.build()
    except ValueError as exc:
        raise NotSendable(f"the send configuration is invalid: {exc}") from None


class Action:
    slug: ClassVar[str]
    label: ClassVar[str]  # in English, marked with gettext_noop; `shown_label` reads it translated
    # Sends something again through an Attempt (retries/attempts.py runs it): such actions are
    # counted against their step's count, delayed by its waits and bounded by the rule's deadline.
    attempts: ClassVar[bool] = False
    # Its decision's rows may be held and written with the batch's (retries/decisions.py): it
    # writes nothing of its own that needs the decision's id, only an attempt (when `attempts`)
    # or what the product is told (retries/notifications.py). An action contributed by another
    # app, writing its own records, leaves it False and its events are written one by one.
    holdable: ClassVar[bool] = False

    @property
    def shown_label(self) -> str:
        """The label in the reader's language (the stored records, e.g. a decision's why, keep the English)."""
        return gettext(self.label)

    def missing_target(self, step: Step) -> str:
        """Why `step` cannot run this action (its target is not configured), or ""."""
        return ""

    def missing_input(self, step: Step, root: Message) -> str:
        """Why this action cannot run for the chain of `root` (the product registered no text to
        resend, no address to fall back to), or "": the escalation then skips the step."""
        return ""

    def attempt_through(self, step: Step, message: Message) -> dict[str, int | None]:
        """Where an attempt scheduled for `message` sends: fixed when it is scheduled, so that
        editing the rule later does not change an attempt already promised."""
        return {}

    def decided(self, decision: Decision, *, message: Message, seen: str, now: datetime) -> None:
        """After a decision that schedules nothing was recorded, in its transaction."""

    def plan(self, attempt: Attempt) -> Plan:
        """What an attempt sends, to whom, through which sender; NotSendable says why not."""
        raise NotSendable(f"the {self.slug} action sends nothing")

    def sent(self, attempt: Attempt, result: SendResult, *, now: datetime) -> tuple[str, Message | None]:
        """What a successful send means, in the transaction recording it: the attempt's detail,
        and the message it created, if any."""
        return "sent", None

    def sent_together(self, sends: Sequence[tuple[Attempt, SendResult, datetime]]) -> list[tuple[str, Message | None]]:
        """`sent` for several of this action's attempts recorded in one transaction, in order;
        an action that can write them set-based says so here."""
        return [self.sent(attempt, result, now=now) for attempt, result, now in sends]
