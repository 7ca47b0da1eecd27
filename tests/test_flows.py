"""Flows: the receipt SLA comes from the flow (the settings stay the default) and, for an
adaptive flow, from its route's recent p99 time to delivery within a floor and the flow's SLA;
readiness is computed item by item from the live configuration; "Test the fallback" plays
the escalation end to end and keeps its evidence; go/no-go keeps its history with the
readiness snapshot; messages of a flow without a go are accepted and flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.flow_kpis import flow_kpi_rules_sync
from alerts.flow_launch import flow_launch_decide
from alerts.flow_readiness import flow_readiness
from alerts.models import AlertChannel, AlertRule
from alerts.reports.models import ReportSchedule
from dlrconsole import roles
from receipts.flows.models import FallbackTest, Flow, FlowKpi, RouteTiming
from receipts.models import Connection, Message
from receipts.rollups import maintain, route_timing
from receipts.sla import display_status, receipt_sla_seconds
from receipts.statuses import NO_RECEIPT, Status
from receipts.sweeps import sweep_missing_receipts
from retries.flow_fallback import FallbackTestRefused, flow_fallback_test_run
from retries.models import FallbackChannel, Rule, Step
from retries.policy_vocabulary import known_flows
from tests.factories import ConnectionFactory, MessageFactory, api_client_for, rule_with_steps, user_in_role
from tests.rollups.traffic import receive, register
from tests.send_api import FakeGateway

pytestmark = pytest.mark.django_db


def make_flow(**fields: object) -> Flow:
    values: dict[str, object] = {
        "slug": "login-otp", "name": "Login OTP, France", "countries": ["FR"], "monthly_volume": 100_000,
        "sla_seconds": 120,
    }  # fmt: skip
    values.update(fields)
    return Flow.objects.create(**values)


# The receipt SLA


def test_a_described_flow_s_sla_replaces_the_settings_and_the_default_stays_for_others(settings) -> None:
    settings.DLR_RECEIPT_SLA_SECONDS = 3600
    settings.DLR_FLOW_RECEIPT_SLA_SECONDS = {"login-otp": 600, "newsletter": 7200}
    make_flow(sla_seconds=90)
    assert receipt_sla_seconds("login-otp") == 90
    assert receipt_sla_seconds("newsletter") == 7200
    assert receipt_sla_seconds("anything-else") == 3600


def test_the_sweep_reports_a_missing_receipt_after_the_flow_s_own_sla(settings) -> None:
    settings.DLR_RECEIPT_SLA_SECONDS = 3600
    make_flow(sla_seconds=60)
    now = timezone.now()
    late = MessageFactory(flow="login-otp", status=Status.SENT, submitted_at=now - timedelta(seconds=61))
    MessageFactory(flow="login-otp", status=Status.SENT, submitted_at=now - timedelta(seconds=59))
    MessageFactory(flow="other", status=Status.SENT, submitted_at=now - timedelta(seconds=61))
    assert sweep_missing_receipts(now=now) == 1
    late.refresh_from_db()
    assert late.no_receipt_at == now
    assert display_status(late, now) == NO_RECEIPT


def test_a_route_learns_its_p99_time_to_delivery_from_the_rollups(monkeypatch) -> None:
    monkeypatch.setattr(route_timing, "MIN_DELIVERED", 10)
    connection = ConnectionFactory()
    now = timezone.now()
    # Nine delivered after about 4 s, one after about 40 s: the 99th percentile falls in the
    # 30-45 s bucket of the histogram, 30 + 15 * 0.9.
    for n, seconds in enumerate([4] * 9 + [40]):
        register(connection, f"m{n}", at=now - timedelta(seconds=seconds), number=f"+3361234{n:04d}")
        receive(connection, f"m{n}", Status.DELIVERED)
    maintain.roll_up()
    assert route_timing.route_timings_learn() == 1
    timing = RouteTiming.objects.get()
    assert (timing.connection_id, timing.country, timing.delivered) == (connection.pk, "FR", 10)
    assert 43 < timing.p99_seconds < 44.5


def test_a_route_with_too_few_deliveries_learns_nothing_and_loses_an_old_figure() -> None:
    connection = ConnectionFactory()
    RouteTiming.objects.create(
        connection=connection,
        country="FR",
        p99_seconds=5,
        delivered=500,
        computed_at=timezone.now() - timedelta(hours=1),
    )
    register(connection, "m1", at=timezone.now() - timedelta(seconds=3))
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    assert route_timing.route_timings_learn() == 0
    assert not RouteTiming.objects.exists()


def test_an_adaptive_flow_waits_its_route_s_p99_within_the_floor_and_the_sla() -> None:
    fast, slow, steady, unknown = ConnectionFactory.create_batch(4)
    make_flow(sla_seconds=120, adaptive_sla=True, adaptive_floor_seconds=10)
    for connection, p99 in ((fast, 2.5), (slow, 900.0), (steady, 43.2)):
        RouteTiming.objects.create(
            connection=connection, country="FR", p99_seconds=p99, delivered=500, computed_at=timezone.now()
        )
    assert receipt_sla_seconds("login-otp", connection_id=steady.pk, country="FR") == 44
    assert receipt_sla_seconds("login-otp", connection_id=fast.pk, country="FR") == 10  # the floor
    assert receipt_sla_seconds("login-otp", connection_id=slow.pk, country="FR") == 120  # the flow's SLA
    assert receipt_sla_seconds("login-otp", connection_id=unknown.pk, country="FR") == 120  # nothing learned
    assert receipt_sla_seconds("login-otp", connection_id=steady.pk, country="BE") == 120


def test_the_sweep_acts_on_an_adaptive_route_as_soon_as_its_p99_has_passed() -> None:
    steady, unknown = ConnectionFactory.create_batch(2)
    make_flow(sla_seconds=120, adaptive_sla=True, adaptive_floor_seconds=10)
    RouteTiming.objects.create(
        connection=steady, country="FR", p99_seconds=43.2, delivered=500, computed_at=timezone.now()
    )
    now = timezone.now()
    at_50s = now - timedelta(seconds=50)
    truly_late = MessageFactory(connection=steady, flow="login-otp", status=Status.SENT, submitted_at=at_50s)
    not_learned = MessageFactory(connection=unknown, flow="login-otp", status=Status.SENT, submitted_at=at_50s)
    assert sweep_missing_receipts(now=now) == 1
    assert Message.objects.get(no_receipt_at__isnull=False) == truly_late
    assert display_status(not_learned, now) == Status.SENT
    assert sweep_missing_receipts(now=now + timedelta(seconds=71)) == 1


def test_a_flow_s_floor_may_not_exceed_its_sla() -> None:
    flow = Flow(slug="x", name="X", countries=["FR"], monthly_volume=1, sla_seconds=30, adaptive_sla=True,
                adaptive_floor_seconds=60)  # fmt: skip
    with pytest.raises(ValidationError, match="floor"):
        flow.full_clean()


# Readiness


@pytest.fixture
def route() -> Connection:
    return ConnectionFactory(slug="fr-main", test_mode="test", test_numbers=["+33612345678"])


def items(flow: Flow) -> dict[str, list[str]]:
    return {item.key: item.missing for item in flow_readiness(flow).items}


def test_owners_are_missing_until_both_are_set_and_can_sign_in(route) -> None:
    flow = make_flow()
    assert items(flow)["owners"] == ["No technical owner.", "No business owner."]
    flow.technical_owner = user_in_role(roles.ADMIN, "tech")
    flow.business_owner = get_user_model().objects.create_user("biz", is_active=False)
    flow.save()
    assert items(flow)["owners"] == ["The business owner (biz) can no longer sign in."]


def test_kpis_need_alert_rules_made_in_one_action_and_kept_enabled_and_in_line(route) -> None:
    flow = make_flow(priority="critical")
    assert "No KPI" in items(flow)["kpis"][0]
    FlowKpi.objects.create(flow=flow, metric="delivery_rate", threshold=Decimal(95))
    FlowKpi.objects.create(flow=flow, metric="p95_delivery", threshold=Decimal(30), window_minutes=60)
    assert items(flow)["kpis"] == [
        "Delivery rate (%): no alert rule yet.",
        "95th percentile time to delivery (seconds): no alert rule yet.",
    ]
    channel = AlertChannel.objects.create(name="Ops", kind="email", config={"to": ["ops@example.com"]})
    rules = flow_kpi_rules_sync(flow=flow, user=None, channels=[channel])
    assert {(r.metric, r.comparison, r.threshold, r.flow, r.severity) for r in rules} == {
        ("delivery_rate", "below", Decimal(95), "login-otp", "critical"),
        ("p95_delivery", "above", Decimal(30), "login-otp", "critical"),
    }
    assert items(flow)["kpis"] == []
    AlertRule.objects.filter(metric="p95_delivery").update(enabled=False)
    FlowKpi.objects.filter(metric="delivery_rate").update(threshold=Decimal(97))
    missing = items(flow)["kpis"]
    assert "is disabled" in missing[1]
    assert "threshold is 95.00, the KPI says 97.00" in missing[0]
    flow_kpi_rules_sync(flow=flow, user=None)  # again: the rules follow the KPIs
    assert items(flow)["kpis"] == []
    assert AlertRule.objects.count() == 2


def test_a_policy_must_take_a_temporary_failure_on_every_country_and_connection(route) -> None:
    backup = ConnectionFactory(slug="fr-backup")
    flow = make_flow(countries=["FR", "BE"])
    assert items(flow)["policy"] == ["No connection chosen: name the routes the flow is sent through."]
    flow.connections.set([route, backup])
    Rule.objects.all().delete()
    rule_with_steps("OTP FR main", {"action": "retry_same"}, flows=["login-otp"], countries=["FR"])
    rule_with_steps("Anything on backup", {"action": "retry_same"}, position=2)
    Rule.objects.get(name="Anything on backup").connections.set([backup])
    assert items(flow)["policy"] == ["BE through fr-main: no enabled rule takes a temporary failure."]
    flow.channel = "sms_fallback"
    flow.save()
    assert items(flow)["policy"] == [
        "FR through fr-backup: rule “OTP FR main” has no fallback step.",
        "FR through fr-main: rule “OTP FR main” has no fallback step.",
        "BE through fr-backup: rule “Anything on backup” has no fallback step.",
        "BE through fr-main: no enabled rule takes a temporary failure.",
    ]


def test_support_alerts_and_reports_are_found_by_the_flow(route) -> None:
    flow = make_flow()
    assert items(flow)["support"] == ["No enabled alert rule of this flow notifies an enabled channel."]
    assert items(flow)["reports"] == ["No enabled scheduled report covers this flow (its own, or one grouped by flow)."]
    channel = AlertChannel.objects.create(name="Ops", kind="email", config={"to": ["ops@example.com"]})
    rule = AlertRule.objects.create(name="OTP", metric="delivery_rate", flow="login-otp", threshold=90)
    assert items(flow)["support"]  # a rule that tells nobody is not support
    rule.channels.add(channel)
    ReportSchedule.objects.create(name="Every flow", group_by="flow", recipients="ops@example.com")
    assert (items(flow)["support"], items(flow)["reports"]) == ([], [])


def test_every_item_links_to_where_to_fix_it(route) -> None:
    flow = make_flow()
    links = {item.key: item.fix_url for item in flow_readiness(flow).items}
    assert links == {
        "owners": "/console/launch/login-otp/edit/", "kpis": "/console/launch/login-otp/edit/",
        "policy": "/console/policies/", "fallback": "/console/launch/login-otp/",
        "support": "/console/alerts/rules/", "reports": "/console/reports/",
    }  # fmt: skip


# Test the fallback


@pytest.fixture
def escalation(route: Connection, gateway: FakeGateway, settings) -> FallbackChannel:
    """A retry on the same route, then an e-mail fallback."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    gateway.configure(route)
    channel = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    Rule.objects.all().delete()
    rule_with_steps(
        "OTP", {"action": "retry_same", "delays": [30]}, {"action": "fallback", "fallback_channel": channel},
        flows=["login-otp"], statuses=[NO_RECEIPT, "undelivered"],
    )  # fmt: skip
    return channel


