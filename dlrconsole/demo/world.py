"""The demo's retry policy and its e-mail fallback, in the simulated world the demo serves, and
its flows.

Within a few minutes of traffic the demo shows a whole escalation: a sign-in or reset code that
failed for a temporary reason is resent on the same route after 20 s; if the resend fails too,
the code goes by e-mail (the address the simulated product registered for those flows) through
a real SMTP exchange with the demo's own mail server (dlrconsole/simulator/mailbox.py), and the
product is told. The shipped rules (retries/default_rules.py) are left as they are for everything
else; this one comes before them.

Loopback peers are allowed only in the demo's processes (demo.allow_loopback_peers): the channel
names 127.0.0.1, which the outbound guard refuses anywhere else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from alerts.flow_kpis import flow_kpi_rules_sync
from alerts.flow_launch import flow_launch_decide
from dlrconsole.simulator.traffic import FALLBACK_EMAIL_FLOWS
from receipts.flows.models import Flow, FlowKpi
from receipts.models import Connection
from retries.models import FallbackChannel, Rule, Step

DEMO_CHANNEL = "demo-email"
DEMO_RULE = "Demo: sign-in and reset codes, retry once then e-mail"
# Before "Temporary failure: retry on the same connection" (position 50), which it narrows.
DEMO_RULE_POSITION = 45
RETRY_AFTER_SECONDS = 20
# A code is useless after a few minutes: nothing more is sent after this.
DEADLINE_SECONDS = 600
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def ensure_demo_fallback_channel(*, host: str, port: int) -> FallbackChannel:
    """The e-mail channel, pointed at this run's mail server (its port changes every run)."""
    channel = FallbackChannel.objects.filter(slug=DEMO_CHANNEL).first() or FallbackChannel(slug=DEMO_CHANNEL)
    channel.kind = "email"
    channel.config = {
        # Explicit: whatever EMAIL_BACKEND says, the demo's fallback is a real SMTP exchange.
        "backend": SMTP_BACKEND,
        "host": host,
        "port": port,
        "timeout": 5,
        "subject": "Your ACME code",
    }
    channel.sender_id = "codes@acme.example"
    channel.enabled = True
    channel.full_clean()
    channel.save()
    return channel


def ensure_demo_policy(channel: FallbackChannel) -> Rule:
    """The demo's rule and its steps, as this module says; made again if edited or removed."""
    with transaction.atomic():
        rule = Rule.objects.filter(name=DEMO_RULE).first() or Rule(name=DEMO_RULE)
        rule.position = DEMO_RULE_POSITION
        rule.enabled = True
        rule.flows = sorted(FALLBACK_EMAIL_FLOWS)
        rule.error_classes = ["temporary"]
        rule.deadline_seconds = DEADLINE_SECONDS
        rule.full_clean()
        rule.save()
        steps = [
            Step(rule=rule, position=1, action="retry_same", count=1, delays=[RETRY_AFTER_SECONDS]),
            Step(rule=rule, position=2, action="fallback", fallback_channel=channel),
            Step(rule=rule, position=3, action="notify"),
        ]
        if [_shape(step) for step in rule.steps.all()] != [_shape(step) for step in steps]:
            # Replaced only when edited: decisions and attempts of earlier runs keep their step.
            rule.steps.all().delete()
            for step in steps:
                step.full_clean()
                step.save()
    return rule


def _shape(step: Step) -> tuple[object, ...]:
    return (step.position, step.action, step.count, list(step.delays or []), step.fallback_channel_id)


# The demo's flows (receipts/flows), so the Launch pages have something to show: the sign-in
# code, launched ("go", with its readiness then), on the connections the simulator plays, with
# an adaptive receipt SLA; and the offers, described but undecided, whose messages are flagged.
DEMO_FLOWS: tuple[dict[str, Any], ...] = (
    {
        "slug": "login-otp", "name": "Login OTP, Western Europe", "channel": "sms_fallback",
        "countries": ["FR", "DE", "GB"], "monthly_volume": 400_000, "sla_rate": 97, "sla_seconds": 60,
        "adaptive_sla": True, "adaptive_floor_seconds": 10, "priority": "critical",
        "kpis": [("delivery_rate", 95, 15), ("p95_delivery", 30, 15)],
        "decision": ("go", "Demo: launched with the e-mail fallback; reports to set up next."),
    },
    {
        "slug": "marketing", "name": "Offers and news", "channel": "sms", "countries": ["FR", "DE"],
        "monthly_volume": 1_000_000, "sla_rate": 90, "sla_seconds": 3600, "priority": "low",
        "kpis": [("delivery_rate", 85, 60)], "decision": None,
    },
)  # fmt: skip
DEMO_FLOW_CONNECTIONS = 2


def ensure_demo_flows(owner: Any, connection_slugs: list[str]) -> list[Flow]:
    """The demo's flows, made once: an admin's edits of them are kept on later runs."""
    made = []
    for spec in DEMO_FLOWS:
        if Flow.objects.filter(slug=spec["slug"]).exists():
            continue
        fields = {k: v for k, v in spec.items() if k not in ("kpis", "decision")}
        flow = Flow(**fields, technical_owner=owner, business_owner=owner)
        flow.full_clean()
        flow.save()
        flow.connections.set(Connection.objects.filter(slug__in=connection_slugs[:DEMO_FLOW_CONNECTIONS]))
        for metric, threshold, window in spec["kpis"]:
            FlowKpi.objects.create(flow=flow, metric=metric, threshold=Decimal(threshold), window_minutes=window)
        flow_kpi_rules_sync(flow=flow, user=owner)
        if spec["decision"]:
            decision, rationale = spec["decision"]
            flow_launch_decide(flow=flow, decision=decision, rationale=rationale, user=owner)
        made.append(flow)
    return made
