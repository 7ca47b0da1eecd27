"""From an outbox event to decisions: which rule takes a message's change, and its escalation
moved once per event (retries/escalation.py).

A chain of resends stays with the rule that took its first failure, whatever connection or
status its resends have; a delivery anywhere in a chain cancels the chain's scheduled attempts
(no double OTP) and is decided on by the first rule that matches it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from receipts import store
from receipts.models import Message, OutboxEvent
from receipts.statuses import NO_RECEIPT, Status
from retries.escalation import RUN_DUE_ATTEMPTS, Trigger, attempts_made, chain_delivered, escalate
from retries.models import Attempt, Decision, Rule
from retries.rule_cache import rule_cache

__all__ = ["RUN_DUE_ATTEMPTS", "attempts_made", "chain_delivered", "decide"]

logger = logging.getLogger(__name__)


def decide(event: OutboxEvent, *, now: datetime | None = None) -> list[Decision]:
    """Decide for `event`, inside the caller's transaction (the outbox claim's)."""
    now = now or timezone.now()
    message = Message.objects.select_related("chain_root", "connection").get(pk=event.message_id)
    root = message.chain_root or message
    # The chain's original first, then the message: every trigger of a chain (here, and an
    # attempt that ends, retries/attempts.py) locks in that order, so they serialize.
    store.message_lock(root.pk)
    message = (
        Message.objects.select_for_update(of=("self",)).select_related("chain_root", "connection").get(pk=message.pk)
    )
    seen = NO_RECEIPT if event.kind == OutboxEvent.Kind.NO_RECEIPT else event.status
    if seen == Status.DELIVERED:
        cancel_chain(root, now=now, why=f"message {message.pk} was delivered")
        rule = first_matching_rule(message, seen)
    else:
        rule = chain_rule(root) or first_matching_rule(message, seen)
    decisions = escalate(Trigger(message=message, root=root, seen=seen, outbox_event=event), rule, now=now)
    # One line per change decided on: with the request id, it ties a receipt to what came of it.
    logger.info(
        "message %s %s: %s",
        message.pk,
        seen,
        "; ".join(f"decision {d.pk} {d.action or '-'} {d.state}" for d in decisions) or "no decision",
    )
    return decisions


def first_matching_rule(message: Message, seen: str) -> Rule | None:
    for rule in rule_cache.get():
        if rule_matches(rule, message, seen):
            return rule
    return None


def chain_rule(root: Message) -> Rule | None:
    """The rule already escalating for this chain, if it is still enabled: the last one that
    scheduled an attempt for it."""
    rule_id = (
        Decision.objects.filter(Q(message=root) | Q(message__chain_root=root), state=Decision.State.SCHEDULED)
        .exclude(rule=None)
        .order_by("-id")
        .values_list("rule_id", flat=True)
        .first()
    )
    return next((rule for rule in rule_cache.get() if rule.pk == rule_id), None) if rule_id else None


def rule_matches(rule: Rule, message: Message, seen: str) -> bool:
    """Every non-empty condition must hold; `seen` is the status, or `no_receipt`."""
    connection_ids = rule.connection_ids()
    return (
        (not rule.flows or message.flow in rule.flows)
        and (not connection_ids or message.connection_id in connection_ids)
        and (not rule.countries or message.country in rule.countries)
        and (not rule.statuses or seen in rule.statuses)
        and (not rule.error_classes or message.error_class in rule.error_classes)
        and (not rule.reasons or message.reason in rule.reasons)
    )


def cancel_chain(root: Message, *, now: datetime, why: str) -> int:
    """Cancel the chain's scheduled attempts (and their decisions); how many."""
    attempts = Attempt.objects.filter(chain_root=root, outcome=Attempt.Outcome.SCHEDULED)
    decision_ids = list(attempts.values_list("decision_id", flat=True))
    if not decision_ids:
        return 0  # the common case: nothing was scheduled
    cancelled = attempts.update(outcome=Attempt.Outcome.CANCELLED, detail=why[:255], finished_at=now)
    Decision.objects.filter(pk__in=decision_ids).update(state=Decision.State.CANCELLED)
    return cancelled