def test_the_fallback_test_plays_the_escalation_and_keeps_what_was_sent_and_answered(
    route, gateway, escalation
) -> None:
    flow = make_flow()
    flow.connections.set([route])
    admin = user_in_role(roles.ADMIN, "launcher")
    test = flow_fallback_test_run(flow=flow, country="FR", connection=route, user=admin, fallback_email="qa@acme.test")
    assert test.outcome == FallbackTest.Outcome.PASSED
    assert test.summary == "The fallback reached the user after 2 attempt(s)."
    assert len(gateway.sends) == 1  # the resend, through the route's send API, without waiting its 30 s
    [email] = mail.outbox
    assert email.to == ["qa@acme.test"]
    texts = [entry["text"] for entry in test.evidence]
    assert texts[0] == "Test message registered on fr-main to a FR test number"
    assert "Attempt 1: resend through fr-main: Succeeded" in texts
    assert "Attempt 2: fallback through email: Succeeded" in texts
    assert any(text.startswith("rule “OTP”") for text in texts)
    assert "Undelivered receipt for" in texts[1]  # through ingestion, with the provider's own code
    assert [entry["at"] for entry in test.evidence] == sorted(entry["at"] for entry in test.evidence)
    assert (test.run_by, test.message.flow, test.message.client_reference) == (admin, "login-otp", "fallback-test")
    assert [send["to"] for send in gateway.sends.values()] == ["+33612345678"]  # the route's test number
    assert test.message.recipient == "+33612345678"
    assert items(flow)["fallback"] == []


