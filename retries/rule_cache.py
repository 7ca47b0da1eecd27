"""The enabled rules, read once and kept for a few seconds: every decision tries them in order,
and reading them (with their connections) was a quarter of a decision's time
(bench/README.md, decision latency). Saving or deleting a rule in this process clears the cache
at once (retries/apps.py), saving a step too; other processes see the change within
DLR_RULES_CACHE_SECONDS."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch

from dlrconsole.lib.ttl_cache import TtlValue
from retries.models import Rule, Step


def _enabled_rules() -> list[Rule]:
    """Enabled rules in order, each carrying its connections and steps (with their channels)."""
    steps = Prefetch("steps", queryset=Step.objects.select_related("fallback_channel", "target_connection"))
    rules = list(Rule.objects.filter(enabled=True).prefetch_related("connections", steps))
    for rule in rules:
        rule.carry((connection.pk for connection in rule.connections.all()), rule.steps.all())
    return rules


rule_cache: TtlValue[list[Rule]] = TtlValue(_enabled_rules, seconds=lambda: settings.DLR_RULES_CACHE_SECONDS)
