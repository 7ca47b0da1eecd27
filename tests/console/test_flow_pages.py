"""The Launch pages: admins describe a flow with choices and get a reason when a value cannot
work (nothing stored), every change is in the audit log, KPIs become alert rules in one action,
a go/no-go is recorded with its reason, and a message of a flow without a go says so."""

from __future__ import annotations

import pytest
from django.test import Client

from alerts.models import AlertRule
from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from receipts.flows.models import Flow, LaunchDecision
from tests.factories import ConnectionFactory, MessageFactory, user_in_role

pytestmark = pytest.mark.django_db


def client_as(role: str) -> Client:
    client = Client()
    client.force_login(user_in_role(role))
    return client


def flow_form(**fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "Login OTP, France", "slug": "login-otp", "channel": "sms_fallback", "countries": "fr, be",
        "monthly_volume": "250000", "sla_rate": "95", "sla_seconds": "60", "adaptive_floor_seconds": "10",
        "priority": "critical",
    }  # fmt: skip
    values.update(fields)
    return values


def test_an_admin_describes_a_flow_and_the_change_is_audited() -> None:
    client = client_as(roles.ADMIN)
    route = ConnectionFactory(slug="fr-main")
    owner = user_in_role(roles.SUPPORT, "owner")
    response = client.post(
        "/console/launch/new/", flow_form(connections=[route.pk], technical_owner=owner.pk, business_owner=owner.pk)
    )
    assert response.status_code == 302, response.content.decode()
    flow = Flow.objects.get()
    assert (flow.countries, list(flow.connections.all()), flow.technical_owner) == (["BE", "FR"], [route], owner)
    assert AuditEntry.objects.filter(model="flows.flow", action="created").exists()
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="readiness-owners"' in page
    assert "BE through fr-main: never tested." in page


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"countries": "FR, XX"}, "unknown country “XX”"),
        ({"countries": ""}, "This field is required."),
        ({"sla_seconds": "2"}, "greater than or equal to 5"),
        ({"slug": "login otp"}, "Enter a valid “slug”"),
        ({"adaptive_sla": "on", "adaptive_floor_seconds": "90"}, "The floor must not be longer than the SLA."),
    ],
)
def test_a_flow_that_cannot_work_is_refused_with_its_reason_and_not_stored(fields, reason) -> None:
    response = client_as(roles.ADMIN).post("/console/launch/new/", flow_form(**fields))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Flow.objects.exists()


def test_support_cannot_open_the_launch_pages() -> None:
    Flow.objects.create(slug="login-otp", name="OTP", countries=["FR"], monthly_volume=1, sla_seconds=60)
    client = client_as(roles.SUPPORT)
    assert client.get("/console/launch/").status_code == 403
    assert client.get("/console/launch/login-otp/checklist/").status_code == 403


def test_kpis_are_saved_and_turned_into_alert_rules_in_one_action() -> None:
    client = client_as(roles.ADMIN)
    Flow.objects.create(slug="login-otp", name="OTP", countries=["FR"], monthly_volume=1, sla_seconds=60)
    kpis = {"delivery_rate_threshold": "95", "delivery_rate_window": "15", "missing_rate_window": "15",
            "p95_delivery_threshold": "30", "p95_delivery_window": "60"}  # fmt: skip
    assert client.post("/console/launch/login-otp/kpis/", kpis).status_code == 302
    refused = client.post("/console/launch/login-otp/kpis/", {**kpis, "delivery_rate_threshold": "101"})
    assert refused.status_code == 400
    assert client.post("/console/launch/login-otp/kpi-rules/", {}).status_code == 302
    assert sorted(AlertRule.objects.values_list("metric", "threshold")) == [("delivery_rate", 95), ("p95_delivery", 30)]


def test_a_decision_needs_a_reason_and_is_kept_with_its_snapshot() -> None:
    client = client_as(roles.ADMIN)
    Flow.objects.create(slug="login-otp", name="OTP", countries=["FR"], monthly_volume=1, sla_seconds=60)
    refused = client.post("/console/launch/login-otp/decide/", {"decision": "go", "rationale": ""})
    assert refused.status_code == 400
    assert (
        client.post("/console/launch/login-otp/decide/", {"decision": "no_go", "rationale": "No owners"}).status_code
        == 302
    )
    decision = LaunchDecision.objects.get()
    assert (decision.decision, decision.ready, len(decision.snapshot)) == ("no_go", False, 6)
    assert AuditEntry.objects.filter(model="flows.launchdecision", action="created").exists()
    checklist = client.get("/console/launch/login-otp/checklist/").content.decode()
    assert "No-go on" in checklist
    assert "No owners" in checklist


def test_a_message_registered_before_its_flow_s_go_is_flagged_on_its_page() -> None:
    message = MessageFactory(flow="login-otp", flow_not_live=True)
    page = client_as(roles.SUPPORT).get(f"/console/messages/{message.pk}/").content.decode()
    assert 'data-testid="flow-not-live"' in page


def test_the_fallback_test_on_a_live_route_is_refused_in_the_form_with_what_to_change() -> None:
    flow = Flow.objects.create(slug="login-otp", name="OTP", countries=["FR"], monthly_volume=1, sla_seconds=60)
    live = ConnectionFactory(slug="fr-live")
    flow.connections.set([live])
    response = client_as(roles.ADMIN).post(
        "/console/launch/login-otp/fallback-test/", {"route": f"FR:{live.pk}", "trigger": "failure"}
    )
    assert response.status_code == 400
    assert "fr-live carries live traffic: put it in test mode with test numbers" in response.content.decode()
    assert not flow.fallback_tests.exists()