def test_the_fallback_test_refuses_a_live_route_or_an_escalation_through_one_and_sends_nothing(
    route, gateway, escalation
) -> None:
    live = ConnectionFactory(slug="fr-live")
    flow = make_flow()
    flow.connections.set([route, live])
    with pytest.raises(FallbackTestRefused, match="fr-live carries live traffic: put it in test mode"):
        flow_fallback_test_run(flow=flow, country="FR", connection=live, user=None)
    Rule.objects.all().delete()
    rule_with_steps("Reroute", {"action": "retry_other", "target_connection": live}, flows=["login-otp"])
    with pytest.raises(FallbackTestRefused, match="fr-live carries live traffic"):
        flow_fallback_test_run(flow=flow, country="FR", connection=route, user=None)
    route.test_numbers = ["+447400123456"]
    route.save()
    with pytest.raises(FallbackTestRefused, match="fr-main is in test mode without a test number in FR"):
        flow_fallback_test_run(flow=flow, country="FR", connection=route, user=None)
    assert (Message.objects.count(), FallbackTest.objects.count(), gateway.requests) == (0, 0, [])


def test_a_fallback_test_played_on_missing_receipts_without_a_fallback_step_fails_and_says_so(route, gateway) -> None:
    gateway.configure(route)
    Rule.objects.all().delete()
    rule_with_steps("Retry once", {"action": "retry_same"}, flows=["login-otp"], statuses=[NO_RECEIPT])
    flow = make_flow()
    flow.connections.set([route])
    test = flow_fallback_test_run(flow=flow, country="FR", connection=route, user=None, trigger="no_receipt")
    assert test.outcome == FallbackTest.Outcome.FAILED
    assert test.summary == "The escalation ended after 1 attempt(s) without a fallback reaching the user."
    assert "taken as missing" in test.evidence[1]["text"]
    assert items(flow)["fallback"] == [f"FR through fr-main: the last test failed ({test.summary})"]


