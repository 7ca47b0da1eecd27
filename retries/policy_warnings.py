"""What the policy editor warns about, per rule: a rule that can never act because an earlier
enabled rule takes every message it would take (shadowed), a sending step with no target, a
fallback channel never tested (or whose last test failed), and a fallback by e-mail in a rule
whose flows rarely register an e-mail address (the step would be skipped for most messages)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from receipts.models import Message
from retries.actions.registry import get_action
from retries.models import Rule, Step

CONDITIONS = ("flows", "countries", "statuses", "error_classes", "reasons")
# Below this share of recent messages carrying a fallback address, a fallback step is flagged.
FALLBACK_ADDRESS_MIN_SHARE = 0.5
FALLBACK_LOOKBACK_DAYS = 7


@dataclass(frozen=True)
class RuleWarning:
    text: str
    step_position: int | None = None


def covers(earlier: Rule, later: Rule) -> bool:
    """Every message `later` matches, `earlier` matches too: each of its conditions is empty
    (any) or holds every value `later`'s condition allows (and `later`'s is not empty)."""
    for name in CONDITIONS:
        wide, narrow = set(getattr(earlier, name) or []), set(getattr(later, name) or [])
        if wide and (not narrow or not narrow <= wide):
            return False
    wide_ids, narrow_ids = earlier.connection_ids(), later.connection_ids()
    return not wide_ids or (bool(narrow_ids) and narrow_ids <= wide_ids)


def shadowing_rule(rule: Rule, rules: list[Rule]) -> Rule | None:
    """The first enabled rule tried before `rule` that takes every message it would take."""
    for earlier in rules:
        if earlier.pk == rule.pk:
            return None
        if earlier.enabled and covers(earlier, rule):
            return earlier
    return None


def step_warnings(step: Step) -> list[RuleWarning]:
    action = get_action(step.action)
    warnings = []
    if action.attempts and (why := action.missing_target(step)):
        text = _("step %(position)s: %(why)s: it will always be skipped") % {"position": step.position, "why": why}
        warnings.append(RuleWarning(text, step.position))
    channel = step.fallback_channel if step.action == "fallback" else None
    if channel is not None:
        if channel.tested_at is None:
            text = _("step %(position)s: channel %(channel)s was never tested")
            warnings.append(RuleWarning(text % {"position": step.position, "channel": channel.slug}, step.position))
        elif not channel.test_ok:
            text = _("step %(position)s: the last test of channel %(channel)s failed")
            warnings.append(RuleWarning(text % {"position": step.position, "channel": channel.slug}, step.position))
        if not channel.enabled:
            text = _("step %(position)s: channel %(channel)s is disabled")
            warnings.append(RuleWarning(text % {"position": step.position, "channel": channel.slug}, step.position))
    return warnings


def fallback_address_shares(flows_sets: list[list[str]]) -> dict[str, tuple[int, int]]:
    """Per flow named in `flows_sets` (and "" for rules of any flow): recent messages, and how
    many carried a fallback e-mail address. One grouped query over the last week."""
    since = timezone.now() - timedelta(days=FALLBACK_LOOKBACK_DAYS)
    recent = Message.objects.filter(submitted_at__gte=since, chain_root=None)
    flows = {flow for flows in flows_sets for flow in flows}
    shares: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    with_address = Count("id", filter=~Q(fallback_email=""))
    if flows:
        for row in recent.filter(flow__in=flows).order_by().values("flow").annotate(n=Count("id"), a=with_address):
            shares[row["flow"]] = (row["n"], row["a"])
    if any(not flows for flows in flows_sets):
        total = recent.aggregate(n=Count("id"), a=with_address)
        shares[""] = (total["n"], total["a"])
    return shares


def address_warning(rule: Rule, steps: list[Step], shares: dict[str, tuple[int, int]]) -> RuleWarning | None:
    email_step = next(
        (s for s in steps if s.action == "fallback" and s.fallback_channel and s.fallback_channel.kind == "email"),
        None,
    )
    if email_step is None:
        return None
    counted = [shares[flow] for flow in (rule.flows or [""])]
    total, carried = sum(n for n, _ in counted), sum(a for _, a in counted)
    if total == 0 or carried / total >= FALLBACK_ADDRESS_MIN_SHARE:
        return None
    params = {"position": email_step.position, "carried": carried, "total": total, "flows": ", ".join(rule.flows)}
    if rule.flows:
        text = (
            _(
                "step %(position)s: only %(carried)s of %(total)s recent messages of %(flows)s carried a fallback "
                "e-mail address; the others skip this step"
            )
            % params
        )
    else:
        text = (
            _(
                "step %(position)s: only %(carried)s of %(total)s recent messages of any flow carried a fallback "
                "e-mail address; the others skip this step"
            )
            % params
        )
    return RuleWarning(text, email_step.position)


def rules_warnings(rules: list[Rule]) -> dict[int | None, list[RuleWarning]]:
    """Warnings of each rule (by id; a draft rule under None), `rules` in the order they are
    tried with their steps (and channels) prefetched."""
    shares = fallback_address_shares([rule.flows or [] for rule in rules])
    found: dict[int | None, list[RuleWarning]] = {}
    for rule in rules:
        warnings = []
        if rule.enabled and (earlier := shadowing_rule(rule, rules)) is not None:
            text = _("never matches: rule “%(rule)s” is tried first and takes all its messages")
            warnings.append(RuleWarning(text % {"rule": earlier.name}))
        steps = rule.step_list()
        for step in steps:
            warnings.extend(step_warnings(step))
        if (warning := address_warning(rule, steps, shares)) is not None:
            warnings.append(warning)
        found[rule.pk] = warnings
    return found
