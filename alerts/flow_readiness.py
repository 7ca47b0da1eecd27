"""A flow's launch readiness, computed from the live configuration every time it is read and
never ticked by hand: each item says what is missing and where to fix it. It reads the flow
(receipts/flows), its policy (the retry rules the engine would pick, retries/policy_tester.py),
its KPIs' alert rules, its support alerts and its reports (this app); it lives here, the lowest
layer that sees them all."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from simple_history.utils import get_m2m_reverse_field_name

from alerts.flow_kpis import rule_matches_kpi
from alerts.models import AlertRule
from alerts.reports.models import ReportSchedule
from receipts.flows.models import Channel, FallbackTest, Flow
from receipts.models import Connection
from receipts.statuses import Status
from retries.models import Rule, Step
from retries.policy_tester import first_rule, probe_message

# The failure a policy must take for every route of the flow: a temporary one, the kind a retry
# or a fallback is for.
PROBE_STATUS, PROBE_REASON = Status.UNDELIVERED, "absent_subscriber"


@dataclass(frozen=True)
class ReadinessItem:
    key: str
    label: str
    ok: bool
    missing: list[str] = field(default_factory=list)
    fix_url: str = ""
    fix_label: str = ""


@dataclass(frozen=True)
class Readiness:
    items: list[ReadinessItem]

    @property
    def ready(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def missing_count(self) -> int:
        return sum(1 for item in self.items if not item.ok)

    def snapshot(self) -> list[dict[str, Any]]:
        """As a go/no-go keeps it: plain values, without the links (pages move, facts do not)."""
        return [{k: v for k, v in asdict(item).items() if k not in ("fix_url", "fix_label")} for item in self.items]


def _item(key: str, label: str, missing: list[str], fix_url: str, fix_label: str) -> ReadinessItem:
    return ReadinessItem(key, label, not missing, missing, fix_url, fix_label)


def _flow_url(flow: Flow, name: str = "flow-edit") -> str:
    return reverse(f"console:{name}", args=[flow.slug])


def owners_item(flow: Flow) -> ReadinessItem:
    missing = []
    owners = (
        (flow.technical_owner, _("No technical owner."), _("The technical owner (%(user)s) can no longer sign in.")),
        (flow.business_owner, _("No business owner."), _("The business owner (%(user)s) can no longer sign in.")),
    )
    for user, none, inactive in owners:
        if user is None:
            missing.append(none)
        elif not user.is_active:
            missing.append(inactive % {"user": user.get_username()})
    return _item("owners", _("Owners set"), missing, _flow_url(flow), _("Edit the flow"))


def kpis_item(flow: Flow) -> ReadinessItem:
    kpis = list(flow.kpis.all())
    missing = [] if kpis else [_("No KPI: add at least one (delivery rate, missing receipts, time to delivery).")]
    rules = {rule.kpi_id: rule for rule in AlertRule.objects.filter(kpi__in=kpis)}
    for kpi in kpis:
        rule = rules.get(kpi.pk)
        metric = kpi.get_metric_display()
        if rule is None:
            missing.append(_("%(metric)s: no alert rule yet.") % {"metric": metric})
        elif not rule.enabled:
            missing.append(
                _("%(metric)s: its alert rule “%(rule)s” is disabled.") % {"metric": metric, "rule": rule.name}
            )
        elif differs := rule_matches_kpi(rule, kpi, flow):
            text = _("%(metric)s: its alert rule differs (%(differences)s).")
            missing.append(text % {"metric": metric, "differences": "; ".join(differs)})
    return _item(
        "kpis", _("KPIs with enabled alert rules"), missing, _flow_url(flow), _("Turn the KPIs into alert rules")
    )


def _routes(flow: Flow) -> list[tuple[str, Connection]]:
    return [(country, connection) for country in flow.countries for connection in flow.connections.all()]


def policy_item(flow: Flow) -> ReadinessItem:
    missing = (
        [] if flow.connections.exists() else [_("No connection chosen: name the routes the flow is sent through.")]
    )
    for country, connection in _routes(flow):
        probe = probe_message(
            flow=flow.slug, country=country, connection=connection, status=PROBE_STATUS, reason=PROBE_REASON
        )
        rule = first_rule(probe, PROBE_STATUS)
        route = {"country": country, "connection": connection.slug}
        if rule is None:
            missing.append(_("%(country)s through %(connection)s: no enabled rule takes a temporary failure.") % route)
        elif flow.channel == Channel.SMS_FALLBACK and not any(s.action == "fallback" for s in rule.step_list()):
            text = _("%(country)s through %(connection)s: rule “%(rule)s” has no fallback step.")
            missing.append(text % {**route, "rule": rule.name})
    return _item("policy", _("A policy covers every country and connection"), missing,
                 reverse("console:policies"), _("Edit the policies"))  # fmt: skip


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


# What happened to a rule, by its history record's type.
RULE_CHANGES = {
    "+": gettext_lazy("the retry rule “%(rule)s” was added"),
    "~": gettext_lazy("the retry rule “%(rule)s” changed"),
    "-": gettext_lazy("the retry rule “%(rule)s” was deleted"),
}


def _concerns(flows: object, flow: Flow) -> bool:
    return not flows or (isinstance(flows, list) and flow.slug in flows)


def _connection_ids(record: Any) -> set[int]:
    """The flow's connections as a history record kept them (its own copy of the through rows)."""
    target = get_m2m_reverse_field_name(Flow._meta.get_field("connections"))
    return {getattr(row, f"{target}_id") for row in record.connections.all()}


