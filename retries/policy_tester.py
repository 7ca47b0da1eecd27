""" "Which rule applies?": the rule the decision engine would pick for a message (a stored one,
or one described by flow, country, connection, status and reason), with the steps its
escalation would take and when. The matching is the engine's own (retries/decisions.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from receipts.models import Connection, Message
from receipts.reasons import REASONS
from receipts.statuses import FAILURE_STATUSES, NO_RECEIPT, Status
from retries.actions.registry import get_action
from retries.decisions import chain_rule, rule_matches
from retries.escalation import rule_deadline
from retries.models import Rule, Step
from retries.policy_vocabulary import format_duration, wait_words
from retries.rule_cache import rule_cache

# The kinds a planned step is counted under (the dry run's columns).
RETRY, FALLBACK, NOTICE, ALERT, SKIPPED, NOTHING = "retry", "fallback", "notice", "alert", "skipped", "nothing"
KIND_OF_ACTION = {"retry_same": RETRY, "retry_other": RETRY, "fallback": FALLBACK, "notify": NOTICE, "alert": ALERT}


@dataclass(frozen=True)
class PlannedStep:
    kind: str
    text: str
    # Seconds after the previous attempt failed (0: at once), and the earliest time it runs
    # if every attempt fails at once.
    wait: int
    at: datetime | None
    # The step's action, for a send (the dry run prices retries on the same route).
    action: str = ""

    @property
    def when(self) -> str:
        """'+30 s', '+2 min' after the previous attempt failed, or 'at once'."""
        return f"+{wait_words(self.wait)}" if self.wait else "at once"


@dataclass(frozen=True)
class Applied:
    rule: Rule | None
    seen: str
    plan: list[PlannedStep]
    deadline: datetime | None


def seen_status(message: Message) -> str:
    """What the engine decides on for the message: its failure, or no receipt past the SLA."""
    if message.status not in FAILURE_STATUSES and message.no_receipt_at is not None:
        return NO_RECEIPT
    return message.status


def probe_message(*, flow: str, country: str, connection: Connection | None, status: str, reason: str) -> Message:
    """An unsaved message with what the admin described; its class comes from the reason."""
    error_class = REASONS[reason].error_class if reason in REASONS else ""
    return Message(
        flow=flow, country=country, connection=connection, status=status, reason=reason,
        error_class=error_class, submitted_at=timezone.now(), body="(any text)",
    )  # fmt: skip


def first_rule(message: Message, seen: str, rules: list[Rule] | None = None) -> Rule | None:
    """The first rule (of `rules`, by default the enabled ones the engine uses) that matches."""
    for rule in rule_cache.get() if rules is None else rules:
        if rule.enabled and rule_matches(rule, message, seen):
            return rule
    return None


def plan(rule: Rule, message: Message, *, failed_at: datetime) -> list[PlannedStep]:
    """The steps the escalation would take for `message`'s failure at `failed_at`, each attempt
    failing as soon as it is made (the soonest each step can come); skipped steps with why."""
    deadline = rule_deadline(rule, message)
    steps: list[PlannedStep] = []
    at, sends, past_deadline = failed_at, False, False
    for step in rule.step_list():
        action = get_action(step.action)
        label = _step_label(step)
        if not action.attempts:
            steps.append(PlannedStep(KIND_OF_ACTION.get(step.action, NOTHING), label, 0, at))
            continue
        sends = True
        if past_deadline:
            continue
        if why := action.missing_target(step) or action.missing_input(step, message):
            steps.append(PlannedStep(SKIPPED, _("%(step)s: skipped, %(why)s") % {"step": label, "why": why}, 0, None))
            continue
        for number in range(step.count):
            wait = step.delay_before(number)
            at = at + timedelta(seconds=wait)
            if deadline is not None and at > deadline:
                text = _("%(step)s: not sent, past the deadline") % {"step": label}
                steps.append(PlannedStep(SKIPPED, text, wait, None))
                past_deadline = True
                break
            text = _("%(step)s (%(number)s of %(count)s)") % {"step": label, "number": number + 1, "count": step.count}
            steps.append(PlannedStep(KIND_OF_ACTION[step.action], text, wait, at, step.action))
    if sends:
        steps.append(PlannedStep(NOTICE, _("then the product is told the failure is final"), 0, at))
    return steps


def _step_label(step: Step) -> str:
    if step.action == "retry_other":
        if step.target_connection is None:
            return _("retry on no connection chosen")
        return _("retry on %(connection)s") % {"connection": step.target_connection.slug}
    if step.action == "fallback":
        channel = step.fallback_channel
        if channel is None:
            return _("fall back to no channel chosen")
        return _("fall back to %(channel)s (%(kind)s)") % {"channel": channel.slug, "kind": channel.kind}
    if step.action == "retry_same":
        return _("retry on the same route")
    return get_action(step.action).shown_label.lower()


def which_rule(message: Message, *, seen: str | None = None, failed_at: datetime | None = None) -> Applied:
    """As the engine decides (retries/decisions.py): a stored chain stays with the rule already
    escalating for it; otherwise the first enabled rule that matches."""
    seen = seen or seen_status(message)
    root = message.chain_root or message
    rule = (chain_rule(root) if message.pk and seen != Status.DELIVERED else None) or first_rule(message, seen)
    failed_at = failed_at or message.final_at or message.no_receipt_at or timezone.now()
    if rule is None:
        return Applied(None, seen, [], None)
    return Applied(rule, seen, plan(rule, root, failed_at=failed_at), rule_deadline(rule, root))


def describe_conditions(rule: Rule, connection_slugs: dict[int, str]) -> str:
    """A rule's conditions in one line: 'login-otp · FR · temporary'; 'any message' if none."""
    parts = [
        ", ".join(values)
        for values in (
            rule.flows,
            [connection_slugs.get(pk, str(pk)) for pk in sorted(rule.connection_ids())],
            rule.countries,
            rule.statuses,
            rule.error_classes,
            [reason.replace("_", " ") for reason in rule.reasons],
        )
        if values
    ]
    return " · ".join(parts) or _("any message")


def describe_steps(rule: Rule) -> str:
    """A rule's escalation in one line: 'retry on the same route, 2 attempts (30s, 2m) → fall back to
    mail (email) · deadline 5m'."""
    parts = []
    for step in rule.step_list():
        text = _step_label(step)
        if get_action(step.action).attempts:
            if step.count > 1:
                attempts = ngettext("%(count)s attempt", "%(count)s attempts", step.count) % {"count": step.count}
                text = f"{text}, {attempts}"
            if step.delays:
                text = f"{text} ({', '.join(format_duration(int(d)) for d in step.delays)})"
        parts.append(text)
    line = " → ".join(parts) or _("no steps")
    if rule.deadline_seconds:
        line = _("%(steps)s · deadline %(deadline)s") % {
            "steps": line,
            "deadline": format_duration(rule.deadline_seconds),
        }
    return line
