"""Pilots: test messages through each connection to each country, sent once each and a few at a
time, then the routes side by side with a recommended primary and fallback. On the simulator, a
route that fakes "delivered" looks best on paper and is left out, with the reason."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from dlrconsole.simulator import SendGateway, Simulator, SimulatorConfig, load_targets
from receipts.flows.models import Flow
from receipts.honesty import Signals, trust_score
from receipts.models import Connection, Message
from receipts.providers.registry import get_adapter
from receipts.services import connection_create
from retries.models import ConnectionSender, Pilot, PilotSend
from retries.pilots import (
    MAX_SENDS,
    PilotInvalid,
    RouteResult,
    pilot_cancel,
    pilot_comparison,
    pilot_create,
    pilot_send_due,
    recommend,
)
from tests.factories import ConnectionFactory, MessageFactory, product_token, user_in_role


def route(name: str, *, delivered: int, failed: int = 0, p95: float = 3.0, cost: str = "", **extra: Any) -> RouteResult:
    result = RouteResult(name, "FR", planned=delivered + failed, sent=delivered + failed, delivered=delivered,
                         failed=failed, delivery_seconds=[p95] * delivered, **extra)  # fmt: skip
    if cost:
        result.costs = {"EUR": Decimal(cost) * delivered}
    return result


def test_the_highest_delivery_rate_is_recommended_then_the_next_as_fallback() -> None:
    advice = recommend([route("b", delivered=18, failed=2), route("a", delivered=19, failed=1)])
    assert (advice.primary.connection, advice.fallback.connection) == ("a", "b")  # type: ignore[union-attr]
    assert advice.why[0] == "Primary: a: 95% delivered (19 of 20 finished), p95 3.0 s."
    assert advice.why[1] == "Fallback: b: 90% delivered (18 of 20 finished), p95 3.0 s."
    assert advice.enough_data


def test_on_equal_delivery_rates_the_faster_then_the_cheaper_route_wins() -> None:
    faster = recommend([route("slow", delivered=10, p95=9.0), route("fast", delivered=10, p95=2.0)])
    assert faster.primary.connection == "fast"  # type: ignore[union-attr]
    cheaper = recommend([route("dear", delivered=10, cost="0.08"), route("cheap", delivered=10, cost="0.05")])
    assert (cheaper.primary.connection, cheaper.fallback.connection) == ("cheap", "dear")  # type: ignore[union-attr]
    assert "0.050000 EUR per delivered" in cheaper.why[0]


def test_a_route_without_enough_finished_messages_is_not_recommended_and_says_so() -> None:
    few = route("few", delivered=3)
    few.sent = 10  # 7 still pending
    advice = recommend([few])
    assert advice.primary is None
    assert not advice.enough_data
    assert advice.why == [
        "No route can be recommended yet.",
        "Not enough data yet for few: 3 of 10 sent messages finished (needs 8).",
    ]


def test_a_route_whose_receipts_are_not_believable_is_left_out() -> None:
    liar = route("grey", delivered=10, p95=0.2)
    signals = Signals(delivered=10, finished=10, failed=0, fast=10, receipts_checked=10)
    liar.trust = trust_score({}, signals, min_delivered=5)
    advice = recommend([liar, route("honest", delivered=9, failed=1)])
    assert advice.primary.connection == "honest"  # type: ignore[union-attr]
    assert advice.fallback is None
    assert any(line.startswith("Left out grey: its receipts are not believable (trust 0/100)") for line in advice.why)


@pytest.mark.django_db
def test_a_pilot_is_refused_with_every_reason_before_anything_is_sent() -> None:
    without_api = ConnectionFactory(slug="no-api")
    with pytest.raises(PilotInvalid) as refused:
        pilot_create(name="p", countries=["FR", "ZZ"], connections=[without_api], messages_per_route=51)
    assert refused.value.errors == {
        "countries": "not ISO 3166 country codes: ZZ",
        "messages_per_route": "between 1 and 50",
        "connections": "no enabled send API on no-api: configure one first",
    }
    connections = [ConnectionFactory(test_mode="simulator") for _ in range(4)]
    for connection in connections:
        ConnectionSender.objects.create(connection=connection, kind="generic-http",
                                        config={"url": "https://send.example/"})  # fmt: skip
    with pytest.raises(PilotInvalid) as too_many:
        pilot_create(name="p", countries=["FR", "DE", "GB", "ES"], connections=connections, messages_per_route=50)
    assert too_many.value.errors == {
        "messages_per_route": f"a pilot sends at most {MAX_SENDS} messages in all (routes times messages)"
    }
    assert not Pilot.objects.exists()


SLUGS = ["sim-a", "sim-b", "sim-grey"]


@pytest.fixture
def sim_connections() -> list[Connection]:
    made = [
        connection_create(slug=slug, provider=provider, secrets=[get_adapter(provider).generate_secret()])
        for slug, provider in zip(SLUGS, ["standard-webhooks", "twilio", "standard-webhooks"], strict=True)
    ]
    Connection.objects.filter(pk__in=[c.pk for c in made]).update(test_mode="simulator")
    return list(Connection.objects.filter(pk__in=[c.pk for c in made]).order_by("slug"))


@pytest.mark.django_db(transaction=True)
def test_a_pilot_on_the_simulator_compares_the_routes_and_leaves_out_the_one_that_fakes_delivered(
    live_server, sim_connections
) -> None:
    config = SimulatorConfig(
        base_url=live_server.url, token=product_token("simulator"), targets=load_targets(SLUGS), rate=20,
        count=1, seed=3, duration=30, resend_wait=2.0, time_scale=1.0, missing_rate=0.0, early_receipt_rate=0.0,
        late_rate=0.0,
        country_mixes={"FR": {"delivered": 9, "absent_subscriber": 1}}, lying=frozenset({"sim-grey"}),
    )  # fmt: skip
    admin = user_in_role(roles.ADMIN, "pilot-admin")
    with SendGateway(config.targets, seed=3) as gateway:
        for connection in sim_connections:
            ConnectionSender.objects.create(connection=connection, kind="generic-http", sender_id="ACME",
                                            config={"url": gateway.url_for(connection.slug)})  # fmt: skip
        flow = Flow.objects.create(slug="login-otp", name="Login OTP", countries=["FR", "DE"], monthly_volume=1000,
                                   sla_seconds=60)  # fmt: skip
        flow.connections.set(sim_connections)
        pilot = pilot_create(name="Login OTP in France", flow=flow, countries=["FR"],
                             messages_per_route=6, user=admin)  # fmt: skip
        # The providers answer while the pilot sends, as they would.
        with ThreadPoolExecutor(max_workers=1) as pool:
            run = pool.submit(Simulator(config, emit=lambda line: None, gateway=gateway).run)
            # A pass sends at most ten; the task runs one a second until none is left.
            assert pilot_send_due(pilot.pk) == 8
            assert pilot_send_due(pilot.pk) == 0
            assert pilot_send_due(pilot.pk) == 0  # a pass run again sends nothing twice
            report = run.result()

    assert report.ok, report.unexpected
    assert gateway.sent == 18
    assert gateway.replayed == 0
    pilot.refresh_from_db()
    assert pilot.state == Pilot.State.SENT
    assert Message.objects.filter(flow=f"pilot-{pilot.pk}").count() == 18
    [france] = pilot_comparison(pilot)
    by_slug = {r.connection: r for r in france.routes}
    assert {slug: r.sent for slug, r in by_slug.items()} == {"sim-a": 6, "sim-b": 6, "sim-grey": 6}
    assert all(r.finished == 6 for r in by_slug.values())

    grey = by_slug["sim-grey"]
    # Every "delivered" dated minutes before it was sent; how fast it came back depends on the
    # machine running the test, so that is not asserted here (test_route_honesty.py does).
    assert (grey.delivered, grey.backdated) == (6, 6)
    assert grey.trust is not None
    assert grey.trust.level == "untrusted"
    advice = france.recommendation
    assert advice.fallback is not None, "\n".join(advice.why)
    assert {advice.primary.connection, advice.fallback.connection} == {"sim-a", "sim-b"}  # type: ignore[union-attr]
    assert any(line.startswith("Left out sim-grey") for line in advice.why)
    assert all(r.ttd_p50 and r.ttd_p50 > 1 for slug, r in by_slug.items() if slug != "sim-grey")
    # Who started it is in the audit log.
    entry = AuditEntry.objects.filter(model="retries.pilot", object_id=str(pilot.pk)).earliest("at")
    assert (entry.action, entry.user) == ("created", admin)


@pytest.mark.django_db
def test_the_pilot_pages_start_watch_and_cancel_a_pilot(client) -> None:
    connection = ConnectionFactory(slug="route-a", test_mode="test", test_numbers=["+33612345678", "+447400123456"])
    ConnectionSender.objects.create(connection=connection, kind="generic-http", config={"url": "https://send.example/"})
    admin = user_in_role(roles.ADMIN, "pilot-admin", password="pw")
    client.force_login(admin)

    refused = client.post(reverse("console:pilots"), {"name": "x", "countries": ["FR"], "connections": [connection.pk],
                                                       "messages_per_route": 99, "body": "hi"})  # fmt: skip
    assert refused.status_code == 400
    assert "Ensure this value is less than or equal to 50." in refused.content.decode()

    started = client.post(
        reverse("console:pilots"),
        {"name": "OTP FR", "countries": ["FR"], "connections": [connection.pk], "messages_per_route": 3,
         "body": "Test"},
    )  # fmt: skip
    pilot = Pilot.objects.get()
    assert started.status_code == 302
    assert started.headers["Location"] == reverse("console:pilot", args=[pilot.pk])
    assert Counter(PilotSend.objects.values_list("recipient", flat=True)) == {"+33612345678": 3}

    page = client.get(reverse("console:pilot", args=[pilot.pk]))
    assert page.status_code == 200
    assert 'hx-trigger="every 3s"' in page.content.decode()
    assert "0 sent, 3 waiting to be sent" in page.content.decode()

    client.post(reverse("console:pilot-cancel", args=[pilot.pk]))
    pilot.refresh_from_db()
    assert pilot.state == Pilot.State.CANCELLED
    assert pilot_cancel(pilot) == 0
    assert set(PilotSend.objects.values_list("outcome", "error")) == {("failed", "cancelled")}
    cancelled = AuditEntry.objects.filter(model="retries.pilot", action="changed").latest("at")
    assert cancelled.user == admin
    assert any("ancelled" in str(change["new"]) for change in cancelled.changes), cancelled.changes

    support = user_in_role(roles.SUPPORT, "support-user")
    client.force_login(support)
    assert client.get(reverse("console:pilots")).status_code == 403


# Pilots of a flow


def flow_with_routes(*slugs: str, countries: tuple[str, ...] = ("FR", "DE")) -> Flow:
    flow = Flow.objects.create(slug="login-otp", name="Login OTP", countries=list(countries), monthly_volume=1000,
                               sla_seconds=60)  # fmt: skip
    routes = [ConnectionFactory(slug=slug, test_mode="simulator") for slug in slugs]
    for connection in routes:
        ConnectionSender.objects.create(connection=connection, kind="generic-http",
                                        config={"url": "https://send.example/"})  # fmt: skip
    flow.connections.set(routes)
    return flow


@pytest.mark.django_db
def test_a_pilot_of_a_flow_takes_the_flow_s_countries_and_connections_unless_given_fewer() -> None:
    flow = flow_with_routes("fr-main", "fr-backup")
    pilot = pilot_create(name="OTP routes", flow=flow, messages_per_route=2)
    assert (pilot.flow, pilot.flow_slug, pilot.countries) == (flow, "login-otp", ["DE", "FR"])
    assert sorted(c.slug for c in pilot.connections.all()) == ["fr-backup", "fr-main"]
    assert PilotSend.objects.filter(pilot=pilot).count() == 8
    main = Connection.objects.get(slug="fr-main")
    fewer = pilot_create(name="France only", flow=flow, countries=["FR"], connections=[main], messages_per_route=2)
    assert set(PilotSend.objects.filter(pilot=fewer).values_list("connection__slug", "country")) == {("fr-main", "FR")}


@pytest.mark.django_db
def test_a_pilot_of_a_flow_may_not_try_a_country_or_connection_the_flow_does_not_have() -> None:
    flow = flow_with_routes("fr-main")
    stranger = ConnectionFactory(slug="us-cheap", test_mode="simulator")
    ConnectionSender.objects.create(connection=stranger, kind="generic-http", config={"url": "https://send.example/"})
    with pytest.raises(PilotInvalid) as refused:
        pilot_create(name="p", flow=flow, countries=["FR", "US"], connections=[stranger], messages_per_route=2)
    assert refused.value.errors == {
        "countries": "not among the countries of the flow “Login OTP” (DE, FR): US",
        "connections": "not among the connections of the flow “Login OTP” (fr-main): us-cheap",
    }
    assert not Pilot.objects.exists()


def finish(pilot: Pilot, delivered: dict[str, int]) -> None:
    """Each send of the pilot sent and finished: the first `delivered[slug]` delivered, the rest undelivered."""
    done: Counter[str] = Counter()
    for send in PilotSend.objects.filter(pilot=pilot).select_related("connection").order_by("id"):
        ok = done[send.connection.slug] < delivered[send.connection.slug]
        done[send.connection.slug] += 1
        send.message = MessageFactory(
            connection=send.connection, flow=pilot.message_flow, country=send.country, recipient=send.recipient,
            status="delivered" if ok else "undelivered", reason="" if ok else "absent_subscriber",
        )  # fmt: skip
        send.outcome = PilotSend.Outcome.SENT
        send.save()


@pytest.mark.django_db
def test_a_pilot_is_started_from_its_flow_s_page_and_the_flow_shows_what_it_recommends(client) -> None:
    flow = flow_with_routes("fr-main", "fr-backup", countries=("FR",))
    client.force_login(user_in_role(roles.ADMIN, "pilot-admin"))
    page = client.get(reverse("console:flow", args=["login-otp"])).content.decode()
    assert "No pilot yet" in page
    assert 'href="/console/pilots/?flow=login-otp#new-heading"' in page

    form = client.get("/console/pilots/?flow=login-otp").content.decode()
    assert '<option value="login-otp" selected>Login OTP</option>' in form
    assert '<option value="FR" selected>' in form
    assert form.count("checked") == 2  # both of the flow's connections

    outside = client.post("/console/pilots/", {"name": "x", "flow": "login-otp", "countries": ["US"],
                                                "messages_per_route": 5, "body": "Test"})  # fmt: skip
    assert outside.status_code == 400
    assert "not among the countries of the flow “Login OTP” (FR): US" in outside.content.decode()
    without_flow = client.post("/console/pilots/", {"name": "x", "messages_per_route": 5, "body": "Test"})
    assert without_flow.status_code == 400
    assert "This field is required (or choose a flow)." in without_flow.content.decode()

    started = client.post("/console/pilots/", {"name": "OTP routes", "flow": "login-otp", "messages_per_route": 5,
                                               "body": "Test"})  # fmt: skip
    pilot = Pilot.objects.get()
    assert started.status_code == 302
    assert (pilot.flow, pilot.countries) == (flow, ["FR"])
    finish(pilot, {"fr-main": 4, "fr-backup": 5})

    page = client.get(reverse("console:flow", args=["login-otp"])).content.decode()
    assert f'href="/console/pilots/{pilot.pk}/" data-testid="flow-pilot-link">OTP routes</a>' in page
    assert "<strong>Recommended:</strong> fr-backup as primary, fr-main as fallback." in page
    assert "Primary: fr-backup: 100% delivered (5 of 5 finished)." in page
    assert "Fallback: fr-main: 80% delivered (4 of 5 finished)." in page
    assert 'data-testid="pilot-flow">Login OTP</a>' in client.get(f"/console/pilots/{pilot.pk}/").content.decode()


# Real connections: only in test mode, only to their test numbers


@pytest.mark.django_db
def test_a_pilot_through_a_live_connection_or_without_a_test_number_in_a_country_is_refused(client) -> None:
    live = ConnectionFactory(slug="live-route")
    testing = ConnectionFactory(slug="test-route", test_mode="test", test_numbers=["+33612345678"])
    for connection in (live, testing):
        ConnectionSender.objects.create(connection=connection, kind="generic-http",
                                        config={"url": "https://send.example/"})  # fmt: skip
    with pytest.raises(PilotInvalid) as refused:
        pilot_create(name="p", countries=["DE", "FR"], connections=[live, testing], messages_per_route=1)
    assert refused.value.errors == {
        "connections": "live-route carries live traffic: put it in test mode with test numbers (on its page) before "
        "sending test messages through it; test-route is in test mode without a test number in DE: add one on its "
        "page."
    }
    client.force_login(user_in_role(roles.ADMIN, "pilot-admin"))
    page = client.post("/console/pilots/", {"name": "x", "countries": ["FR"], "connections": [live.pk],
                                            "messages_per_route": 1, "body": "Test"})  # fmt: skip
    assert page.status_code == 400
    assert "live-route carries live traffic" in page.content.decode()
    assert not Pilot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_pilot_through_a_connection_in_test_mode_texts_only_its_test_numbers_and_is_marked_as_test_traffic(
    gateway,
) -> None:
    route = ConnectionFactory(slug="fr-test", test_mode="test", test_numbers=["+33612345678", "+33698765432"])
    gateway.configure(route)  # a real local send API; the test settings allow loopback
    pilot = pilot_create(name="Real route", countries=["FR"], connections=[route], messages_per_route=3)
    assert pilot_send_due(pilot.pk) == 0
    assert Counter(send["to"] for send in gateway.sends.values()) == {"+33612345678": 2, "+33698765432": 1}
    assert set(Message.objects.values_list("flow", "client_reference")) == {
        (f"pilot-{pilot.pk}", f"pilot-{pilot.pk}-{route.pk}-FR-{n}") for n in range(3)
    }
    assert (pilot.test_numbers, pilot.simulated) == (["+33612345678", "+33698765432"], False)

    # Switched back to live traffic while a pilot waits: nothing more is sent through it.
    later = pilot_create(name="Again", countries=["FR"], connections=[route], messages_per_route=1)
    route.test_mode = "off"
    route.save()
    assert pilot_send_due(later.pk) == 0
    assert len(gateway.sends) == 3
    assert PilotSend.objects.get(pilot=later).error.startswith("fr-test carries live traffic")


@pytest.mark.django_db(transaction=True)
def test_a_pilot_never_reaches_a_loopback_send_api_unless_the_settings_allow_it(gateway, settings) -> None:
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    route = ConnectionFactory(slug="fr-test", test_mode="test", test_numbers=["+33612345678"])
    gateway.configure(route)
    pilot = pilot_create(name="Real route", countries=["FR"], connections=[route], messages_per_route=1)
    pilot_send_due(pilot.pk)
    assert gateway.requests == []
    assert "loopback" in PilotSend.objects.get(pilot=pilot).error
