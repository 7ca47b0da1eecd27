"""A rule's escalation: its steps, taken in order for a message's chain (the original and its
resends) as failures come in.

What moves an escalation (a trigger) is a failure or missing receipt of a message of the chain,
or the end of an attempt that has no receipts of its own (a fallback sent, a send that failed
for good). Each trigger moves it once, however often it is processed:

- steps that send nothing (tell the product, raise an alert, nothing) are taken at once, each
  once per chain, and the escalation goes on to the next step;
- a step that sends (retry on the same or another connection, fall back) schedules its next
  attempt after its wait, and the escalation stops there until that attempt's outcome is known;
  after `count` attempts the step is spent and the next trigger moves on;
- a step that cannot run for this chain (no target configured, no text or fallback address
  registered) is skipped with the reason on the timeline, and the next one is tried;
- past the rule's deadline nothing more is sent; when the sending steps are spent, the product
  is told the failure is final.

Everything a trigger records is written in the caller's transaction, with the chain's original
message locked (retries/decisions.py, retries/attempts.py), so two triggers of one chain never
count the same attempts or take the same step twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from dlrconsole.lib.deferred_inserts import deferred_inserts, insert
from dlrconsole.lib.tasks import kick
from receipts.models import Message, OutboxEvent
from receipts.selectors import chain_delivered, chain_messages
from receipts.statuses import Status
from retries.actions.base import Action
from retries.actions.registry import get_action
from retries.models import Attempt, Decision, Rule, Step
from retries.notifications import notify_failure_final, notify_retry_scheduled

# The attempt runner (retries/tasks.py), kicked when an attempt is due at once.
RUN_DUE_ATTEMPTS = "retries.tasks.run_due_attempts"
Skip = Decision.SkipReason
# Skips that spend their step for the chain: the next trigger does not try it again.
SPENDING_SKIPS = (Skip.NO_TARGET, Skip.MISSING_INPUT, Skip.DEADLINE)


@dataclass(frozen=True)
class Trigger:
    """What moves the escalation: `message`'s status `seen` (or no receipt), from an outbox event,
    or the end of an attempt."""

    message: Message
    root: Message
    seen: str
    outbox_event: OutboxEvent | None = None
    after_attempt: Attempt | None = None
    # The attempt reached the recipient another way (a fallback sent): an escalation that ends
    # there has not failed the user, and the product is not told it did.
    reached: bool = False
    # The message is its chain's original and the chain has no resends, decisions or attempts
    # yet (retries/decisions.py read it for a batch, under the lock): nothing to read about it.
    fresh_chain: bool = False

    @property
    def key(self) -> str:
        """The idempotency key of the attempt this trigger schedules, if any: one per failed
        message (the resend, and the provider, dedupe on it), one per ended attempt."""
        if self.after_attempt is not None:
            return f"after-attempt-{self.after_attempt.pk}"
        return f"retry-of-message-{self.message.pk}"


def escalate(trigger: Trigger, rule: Rule | None, *, now: datetime) -> list[Decision]:
    """Move `rule`'s escalation for the trigger's chain; the decisions recorded (one at least)."""
    if rule is None:
        return [_record(trigger, None, None, Decision.State.RECORDED, why=f"no rule matches {trigger.seen}", now=now)]
    if trigger.seen != Status.DELIVERED and _chain_delivered(trigger):
        return [_skip(trigger, rule, None, Skip.CHAIN_DELIVERED, "the chain was already delivered", now=now)]
    if _moved_before(trigger, rule):
        # A message's failure moves its chain once: a stronger final after a weaker one, or the
        # same status again, must not send another copy or take another step.
        return [_skip(trigger, rule, None, Skip.ALREADY_RETRIED, "this message was already acted on", now=now)]
    return _take_steps(trigger, rule, now=now)


def _take_steps(trigger: Trigger, rule: Rule, *, now: datetime) -> list[Decision]:
    steps = rule.step_list()
    spent, taken = (set(), set()) if trigger.fresh_chain else _steps_done(trigger.root, rule)
    made = Counter[int]() if trigger.fresh_chain else _attempts_by_step(trigger.root, rule)
    deadline = rule_deadline(rule, trigger.root)
    decisions: list[Decision] = []
    past_deadline = scheduled = False
    for step in steps:
        action = get_action(step.action)
        if step.pk in spent:
            continue
        if not action.attempts:
            if step.pk not in taken:
                decisions.append(_take(trigger, rule, step, action, now=now))
            continue
        used = made[step.pk]
        if used >= step.count or past_deadline:
            continue
        if why := action.missing_target(step):
            decisions.append(_skip(trigger, rule, step, Skip.NO_TARGET, why, now=now))
            continue
        if why := action.missing_input(step, trigger.root):
            decisions.append(_skip(trigger, rule, step, Skip.MISSING_INPUT, why, now=now))
            continue
        due = now + timedelta(seconds=step.delay_before(used))
        if deadline is not None and due > deadline:
            why = f"past the {rule.deadline_seconds} s deadline: nothing more is sent"
            decisions.append(_skip(trigger, rule, step, Skip.DEADLINE, why, now=now))
            past_deadline = True
            continue
        decisions.append(_schedule(trigger, rule, step, action, due=due, deadline=deadline, now=now))
        scheduled = True
        break
    sends = any(get_action(step.action).attempts for step in steps)
    failed = trigger.seen != Status.DELIVERED
    told = any(d.action == "notify" and d.state == Decision.State.RECORDED for d in decisions)
    if sends and failed and not scheduled and not past_deadline and not told and not trigger.reached:
        why = f"every step of rule “{rule.name}” was taken"
        decisions.append(_skip(trigger, rule, None, Skip.MAX_ATTEMPTS, why, now=now))
    if not decisions:
        why = f"rule “{rule.name}”: nothing left to do"
        decisions.append(_record(trigger, rule, None, Decision.State.RECORDED, why=why, now=now))
    return decisions


def _steps_done(root: Message, rule: Rule) -> tuple[set[int], set[int]]:
    """The chain's steps of `rule` spent (skipped, or an attempt of theirs failed for good:
    sending the same again through the same route would fail the same way), and the steps taken
    that send nothing."""
    spent = set(
        Attempt.objects.filter(chain_root=root, step__rule=rule, outcome=Attempt.Outcome.FAILED).values_list(
            "step_id", flat=True
        )
    )
    taken: set[int] = set()
    rows = Decision.objects.filter(message__in=chain_messages(root.pk).values("pk"), step__rule=rule).values_list(
        "step_id", "state", "skip_reason"
    )
    for step_id, state, skip_reason in rows:
        if state == Decision.State.SKIPPED and skip_reason in SPENDING_SKIPS:
            spent.add(step_id)
        elif state == Decision.State.RECORDED:
            taken.add(step_id)
    return spent, taken


def _attempts_by_step(root: Message, rule: Rule) -> Counter[int]:
    """Attempts the chain made in each step of `rule` (cancelled ones gave nothing)."""
    attempts = (
        Attempt.objects.filter(chain_root=root, step__rule=rule)
        .exclude(outcome=Attempt.Outcome.CANCELLED)
        .values_list("step_id", flat=True)
    )
    return Counter(attempts)


def _chain_delivered(trigger: Trigger) -> bool:
    if trigger.fresh_chain:
        return trigger.root.status == Status.DELIVERED  # read under its lock
    return chain_delivered(trigger.root)


def _moved_before(trigger: Trigger, rule: Rule) -> bool:
    if trigger.fresh_chain:
        return False
    if trigger.after_attempt is not None:
        return Decision.objects.filter(after_attempt=trigger.after_attempt).exists()
    earlier = Decision.objects.filter(message=trigger.message, rule=rule, step__isnull=False)
    if trigger.outbox_event is not None:
        earlier = earlier.exclude(outbox_event=trigger.outbox_event)
    return earlier.exists()


def rule_deadline(rule: Rule, root: Message) -> datetime | None:
    """After this nothing more is sent (an OTP after 5 minutes), measured from the original."""
    if rule.deadline_seconds is None:
        return None
    return root.submitted_at + timedelta(seconds=rule.deadline_seconds)


def _record(
    trigger: Trigger,
    rule: Rule | None,
    step: Step | None,
    state: str,
    *,
    why: str,
    now: datetime,
    action: str = "",
    skip_reason: str = "",
) -> Decision:
    return insert(
        Decision, message=trigger.message, outbox_event=trigger.outbox_event, after_attempt=trigger.after_attempt,
        rule=rule, step=step, action=action or (step.action if step else "none"), state=state,
        skip_reason=skip_reason, why=why[:255], created_at=now,
    )  # fmt: skip


def _take(trigger: Trigger, rule: Rule, step: Step, action: Action, *, now: datetime) -> Decision:
    why = f"rule “{rule.name}”, step {step.position}: {action.label.lower()}"
    decision = _record(trigger, rule, step, Decision.State.RECORDED, why=why, now=now)
    action.decided(decision, message=trigger.message, seen=trigger.seen, now=now)
    return decision


def _skip(trigger: Trigger, rule: Rule, step: Step | None, reason: str, why: str, *, now: datetime) -> Decision:
    decision = _record(trigger, rule, step, Decision.State.SKIPPED, why=why, now=now, skip_reason=reason)
    if Skip(reason).tells_product:
        # A retry was wanted and cannot happen: the failure stands, and the product must know.
        notify_failure_final(trigger.message, why, locked=True)
    return decision


def _schedule(
    trigger: Trigger, rule: Rule, step: Step, action: Action, *, due: datetime, deadline: datetime | None, now: datetime
) -> Decision:
    fresh = trigger.fresh_chain
    used = 0 if fresh else _attempts_by_step(trigger.root, rule)[step.pk]
    why = f"rule “{rule.name}”, step {step.position}: attempt {used + 1} of {step.count}"
    decision = _record(trigger, rule, step, Decision.State.SCHEDULED, why=why, now=now)
    fields = dict(
        decision=decision, step=step, chain_root=trigger.root,
        number=1 if fresh else attempts_made(trigger.root) + 1,
        idempotency_key=trigger.key, due_at=due, action=step.action, deadline_at=deadline,
        **action.attempt_through(step, trigger.message),
    )  # fmt: skip
    if deferred_inserts() is not None:
        # Held for the batch's writes: a fresh chain, under its lock, has no attempt to race
        # with; a clash at the flush makes the batch run again event by event, through here.
        attempt = insert(Attempt, **fields)
    else:
        try:
            # The unique key settles two triggers racing for the same message (two failure
            # receipts processed at once by two workers): one attempt, not two.
            with transaction.atomic():
                attempt = Attempt.objects.create(**fields)
        except IntegrityError:
            decision.state, decision.skip_reason = Decision.State.SKIPPED, Skip.ALREADY_RETRIED
            decision.why = "this message was already acted on"
            decision.save(update_fields=["state", "skip_reason", "why"])
            return decision
    notify_retry_scheduled(attempt, trigger.message)
    if attempt.due_at <= now:
        transaction.on_commit(lambda: kick(RUN_DUE_ATTEMPTS))
    return decision


def attempts_made(root: Message) -> int:
    """Attempts the chain has used, by any rule or person (cancelled ones gave nothing)."""
    return Attempt.objects.filter(chain_root=root).exclude(outcome=Attempt.Outcome.CANCELLED).count()