def test_a_passed_fallback_test_goes_stale_when_a_retry_rule_or_the_flow_s_connections_change_after_it(
    route, gateway, escalation, time_machine
) -> None:
    time_machine.move_to(datetime(2031, 3, 2, 9, 0, tzinfo=UTC), tick=False)
    flow = make_flow()
    flow.connections.set([route])
    Rule.objects.create(name="Another flow's rule", flows=["newsletter"])
    time_machine.move_to(datetime(2031, 3, 2, 10, 0, tzinfo=UTC), tick=False)
    flow_fallback_test_run(flow=flow, country="FR", connection=route, user=None, fallback_email="qa@acme.test")
    assert items(flow)["fallback"] == []
    time_machine.move_to(datetime(2031, 3, 3, 8, 30, tzinfo=UTC), tick=False)
    Rule.objects.filter(name="Another flow's rule").get().save()  # not a rule of this flow: still tested
    flow.launch = "go"
    flow.save()  # a change to the flow that is not its connections
    assert items(flow)["fallback"] == []

    step = Step.objects.get(rule__name="OTP", action="retry_same")
    step.delays = [60]
    step.save()
    assert items(flow)["fallback"] == [
        "FR through fr-main: tested on 2031-03-02 10:00, before the retry rule “OTP” changed on 2031-03-03 08:30: "
        "test again."
    ]
    time_machine.move_to(datetime(2031, 3, 3, 9, 0, tzinfo=UTC), tick=False)
    flow_fallback_test_run(flow=flow, country="FR", connection=route, user=None, fallback_email="qa@acme.test")
    assert items(flow)["fallback"] == []
    time_machine.move_to(datetime(2031, 3, 4, 9, 0, tzinfo=UTC), tick=False)
    flow.connections.add(ConnectionFactory(slug="fr-backup"))
    assert items(flow)["fallback"] == [
        "FR through fr-backup: never tested.",
        "FR through fr-main: tested on 2031-03-03 09:00, before the flow's connections changed on 2031-03-04 09:00: "
        "test again.",
    ]


