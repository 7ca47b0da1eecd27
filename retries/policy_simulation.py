"""The dry run: the last 24 hours of failures replayed through a draft rule set (the edited
rule, unsaved, in place of the saved one), counting per rule what its escalation would have
done: retries, fallbacks, product notices, alerts. The matching and the step plan are the
engine's and the tester's (retries/decisions.py, retries/policy_tester.py).

Each failure is counted as if every attempt failed too (the most a rule can do); a chain's
resends are not replayed, only the originals' failures. Bounded: at most MAX_MESSAGES of the
newest failures, and the page says when it was capped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch, Q

from receipts.models import Message
from receipts.statuses import FAILURE_STATUSES, Status
from retries.models import Rule, Step
from retries.policy_tester import ALERT, FALLBACK, NOTICE, RETRY, first_rule, plan, seen_status

WINDOW = timedelta(hours=24)
MAX_MESSAGES = 5000


@dataclass
class RuleTally:
    rule: Rule
    messages: int = 0
    counts: Counter[str] = field(default_factory=Counter)

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
    # No price data exists yet: what the sends would cost is not known.
    cost_known: bool = False


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
        tally.counts.update(step.kind for step in plan(rule, message, failed_at=failed_at))
    return DryRun(since, len(messages), capped, unmatched, list(tallies.values()))
