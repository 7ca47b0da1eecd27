"""From an outbox event to a decision: the first matching rule decides, once per event, and its
action (retries/actions/) says what that means.

A retry or fallback is scheduled as an Attempt with a due time in the database (never a broker
countdown). A `delivered` status anywhere in a message's attempt chain cancels the chain's
scheduled attempts (no double OTP).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dlrconsole.lib.tasks import kick
from receipts.models import Message, OutboxEvent
from receipts.statuses import NO_RECEIPT, Status
from retries.actions.base import Action
from retries.actions.registry import get_action
from retries.models import Attempt, Decision, Rule
from retries.notifications import notify_failure_final, notify_retry_scheduled
from retries.rule_cache import rule_cache

# The attempt runner (retries/tasks.py), kicked when an attempt is due at once.
RUN_DUE_ATTEMPTS = "retries.tasks.run_due_attempts"
Skip = Decision.SkipReason


def decide(event: OutboxEvent, *, now: datetime | None = None) -> Decision:
    """Decide for `event`, inside the caller's transaction (the outbox claim's)."""
    now = now or timezone.now()
    # Locked: two events of one message decided at once by two workers would both count the
    # chain's attempts and both tell the product.
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("chain_root", "connection")
        .get(pk=event.message_id)
    )
    root = message.chain_root or message
    seen = NO_RECEIPT if event.kind == OutboxEvent.Kind.NO_RECEIPT else event.status
    if seen == Status.DELIVERED:
        cancel_chain(root, now=now, why=f"message {message.pk} was delivered")
    rule = first_matching_rule(message, seen)
    action = get_action(rule.action if rule else "none")
    decision = Decision(message=message, outbox_event=event, rule=rule, action=action.slug, created_at=now)
    made = attempts_made(root) if action.attempts else 0
    if rule is None:
        decision.state, decision.why = Decision.State.RECORDED, f"no rule matches {seen}"
    elif action.attempts:
        decision.state, decision.skip_reason, decision.why = _schedule_state(rule, action, message, root, made, now)
    else:
        decision.state, decision.why = Decision.State.RECORDED, f"rule “{rule.name}”"
    decision.save()
    if decision.state == Decision.State.SCHEDULED:
        assert rule is not None
        attempt = _schedule_attempt(decision, rule, action, message, root, made, now)
        if attempt is not None:
            notify_retry_scheduled(attempt, message)
    elif decision.state == Decision.State.SKIPPED:
        if Skip(decision.skip_reason).tells_product:
            notify_failure_final(message, decision.why, locked=True)
    else:
        action.decided(decision, message=message, seen=seen, now=now)
    return decision


def first_matching_rule(message: Message, seen: str) -> Rule | None:
    for rule in rule_cache.get():
        if rule_matches(rule, message, seen):
            return rule
    return None


def rule_matches(rule: Rule, message: Message, seen: str) -> bool:
    """Every non-empty criterion must hold; `seen` is the status, or `no_receipt`."""
    connection_ids = {c.pk for c in rule.connections.all()}
    return (
        (not rule.flows or message.flow in rule.flows)
        and (not connection_ids or message.connection_id in connection_ids)
        and (not rule.countries or message.country in rule.countries)
        and (not rule.statuses or seen in rule.statuses)
        and (not rule.error_classes or message.error_class in rule.error_classes)
        and (not rule.reasons or message.reason in rule.reasons)
    )


def backoff_delay(backoff_seconds: list[int], attempts_made: int) -> int:
    """Seconds before the next attempt: the schedule's entry for it, the last one repeating."""
    if not backoff_seconds:
        return 0
    return int(backoff_seconds[min(attempts_made, len(backoff_seconds) - 1)])


def attempts_made(root: Message) -> int:
    """Attempts the chain has used (cancelled ones gave nothing and do not count)."""
    return Attempt.objects.filter(chain_root=root).exclude(outcome=Attempt.Outcome.CANCELLED).count()


def _next_due(rule: Rule, made: int, now: datetime) -> datetime:
    return now + timedelta(seconds=backoff_delay(rule.backoff_seconds, made))


def _deadline(rule: Rule, root: Message) -> datetime | None:
    """After this a retry is pointless (an OTP after 5 minutes), measured from the original."""
    if rule.deadline_seconds is None:
        return None
    return root.submitted_at + timedelta(seconds=rule.deadline_seconds)


def _schedule_state(
    rule: Rule, action: Action, message: Message, root: Message, made: int, now: datetime
) -> tuple[str, str, str]:
    """(state, skip reason, why) of a decision whose action would send again."""
    if chain_delivered(root):
        return Decision.State.SKIPPED, Skip.CHAIN_DELIVERED, "the chain was already delivered"
    if Attempt.objects.filter(idempotency_key=attempt_key(message)).exists():
        # A message is replaced once: a second failure status of the same message (a stronger
        # final after a weaker one) must not send a second copy.
        return Decision.State.SKIPPED, Skip.ALREADY_RETRIED, "this message was already retried"
    if made >= rule.max_attempts:
        return Decision.State.SKIPPED, Skip.MAX_ATTEMPTS, f"{made} of {rule.max_attempts} attempts already made"
    deadline = _deadline(rule, root)
    if deadline is not None and _next_due(rule, made, now) > deadline:
        return Decision.State.SKIPPED, Skip.DEADLINE, f"past the {rule.deadline_seconds} s deadline"
    if missing := action.missing_target(rule):
        return Decision.State.SKIPPED, Skip.NO_TARGET, missing
    return Decision.State.SCHEDULED, "", f"rule “{rule.name}”: attempt {made + 1} of {rule.max_attempts}"


def attempt_key(message: Message) -> str:
    """One attempt per failed message: the key the resend (and the provider) dedupes on."""
    return f"retry-of-message-{message.pk}"


def _schedule_attempt(
    decision: Decision, rule: Rule, action: Action, message: Message, root: Message, made: int, now: datetime
) -> Attempt | None:
    try:
        # The unique key settles two decisions racing for the same message (two failure
        # receipts processed at once by two workers): one attempt, not two.
        with transaction.atomic():
            attempt = Attempt.objects.create(
                decision=decision, chain_root=root, number=made + 1, idempotency_key=attempt_key(message),
                due_at=_next_due(rule, made, now), action=action.slug, deadline_at=_deadline(rule, root),
                **action.attempt_through(rule, message),
            )  # fmt: skip
    except IntegrityError:
        decision.state, decision.skip_reason = Decision.State.SKIPPED, Skip.ALREADY_RETRIED
        decision.why = "this message was already retried"
        Decision.objects.filter(pk=decision.pk).update(
            state=decision.state, skip_reason=decision.skip_reason, why=decision.why
        )
        return None
    if attempt.due_at <= now:
        transaction.on_commit(lambda: kick(RUN_DUE_ATTEMPTS))
    return attempt


def chain_delivered(root: Message) -> bool:
    return Message.objects.filter(Q(pk=root.pk) | Q(chain_root=root), status=Status.DELIVERED).exists()


def cancel_chain(root: Message, *, now: datetime, why: str) -> int:
    """Cancel the chain's scheduled attempts (and their decisions); how many."""
    attempts = Attempt.objects.filter(chain_root=root, outcome=Attempt.Outcome.SCHEDULED)
    decision_ids = list(attempts.values_list("decision_id", flat=True))
    if not decision_ids:
        return 0  # the common case: nothing was scheduled
    cancelled = attempts.update(outcome=Attempt.Outcome.CANCELLED, detail=why[:255], finished_at=now)
    Decision.objects.filter(pk__in=decision_ids).update(state=Decision.State.CANCELLED)
    return cancelled