# Go/no-go


def test_go_no_go_keeps_who_when_why_and_the_readiness_then_with_history(route) -> None:
    flow = make_flow()
    owner = user_in_role(roles.ADMIN, "owner")
    first = flow_launch_decide(flow=flow, decision="no_go", rationale="Owners missing.", user=owner)
    flow.technical_owner = flow.business_owner = owner
    flow.save()
    second = flow_launch_decide(flow=flow, decision="go", rationale="Accepted: reports next week.", user=owner)
    assert list(flow.decisions.all()) == [second, first]
    assert (first.ready, second.ready) == (False, False)
    owners_then = next(item for item in first.snapshot if item["key"] == "owners")
    owners_now = next(item for item in second.snapshot if item["key"] == "owners")
    assert (owners_then["ok"], owners_now["ok"]) == (False, True)
    assert owners_then["missing"] == ["No technical owner.", "No business owner."]
    flow.refresh_from_db()
    assert flow.launch == "go"
    assert second.decided_by == owner


def test_a_decision_without_a_reason_is_refused_and_changes_nothing(route) -> None:
    flow = make_flow()
    with pytest.raises(ValidationError, match="Say why"):
        flow_launch_decide(flow=flow, decision="go", rationale="  ", user=None)
    flow.refresh_from_db()
    assert (flow.launch, flow.decisions.count()) == ("undecided", 0)


# Registration of a flow without a go


def register_through_api(client, flow: str) -> dict:
    response = client.post(
        "/api/v1/messages/",
        {"connection": "fr-main", "provider_message_id": f"p-{flow}", "to": "+33612345678", "flow": flow},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_message_of_a_flow_without_a_go_is_accepted_and_flagged(route) -> None:
    client = api_client_for(user_in_role(roles.PRODUCT, "product"))
    make_flow(slug="login-otp")
    make_flow(slug="live", name="Live", launch="go")
    assert register_through_api(client, "login-otp")["flow_not_live"] is True
    assert register_through_api(client, "live")["flow_not_live"] is False
    assert register_through_api(client, "not-described")["flow_not_live"] is False
    flagged = client.get("/api/v1/messages/?flow_not_live=true").json()["results"]
    assert [m["flow"] for m in flagged] == ["login-otp"]


def test_a_described_flow_is_a_choice_of_the_policy_editor_before_any_message() -> None:
    make_flow(slug="card-otp")
    assert "card-otp" in known_flows()
