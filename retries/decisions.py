"""From an outbox event to a decision: the first matching rule decides, once per event.

A retry or fallback is scheduled as an Attempt with a due time in the database (never a
broker countdown). A `delivered` status anywhere in a message's attempt chain cancels the
chain's scheduled attempts (no double OTP).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from alerts.services import alert_raise_for_decision
from dlrconsole.lib.tasks import kick
from receipts.models import Message, OutboxEvent
from receipts.statuses import NO_RECEIPT, Status
from retries.models import Attempt, Decision, Rule
from retries.notifications import notify_decision
from retries.rule_cache import rule_cache

# Skips that are not a failure the product must hear of: nothing more is owed to anybody.
WHY_CHAIN_DELIVERED = "the chain was already delivered"
WHY_ALREADY_RETRIED = "this message was already retried"
# The attempt runner (retries/tasks.py), kicked when an attempt is due at once.
RUN_DUE_ATTEMPTS = "retries.tasks.run_due_attempts"
ATTEMPTING = (Rule.Action.RETRY_SAME, Rule.Action.RETRY_OTHER, Rule.Action.FALLBACK)


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
    made = attempts_made(root) if rule is not None and rule.action in ATTEMPTING else 0
    decision = Decision(
        message=message, outbox_event=event, rule=rule, created_at=now,
        action=rule.action if rule else Rule.Action.NONE,
    )  # fmt: skip
    if rule is None:
        decision.state, decision.why = Decision.State.RECORDED, f"no rule matches {seen}"
    elif rule.action in ATTEMPTING:
        decision.state, decision.why = _schedule_state(rule, message, root, made, now)
    else:
        decision.state, decision.why = Decision.State.RECORDED, f"rule “{rule.name}”"
    decision.save()
    attempt = None
    if decision.state == Decision.State.SCHEDULED:
        attempt = _schedule_attempt(decision, rule, message, root, made, now)  # type: ignore[arg-type]
    notify_decision(decision, message=message, seen=seen, attempt=attempt, locked=True)
    if decision.action == Rule.Action.ALERT:
        alert_raise_for_decision(decision=decision, now=now)
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


def _schedule_state(rule: Rule, message: Message, root: Message, made: int, now: datetime) -> tuple[str, str]:
    if chain_delivered(root):
        return Decision.State.SKIPPED, WHY_CHAIN_DELIVERED
    if Attempt.objects.filter(idempotency_key=attempt_key(message)).exists():
        # A message is replaced once: a second failure status of the same message (a stronger
        # final after a weaker one) must not send a second copy.
        return Decision.State.SKIPPED, WHY_ALREADY_RETRIED
    if made >= rule.max_attempts:
        return Decision.State.SKIPPED, f"{made} of {rule.max_attempts} attempts already made"
    deadline = _deadline(rule, root)
    if deadline is not None and _next_due(rule, made, now) > deadline:
        return Decision.State.SKIPPED, f"past the {rule.deadline_seconds} s deadline"
    if rule.action == Rule.Action.RETRY_OTHER and rule.target_connection_id is None:
        return Decision.State.SKIPPED, "no other connection configured on the rule"
    if rule.action == Rule.Action.FALLBACK and rule.fallback_channel_id is None:
        return Decision.State.SKIPPED, "no fallback channel configured on the rule"
    return Decision.State.SCHEDULED, f"rule “{rule.name}”: attempt {made + 1} of {rule.max_attempts}"


def attempt_key(message: Message) -> str:
    """One attempt per failed message: the key the resend (and the provider) dedupes on."""
    return f"retry-of-message-{message.pk}"


def _schedule_attempt(
    decision: Decision, rule: Rule, message: Message, root: Message, made: int, now: datetime
) -> Attempt | None:
    try:
        # The unique key settles two decisions racing for the same message (two failure
        # receipts processed at once by two workers): one attempt, not two.
        with transaction.atomic():
            attempt = Attempt.objects.create(
                decision=decision, chain_root=root, number=made + 1, idempotency_key=attempt_key(message),
                due_at=_next_due(rule, made, now), action=rule.action, deadline_at=_deadline(rule, root),
                connection_id=rule.target_connection_id if rule.action == Rule.Action.RETRY_OTHER
                else message.connection_id if rule.action == Rule.Action.RETRY_SAME else None,
                channel_id=rule.fallback_channel_id if rule.action == Rule.Action.FALLBACK else None,
            )  # fmt: skip
    except IntegrityError:
        decision.state, decision.why = Decision.State.SKIPPED, WHY_ALREADY_RETRIED
        Decision.objects.filter(pk=decision.pk).update(state=decision.state, why=decision.why)
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
