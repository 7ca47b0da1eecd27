"""Reads: what the rules decided for a message and the attempts they made, as timeline entries
and as the message's attempt chain."""

from __future__ import annotations

from dataclasses import dataclass

from receipts.models import Message
from receipts.selectors import TimelineEntry
from retries.models import Attempt, Decision


def decision_entries(message: Message) -> list[TimelineEntry]:
    """The rules' decisions on this message, and the attempts they scheduled."""
    entries = []
    decisions = Decision.objects.filter(message=message).select_related("rule", "requested_by")
    for decision in decisions.order_by("created_at", "id"):
        entries.append(
            TimelineEntry(
                at=decision.created_at,
                kind="decision",
                summary=f"{decision.get_action_display()}: {decision.get_state_display()} ({decision.why})",
                detail={
                    "decision_id": decision.pk,
                    "action": decision.action,
                    "state": decision.state,
                    "why": decision.why,
                    "rule": decision.rule.name if decision.rule else None,
                    "requested_by": decision.requested_by.get_username() if decision.requested_by else None,
                },
            )
        )
    attempts = Attempt.objects.filter(decision__message=message).select_related("connection", "channel")
    for attempt in attempts.order_by("due_at", "id"):
        entries.append(
            TimelineEntry(
                at=attempt.finished_at or attempt.due_at,
                kind="attempt",
                summary=f"Attempt {attempt.number}: {attempt.get_outcome_display()}",
                detail={
                    "attempt_id": attempt.pk,
                    "number": attempt.number,
                    "outcome": attempt.outcome,
                    "action": attempt.action,
                    "through": str(attempt.connection or attempt.channel or ""),
                    "due_at": attempt.due_at,
                    "tries": attempt.tries,
                    "detail": attempt.detail,
                    "response_summary": attempt.response_summary,
                    "duration_ms": attempt.duration_ms,
                    "idempotency_key": attempt.idempotency_key,
                    "resend_message_id": attempt.resend_id,
                },
            )
        )
    return entries


@dataclass(frozen=True)
class AttemptChain:
    """An original message, its resends and the attempts that made them."""

    root: Message
    messages: list[Message]
    attempts: list[Attempt]

    @property
    def is_single(self) -> bool:
        return len(self.messages) == 1 and not self.attempts


def message_chain(message: Message) -> AttemptChain:
    root = message.chain_root or message
    resends = list(root.resends.select_related("connection").order_by("submitted_at", "id"))
    attempts = list(
        Attempt.objects.filter(chain_root=root)
        .select_related("decision", "decision__requested_by", "connection", "channel")
        .order_by("number", "id")
    )
    return AttemptChain(root=root, messages=[root, *resends], attempts=attempts)