def _first_change_since(flow: Flow, since: datetime) -> tuple[datetime, str] | None:
    """The first change, read from the configuration's history, to what a fallback test of the
    flow played: a retry rule that may take its messages (or one of its steps), or the flow's
    connections. (when, what changed, in words)."""
    changes: list[tuple[datetime, str]] = []
    rule_history = Rule.history.model.objects
    names: dict[int, str] = {}
    for record in rule_history.order_by("history_date", "history_id"):
        if _concerns(record.flows, flow):
            names[record.id] = record.name
            if record.history_date > since:
                changes.append((record.history_date, RULE_CHANGES[record.history_type] % {"rule": record.name}))
    step_history = Step.history.model.objects
    for record in step_history.filter(history_date__gt=since, rule_id__in=list(names)).order_by("history_date"):
        changes.append((record.history_date, RULE_CHANGES["~"] % {"rule": names[record.rule_id]}))
    # Each record against the one before it, from the one in force when the test ran (records of
    # the same instant are ordered by id: prev_record would pick among them at random).
    history = flow.history.order_by("history_date", "history_id")
    before = history.filter(history_date__lte=since).last()
    tested = _connection_ids(before) if before is not None else set()
    for record in history.filter(history_date__gt=since):
        if (now := _connection_ids(record)) != tested:
            changes.append((record.history_date, _("the flow's connections changed")))
            break
        tested = now
    return min(changes, key=lambda change: change[0]) if changes else None


def fallback_item(flow: Flow) -> ReadinessItem:
    tests = {(t.country, t.connection_id): t for t in reversed(list(flow.fallback_tests.all()))}  # newest wins
    missing = []
    for country, connection in _routes(flow):
        test = tests.get((country, connection.pk))
        route = {"country": country, "connection": connection.slug}
        if test is None:
            missing.append(_("%(country)s through %(connection)s: never tested.") % route)
        elif test.outcome != FallbackTest.Outcome.PASSED:
            text = _("%(country)s through %(connection)s: the last test failed (%(summary)s)")
            missing.append(text % {**route, "summary": test.summary})
        elif stale := _first_change_since(flow, test.finished_at):
            at, what = stale
            text = _("%(country)s through %(connection)s: tested on %(tested)s, before %(what)s on %(at)s: test again.")
            missing.append(text % {**route, "tested": _when(test.finished_at), "what": what, "at": _when(at)})
    if not flow.connections.exists():
        missing.append(_("No route to test: choose the flow's connections."))
    return _item("fallback", _("The fallback was tested"), missing, _flow_url(flow, "flow"), _("Test the fallback"))


def support_item(flow: Flow) -> ReadinessItem:
    rules = AlertRule.objects.filter(flow=flow.slug, enabled=True, channels__enabled=True).distinct()
    missing = [] if rules.exists() else [_("No enabled alert rule of this flow notifies an enabled channel.")]
    return _item("support", _("Support alerts configured"), missing, reverse("console:alert-rules"), _("Alert rules"))


def reports_item(flow: Flow) -> ReadinessItem:
    covering = Q(flow=flow.slug) | Q(flow="", group_by=ReportSchedule.GroupBy.FLOW)
    missing = [] if ReportSchedule.objects.filter(covering, enabled=True).exists() else [
        _("No enabled scheduled report covers this flow (its own, or one grouped by flow).")
    ]  # fmt: skip
    return _item("reports", _("Reports configured"), missing, reverse("console:reports"), _("Scheduled reports"))


ITEMS = (owners_item, kpis_item, policy_item, fallback_item, support_item, reports_item)


def flow_readiness(flow: Flow) -> Readiness:
    return Readiness([item(flow) for item in ITEMS])
