"""The dry run: the last 24 hours of failures replayed through a draft rule set (the edited
rule, unsaved, in place of the saved one), counting per rule what its escalation would have
done: retries, fallbacks, product notices, alerts, and what the retries would cost where the
message's cost is known. The matching and the step plan are the
engine's and the tester's (retries/decisions.py, retries/policy_tester.py).

Each failure is counted as if every attempt failed too (the most a rule can do); a chain's
resends are not replayed, only the originals' failures. Bounded: at most MAX_MESSAGES of the
newest failures, and the page says when it was capped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Prefetch, Q

from receipts.models import Message
from receipts.statuses import FAILURE_STATUSES, Status
from retries.models import Rule, Step
from retries.policy_tester import ALERT, FALLBACK, NOTICE, RETRY, PlannedStep, first_rule, plan, seen_status

WINDOW = timedelta(hours=24)
MAX_MESSAGES = 5000


@dataclass
class RuleTally:
    rule: Rule
    messages: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    # What the sends would cost, per currency: a retry on the same route at the message's own
    # cost (same connection, same country). Other sends (another connection, a fallback
    # channel) and messages without a known cost are counted as unpriced.
    costs: dict[str, Decimal] = field(default_factory=dict)
    unpriced: int = 0

    def add_cost(self, message: Message, step: PlannedStep) -> None:
        if step.action == "retry_same" and message.cost is not None and message.currency:
            self.costs[message.currency] = self.costs.get(message.currency, Decimal(0)) + message.cost
        else:
            self.unpriced += 1

    @property
    def retries(self) -> int:
        return self.counts[RETRY]

    @property
    def fallbacks(self) -> int:
        return self.counts[FALLBACK]

    @property
    def notices(self) -> int:
        return self.counts[NOTICE]

    @property
    def alerts(self) -> int:
        return self.counts[ALERT]


@dataclass
class DryRun:
    since: datetime
    considered: int
    capped: bool
    unmatched: int
    tallies: list[RuleTally]


def draft_rule_set(draft: Rule) -> list[Rule]:
    """The saved rules in order, with `draft` in place of its saved version (or added last)."""
    steps = Prefetch("steps", queryset=Step.objects.select_related("fallback_channel", "target_connection"))
    rules = list(Rule.objects.prefetch_related("connections", steps).order_by("position", "id"))
    if draft.pk and any(rule.pk == draft.pk for rule in rules):
        return [draft if rule.pk == draft.pk else rule for rule in rules]
    return [*rules, draft]


def dry_run(rules: list[Rule], *, now: datetime) -> DryRun:
    since = now - WINDOW
    failures = (
        Message.objects.filter(submitted_at__gte=since, submitted_at__lte=now, chain_root=None)
        .filter(Q(status__in=FAILURE_STATUSES) | Q(no_receipt_at__isnull=False))
        .exclude(status=Status.DELIVERED)
        .order_by("-submitted_at", "-id")
    )
    messages = list(failures[: MAX_MESSAGES + 1])
    capped = len(messages) > MAX_MESSAGES
    messages = messages[:MAX_MESSAGES]
    tallies = {id(rule): RuleTally(rule) for rule in rules if rule.enabled}
    unmatched = 0
    for message in messages:
        seen = seen_status(message)
        rule = first_rule(message, seen, rules)
        if rule is None:
            unmatched += 1
            continue
        tally = tallies[id(rule)]
        tally.messages += 1
        failed_at = message.final_at or message.no_receipt_at or message.submitted_at
        for step in plan(rule, message, failed_at=failed_at):
            tally.counts[step.kind] += 1
            if step.kind in (RETRY, FALLBACK):
                tally.add_cost(message, step)
    return DryRun(since, len(messages), capped, unmatched, list(tallies.values()))
