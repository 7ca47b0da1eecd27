"""From an outbox event to decisions: which rule takes a message's change, and its escalation
moved once per event (retries/escalation.py).

A chain of resends stays with the rule that took its first failure, whatever connection or
status its resends have; a delivery anywhere in a chain cancels the chain's scheduled attempts
(no double OTP) and is decided on by the first rule that matches it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from django.db.models import Model
from django.utils import timezone

from dlrconsole.lib.deferred_inserts import DeferredInserts, deferring
from dlrconsole.lib.request_id import current_request_id, request_id_bound
from receipts import store
from receipts.models import Message, OutboxEvent
from receipts.selectors import chain_delivered, chain_messages
from receipts.statuses import NO_RECEIPT, Status
from retries.actions.registry import get_action
from retries.escalation import RUN_DUE_ATTEMPTS, Trigger, attempts_made, escalate
from retries.models import Attempt, Decision, Rule
from retries.rule_cache import rule_cache

__all__ = ["RUN_DUE_ATTEMPTS", "attempts_made", "chain_delivered", "decide", "decide_batch"]

logger = logging.getLogger(__name__)


def decide(event: OutboxEvent, *, now: datetime | None = None, batch: DecisionBatch | None = None) -> list[Decision]:
    """Decide for `event`, inside the caller's transaction (the outbox claim's); `batch`: what
    was read for the claimed batch it belongs to."""
    now = now or timezone.now()
    read = batch.take(event) if batch is not None else None
    if read is None:
        message = _read_and_lock(event)
        read = (message, message.chain_root or message, False)
    decisions = _decide_read(event, *read, now=now)
    _log_decided(read[0], event, decisions)
    return decisions


def _seen(event: OutboxEvent) -> str:
    return NO_RECEIPT if event.kind == OutboxEvent.Kind.NO_RECEIPT else event.status


def _decide_read(event: OutboxEvent, message: Message, root: Message, fresh: bool, *, now: datetime) -> list[Decision]:
    seen = _seen(event)
    if seen == Status.DELIVERED:
        if not fresh:
            cancel_chain(root, now=now, why=f"message {message.pk} was delivered")
        rule = first_matching_rule(message, seen)
    else:
        rule = (None if fresh else chain_rule(root)) or first_matching_rule(message, seen)
    trigger = Trigger(message=message, root=root, seen=seen, outbox_event=event, fresh_chain=fresh)
    return escalate(trigger, rule, now=now)


def _log_decided(message: Message, event: OutboxEvent, decisions: list[Decision]) -> None:
    # One line per change decided on: with the request id, it ties a receipt to what came of it.
    seen = _seen(event)
    logger.info(
        "message %s %s: %s",
        message.pk,
        seen,
        "; ".join(f"decision {d.pk} {d.action or '-'} {d.state}" for d in decisions) or "no decision",
    )


def _read_and_lock(event: OutboxEvent) -> Message:
    message = Message.objects.select_related("chain_root", "connection").get(pk=event.message_id)
    root = message.chain_root or message
    # The chain's original first, then the message: every trigger of a chain (here, and an
    # attempt that ends, retries/attempts.py) locks in that order, so they serialize.
    store.message_lock(root.pk)
    return Message.objects.select_for_update(of=("self",)).select_related("chain_root", "connection").get(pk=message.pk)


class DecisionBatch:
    """A claimed batch of events decided together (the outbox's BatchRun).

    What the events share is read set-based once: their messages and chains' originals, locked
    in id order (an original is older than its resends, so this is the original-first order
    every trigger of a chain locks in; two batches wait, never deadlock), and which chains are
    fresh: an original without resends, decisions or attempts, whose escalation has nothing to
    read. The event of a fresh chain that is the chain's only one in the batch (nearly every
    event: a receipt for a message sent once) is decided in memory, and its rows (decisions,
    attempts, feed events and deliveries) are held and written set-based by `finish`, a few
    statements for the batch. Any other event is decided and written on its own; one after the
    first of its chain in the batch reads for itself: the first one's decisions changed what
    there is to read."""

    def __init__(self, events: list[OutboxEvent]) -> None:
        message_ids = {event.message_id for event in events}
        roots = dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "chain_root_id"))
        root_ids = {root_id or message_id for message_id, root_id in roots.items()}
        locked = Message.objects.select_for_update(of=("self",)).select_related("connection")
        self.messages = {m.pk: m for m in locked.filter(pk__in=message_ids | root_ids).order_by("pk")}
        for message in self.messages.values():
            if message.chain_root_id is not None and message.chain_root_id in self.messages:
                message.chain_root = self.messages[message.chain_root_id]
        with_history = (
            set(Message.objects.filter(chain_root_id__in=root_ids).values_list("chain_root_id", flat=True))
            | set(Decision.objects.filter(message_id__in=root_ids).values_list("message_id", flat=True))
            | set(Attempt.objects.filter(chain_root_id__in=root_ids).values_list("chain_root_id", flat=True))
        )
        self.fresh = root_ids - with_history
        events_per_chain = Counter(roots.get(e.message_id) or e.message_id for e in events)
        self.alone = {root_id for root_id, count in events_per_chain.items() if count == 1}
        self.taken: set[int] = set()
        self.holding: dict[int, bool] = {}
        self.held = DeferredInserts()
        self.decided: list[tuple[Message, OutboxEvent, list[Decision], str | None]] = []
        # The last event held for and what was held before it, for `discard`.
        self.mark: tuple[OutboxEvent, dict[type[Model], int]] | None = None

    def take(self, event: OutboxEvent) -> tuple[Message, Message, bool] | None:
        """The event's message, its chain's original and whether the chain is fresh; None when
        the event must read for itself."""
        message = self.messages.get(event.message_id)
        if message is None:
            return None
        root_id = message.chain_root_id or message.pk
        if root_id in self.taken or root_id not in self.messages:
            return None
        self.taken.add(root_id)
        return message, self.messages[root_id], root_id in self.fresh

    def holds(self, event: OutboxEvent) -> bool:
        """The event's chain is fresh, this is its only event, and the rule it meets takes only
        steps whose rows can be held: decided in memory, held. Asked by the outbox, then by
        `consume`: answered once."""
        if event.pk not in self.holding:
            self.holding[event.pk] = self._can_hold(event)
        return self.holding[event.pk]

    def _can_hold(self, event: OutboxEvent) -> bool:
        message = self.messages.get(event.message_id)
        if message is None:
            return False
        root_id = message.chain_root_id or message.pk
        if root_id not in self.fresh or root_id not in self.alone:
            return False
        # A fresh chain has no rule escalating it yet: the first rule matching is the one.
        rule = first_matching_rule(message, _seen(event))
        return rule is None or all(get_action(step.action).holdable for step in rule.step_list())

    def consume(self, event: OutboxEvent, now: datetime) -> list[Decision]:
        if not self.holds(event):
            return decide(event, now=now, batch=self)
        read = self.take(event)
        assert read is not None  # the chain's only event
        self.mark = (event, self.held.mark())
        with deferring(self.held):
            decisions = _decide_read(event, *read, now=now)
        self.decided.append((read[0], event, decisions, current_request_id()))
        return decisions

    def discard(self, event: OutboxEvent) -> None:
        if self.mark is not None and self.mark[0] is event:
            self.held.rollback(self.mark[1])
            self.decided = [entry for entry in self.decided if entry[1] is not event]
        self.mark = None

    def finish(self, now: datetime) -> int:
        """Write what the batch's fresh chains decided; how many rows."""
        written = self.held.flush()
        for message, event, decisions, request_id in self.decided:
            with request_id_bound(request_id):
                _log_decided(message, event, decisions)
        return written


def decide_batch(events: list[OutboxEvent], now: datetime) -> DecisionBatch:
    """The outbox consumer's batch hook."""
    return DecisionBatch(events)


def first_matching_rule(message: Message, seen: str) -> Rule | None:
    for rule in rule_cache.get():
        if rule_matches(rule, message, seen):
            return rule
    return None


def chain_rule(root: Message) -> Rule | None:
    """The rule already escalating for this chain, if it is still enabled: the last one that
    scheduled an attempt for it."""
    rule_id = (
        Decision.objects.filter(message__in=chain_messages(root.pk).values("pk"), state=Decision.State.SCHEDULED)
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
