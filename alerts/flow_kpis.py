"""A flow's KPIs turned into alert rules in one action: one rule per KPI, scoped to the flow,
firing when the figure goes the wrong way past the KPI's threshold. Running it again brings
the rules back in line with the KPIs (a changed threshold, a rule someone disabled)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alerts.models import AlertChannel, AlertRule, Severity
from receipts.flows.models import Flow, FlowKpi, Priority

# A critical flow pages; the others warn.
SEVERITY_OF_PRIORITY: dict[str, str] = {Priority.CRITICAL: Severity.CRITICAL}

# The rule's fields a KPI sets, as readiness names them when they differ.
RULE_FIELD_WORDS = {
    "metric": gettext_lazy("the figure"),
    "flow": gettext_lazy("the flow"),
    "comparison": gettext_lazy("the direction"),
    "threshold": gettext_lazy("the threshold"),
    "window_minutes": gettext_lazy("the window (minutes)"),
    "enabled": gettext_lazy("enabled"),
}


def kpi_rule_fields(kpi: FlowKpi, flow: Flow) -> dict[str, Any]:
    """What the KPI's alert rule must say; readiness compares a rule against this."""
    return {
        "metric": kpi.metric,
        "flow": flow.slug,
        "comparison": kpi.bad_direction,
        "threshold": kpi.threshold,
        "window_minutes": kpi.window_minutes,
        "enabled": True,
    }


def rule_matches_kpi(rule: AlertRule, kpi: FlowKpi, flow: Flow) -> list[str]:
    """What differs between the rule and its KPI, in words; empty when they agree."""
    differs = []
    for name, wanted in kpi_rule_fields(kpi, flow).items():
        if getattr(rule, name) != wanted:
            field = str(RULE_FIELD_WORDS.get(name, name))
            text = _("%(field)s is %(actual)s, the KPI says %(wanted)s")
            differs.append(text % {"field": field, "actual": getattr(rule, name), "wanted": wanted})
    return differs


@transaction.atomic
def flow_kpi_rules_sync(*, flow: Flow, user: Any, channels: Iterable[AlertChannel] = ()) -> list[AlertRule]:
    """Create or update the alert rule of each of the flow's KPIs; `channels` are added to
    each rule's (never removed: someone may have added one by hand)."""
    rules = []
    channels = list(channels)
    for kpi in flow.kpis.all():
        rule = AlertRule.objects.filter(kpi=kpi).first() or AlertRule(kpi=kpi, created_by_id=getattr(user, "pk", None))
        for name, value in kpi_rule_fields(kpi, flow).items():
            setattr(rule, name, value)
        rule.name = f"{flow.name}: {kpi.get_metric_display()}"[:120]
        rule.severity = SEVERITY_OF_PRIORITY.get(flow.priority, Severity.WARNING)
        rule.full_clean(exclude=["kpi"])
        rule.save()
        if channels:
            rule.channels.add(*channels)
        rules.append(rule)
    return rules
