"""Reads: what the rules decided for a message and the attempts they made, as timeline entries
and as the message's attempt chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils.translation import gettext as _

from receipts.models import Message
from receipts.selectors import TimelineEntry, chain_delivered, chain_messages
from retries.actions.registry import get_action
from retries.models import Attempt, Decision, Rule, Step

Outcome = Attempt.Outcome


def decision_entries(message: Message) -> list[TimelineEntry]:
    """The rules' decisions on this message, and the attempts they scheduled."""
    entries = []
    decisions = Decision.objects.filter(message=message).select_related("rule", "requested_by")
    for decision in decisions.order_by("created_at", "id"):
        entries.append(
            TimelineEntry(
                at=decision.created_at,
                kind="decision",
                summary=_decision_summary(decision),
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
                summary=_("Attempt %(number)s: %(outcome)s")
                % {"number": attempt.number, "outcome": attempt_outcome(attempt)},
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


def _decision_summary(decision: Decision) -> str:
    if decision.action == "notify" and decision.state == Decision.State.RECORDED:
        return _("The product was notified (%(why)s)") % {"why": decision.why}
    return f"{decision.get_action_display()}: {decision.get_state_display().lower()} ({decision.why})"


def attempt_outcome(attempt: Attempt) -> str:
    """What an attempt's own outcome means in words. A succeeded resend only means the provider
    accepted the send call: whether it reached the phone is the resend's own status."""
    if attempt.outcome == Outcome.SUCCEEDED:
        return _("sent on the channel") if attempt.action == "fallback" else _("accepted by the provider")
    words = {
        Outcome.SCHEDULED: _("scheduled"),
        Outcome.RUNNING: _("being sent"),
        Outcome.FAILED: _("could not be sent"),
        Outcome.CANCELLED: _("cancelled"),
    }
    return words.get(Outcome(attempt.outcome), attempt.get_outcome_display())


@dataclass(frozen=True)
class Done:
    """One thing the chain's escalation did, in words, with when."""

    at: datetime
    text: str
    resend: Message | None = None


@dataclass(frozen=True)
class StepLeft:
    step: Step
    label: str
    attempts_left: int  # 0 for a step that sends nothing


@dataclass(frozen=True)
class EscalationState:
    """What the message's chain went through: the rule that took it, what was done (attempts
    with their outcomes, skipped steps with the reason, the product told), what is scheduled
    and when, the steps left, and the deadline."""

    rule: Rule | None
    done: list[Done] = field(default_factory=list)
    scheduled: list[Attempt] = field(default_factory=list)
    left: list[StepLeft] = field(default_factory=list)
    deadline: datetime | None = None
    delivered: bool = False
    product_told_final: bool = False

    @property
    def has_chain(self) -> bool:
        """Something was decided or attempted: the chain, not the catalog's advice, says what next."""
        return self.rule is not None or bool(self.done) or bool(self.scheduled)

    def deadline_passed(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline


def escalation_state(message: Message) -> EscalationState:
    root = message.chain_root or message
    decisions = list(
        Decision.objects.filter(message__in=chain_messages(root.pk).values("pk"))
        .select_related("rule", "step", "requested_by")
        .order_by("created_at", "id")
    )
    attempts = list(
        Attempt.objects.filter(chain_root=root)
        .select_related("connection", "channel", "resend", "step", "decision__requested_by")
        .order_by("number", "id")
    )
    rule = next((d.rule for d in decisions if d.rule is not None and d.step_id is not None), None)
    done = [*_decisions_done(decisions), *_attempts_done(attempts)]
    done.sort(key=lambda item: item.at)
    delivered = chain_delivered(root)
    deadline = None
    if rule is not None and rule.deadline_seconds is not None:
        deadline = root.submitted_at + timedelta(seconds=rule.deadline_seconds)
    return EscalationState(
        rule=rule,
        done=done,
        scheduled=[a for a in attempts if a.outcome in (Outcome.SCHEDULED, Outcome.RUNNING)],
        left=[] if rule is None or delivered else _steps_left(rule, decisions, attempts),
        deadline=deadline,
        delivered=delivered,
        product_told_final=any(
            d.state == Decision.State.SKIPPED and d.skip_reason and Decision.SkipReason(d.skip_reason).tells_product
            for d in decisions
        ),
    )


def _decisions_done(decisions: list[Decision]) -> list[Done]:
    done = []
    for decision in decisions:
        step = ""
        if decision.step is not None:
            step = _("step %(position)s (%(action)s)") % {
                "position": decision.step.position,
                "action": get_action(decision.step.action).shown_label.lower(),
            }
        if decision.state == Decision.State.RECORDED and decision.action == "notify":
            done.append(Done(decision.created_at, _("The product was notified of the failure.")))
        elif decision.state == Decision.State.RECORDED and decision.action == "alert":
            done.append(Done(decision.created_at, _("An alert was raised for the team.")))
        elif decision.state == Decision.State.SKIPPED and decision.skip_reason:
            reason = Decision.SkipReason(decision.skip_reason)
            if reason == Decision.SkipReason.ALREADY_RETRIED:
                continue  # a repeated receipt: nothing happened
            what = (
                _("Skipped %(step)s: %(why)s.") % {"step": step, "why": decision.why}
                if step
                else _("Stopped: %(why)s.") % {"why": decision.why}
            )
            if reason.tells_product:
                what += " " + _("The product was told the failure is final.")
            done.append(Done(decision.created_at, what))
    return done


def _attempts_done(attempts: list[Attempt]) -> list[Done]:
    done = []
    for attempt in attempts:
        if attempt.outcome in (Outcome.SCHEDULED, Outcome.RUNNING):
            continue
        through = attempt.connection or attempt.channel
        text = _("Attempt %(number)s") % {"number": attempt.number}
        if through:
            text += " " + _("through %(through)s") % {"through": through}
        if attempt.decision.requested_by is not None:
            text += ", " + _("asked by %(who)s") % {"who": attempt.decision.requested_by.get_username()}
        text += f": {attempt_outcome(attempt)}"
        if attempt.outcome == Outcome.SUCCEEDED and attempt.resend is not None:
            text += "; " + _("the resend is %(status)s") % {"status": attempt.resend.get_status_display().lower()}
        elif attempt.detail:
            text += f" ({attempt.detail})"
        done.append(Done(attempt.finished_at or attempt.due_at, text + ".", resend=attempt.resend))
    return done


def _steps_left(rule: Rule, decisions: list[Decision], attempts: list[Attempt]) -> list[StepLeft]:
    """The rule's steps the chain has not spent, as the escalation counts them
    (retries/escalation.py): a failed attempt or a skip for a missing target, input or the
    deadline spends a step; a step that sends nothing is spent once taken."""
    spent = {a.step_id for a in attempts if a.outcome == Outcome.FAILED and a.step_id}
    spending = (Decision.SkipReason.NO_TARGET, Decision.SkipReason.MISSING_INPUT, Decision.SkipReason.DEADLINE)
    for decision in decisions:
        if decision.step_id and (
            decision.state == Decision.State.RECORDED
            or (decision.state == Decision.State.SKIPPED and decision.skip_reason in spending)
        ):
            spent.add(decision.step_id)
    used: dict[int, int] = {}
    for attempt in attempts:
        if attempt.step_id and attempt.outcome != Outcome.CANCELLED:
            used[attempt.step_id] = used.get(attempt.step_id, 0) + 1
    left = []
    for step in rule.steps.select_related("target_connection", "fallback_channel"):
        action = get_action(step.action)
        if step.pk in spent:
            continue
        remaining = step.count - used.get(step.pk, 0) if action.attempts else 0
        if action.attempts and remaining <= 0:
            continue
        label = action.shown_label
        if target := step.target_connection or step.fallback_channel:
            label += f" ({target})"
        left.append(StepLeft(step=step, label=label, attempts_left=remaining))
    return left


@dataclass(frozen=True)
class RuleDeletion:
    """What deleting a rule changes, for the editor's confirmation page."""

    decisions: int  # taken by the rule; they stay on their messages' timelines
    pending_attempts: int  # scheduled or running: fixed when scheduled, they still run
    pending_chains: int  # messages whose chain has such an attempt


def rule_deletion(rule: Rule) -> RuleDeletion:
    pending = Attempt.objects.filter(
        Q(step__rule=rule) | Q(decision__rule=rule), outcome__in=[Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING]
    )
    return RuleDeletion(
        decisions=Decision.objects.filter(rule=rule).count(),
        pending_attempts=pending.count(),
        pending_chains=pending.values("chain_root").distinct().count(),
    )
