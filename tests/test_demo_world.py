"""The demo's simulated world: its policy and e-mail fallback channel, the fallback addresses
its product registers, and an escalation that ends in its own mail server (all on loopback)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.utils import timezone

from dlrconsole.demo.management.commands.demo import (
    GREY_ROUTE,
    Command,
    demo_slug,
    ensure_demo_connections,
    ensure_demo_grey_route,
    ensure_demo_senders,
)
from dlrconsole.demo.world import (
    DEMO_CHANNEL,
    DEMO_RULE,
    RETRY_AFTER_SECONDS,
    ensure_demo_fallback_channel,
    ensure_demo_policy,
)
from dlrconsole.simulator import SendGateway, Simulator, SimulatorConfig, Target, load_targets
from dlrconsole.simulator.mailbox import HOST, Mailbox
from dlrconsole.simulator.traffic import (
    CONVERSION_DELAY,
    CONVERSION_RATES,
    FALLBACK_EMAIL_FLOWS,
    fallback_email,
    plan_message,
)
from receipts.honesty import MIN_EXPECTED_CONVERSIONS, route_trust_scores
from receipts.models import Connection, Conversion, Message
from receipts.rollups import maintain
from receipts.rollups.maintain import bucket_start
from receipts.rollups.selectors import Period
from retries.attempts import attempts_run_due
from retries.feed.models import FeedEvent
from retries.models import Attempt, FallbackChannel, Rule
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory, product_token, user_in_role
from tests.test_attempts import fail

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as running:
        yield running


@pytest.fixture
def demo_world(default_rules: None, mailbox: Mailbox) -> Rule:
    return ensure_demo_policy(ensure_demo_fallback_channel(host=HOST, port=mailbox.port))


def test_the_demo_policy_retries_once_then_emails_then_tells_the_product_before_the_shipped_rules(demo_world):
    rule = demo_world
    steps = [(s.action, s.count, s.delays, s.fallback_channel and s.fallback_channel.slug) for s in rule.steps.all()]
    assert steps == [
        ("retry_same", 1, [RETRY_AFTER_SECONDS], None),
        ("fallback", 1, [], DEMO_CHANNEL),
        ("notify", 1, [], None),
    ]
    assert (rule.flows, rule.error_classes) == (sorted(FALLBACK_EMAIL_FLOWS), ["temporary"])
    shipped = Rule.objects.get(name__startswith="Temporary failure")
    assert list(Rule.objects.filter(error_classes__contains=["temporary"])) == [rule, shipped]


def test_the_fallback_channel_is_an_email_channel_on_the_demos_mail_server(demo_world, mailbox):
    channel = FallbackChannel.objects.get(slug=DEMO_CHANNEL)
    assert (channel.kind, channel.enabled, channel.config["host"], channel.config["port"]) == (
        "email", True, "127.0.0.1", mailbox.port,
    )  # fmt: skip


def test_setting_the_demo_up_again_points_at_the_new_port_and_keeps_the_steps(demo_world):
    step_ids = list(demo_world.steps.values_list("pk", flat=True))
    again = ensure_demo_policy(ensure_demo_fallback_channel(host=HOST, port=2525))
    assert again.pk == demo_world.pk
    assert list(again.steps.values_list("pk", flat=True)) == step_ids
    assert FallbackChannel.objects.get(slug=DEMO_CHANNEL).config["port"] == 2525
    assert Rule.objects.filter(name=DEMO_RULE).count() == 1


def test_sign_in_and_reset_messages_carry_a_fallback_address_and_the_others_none():
    config = SimulatorConfig(
        base_url="http://127.0.0.1:9", token="t", targets=[Target("generic-demo", "standard-webhooks", GENERIC_SECRET)]
    )
    rng = random.Random(7)
    plans = [plan_message(rng, config, now=datetime.now(UTC)) for _ in range(200)]
    with_address = {plan.flow for plan in plans if plan.fallback_email}
    assert with_address == set(FALLBACK_EMAIL_FLOWS)
    assert all(plan.fallback_email.endswith("@example.net") for plan in plans if plan.flow in FALLBACK_EMAIL_FLOWS)
    assert all(not plan.fallback_email for plan in plans if plan.flow not in FALLBACK_EMAIL_FLOWS)


def test_an_escalation_reaches_the_demos_mail_server(demo_world, mailbox):
    connection = ConnectionFactory(slug="generic-demo")
    target = Target(connection.slug, "standard-webhooks", GENERIC_SECRET)
    with SendGateway([target]) as gateway:
        ensure_demo_senders(gateway, [target])
        connection.refresh_from_db()
        assert connection.test_mode == "simulator"  # pilots and fallback tests may use the demo's routes
        address = fallback_email("login-otp", "otp-1a2b3c4d")
        otp = MessageFactory(
            connection=connection, flow="login-otp", fallback_email=address, body="Your code is 424242"
        )
        fail(otp)  # absent subscriber: temporary
        # Bounded: the resend after its wait, its failure, then the e-mail.
        later = timezone.now() + timedelta(seconds=RETRY_AFTER_SECONDS + 1)
        assert attempts_run_due(now=later) == 1
        resend = Message.objects.get(chain_root=otp)
        assert gateway.adopted.get_nowait().provider_message_id == resend.provider_message_id
        fail(resend)
        for _ in range(3):
            if mailbox.count:
                break
            attempts_run_due(now=later + timedelta(seconds=1))
    [mail] = mailbox.mails
    assert (mail.recipients, mail.body.strip(), mail.subject) == ((address,), "Your code is 424242", "Your ACME code")
    assert list(Attempt.objects.order_by("number").values_list("action", "outcome")) == [
        ("retry_same", "succeeded"), ("fallback", "succeeded"),
    ]  # fmt: skip
    assert "message.fallback_sent" in set(FeedEvent.objects.values_list("type", flat=True))


def test_after_the_traffic_the_demo_keeps_serving_until_the_server_stops():
    out = StringIO()
    # Stands in for runserver: a process that ends by itself (Ctrl-C's part in the real run).
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    Command(stdout=out)._serve_until_interrupted(server, "http://127.0.0.1:8000")
    said = out.getvalue()
    assert "The console keeps serving at http://127.0.0.1:8000/" in said
    assert "Ctrl-C stops it" in said
    assert said.rstrip().endswith("The server exited with code 0.")


def test_the_demo_describes_its_flows_once_with_kpi_rules_and_a_go_for_the_sign_in_code(default_rules):
    from alerts.models import AlertRule
    from dlrconsole.demo.world import ensure_demo_flows
    from receipts.flows.models import Flow

    owner = user_in_role("admin", "demo")
    routes = [ConnectionFactory().slug for _ in range(3)]
    assert [flow.slug for flow in ensure_demo_flows(owner, routes)] == ["login-otp", "marketing"]
    otp = Flow.objects.get(slug="login-otp")
    assert (otp.launch, otp.decisions.get().decided_by, otp.connections.count()) == ("go", owner, 2)
    assert Flow.objects.get(slug="marketing").launch == "undecided"
    assert AlertRule.objects.filter(kpi__isnull=False).count() == 3
    Flow.objects.filter(slug="marketing").update(name="Edited by an admin")
    assert ensure_demo_flows(owner, routes) == []
    assert Flow.objects.get(slug="marketing").name == "Edited by an admin"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demos_product_reports_codes_entered_only_for_real_deliveries_and_the_grey_route_is_caught(
    live_server,
) -> None:
    """Two of the demo's honest routes and its grey route, played for real time (a handset's
    seconds are what the timing signal reads), 120 messages: the simulated product reports the
    codes entered through the API, and the grey route's "delivered" converts far less."""
    ensure_demo_connections()
    ensure_demo_grey_route()
    honest = [demo_slug("standard-webhooks"), demo_slug("twilio")]
    config = SimulatorConfig(
        base_url=live_server.url, token=product_token("demo-product"), targets=load_targets([*honest, GREY_ROUTE]),
        rate=10, count=120, seed=17, duration=30, drain_grace=90, missing_rate=0.0, lying=frozenset({GREY_ROUTE}),
    )  # fmt: skip
    started = timezone.now()

    report = Simulator(config, emit=lambda line: None).run()

    assert report.ok, report.unexpected
    assert report.started == report.completed == 120
    conversions = list(Conversion.objects.select_related("message__connection"))
    assert len(conversions) == report.conversions > 0
    # Only what was delivered (no final receipt is lost in this run), only codes, a few seconds later.
    assert {c.message.status for c in conversions} == {"delivered"}
    assert {c.message.flow for c in conversions} <= set(CONVERSION_RATES)
    assert {c.kind for c in conversions} == {Conversion.Kind.OTP_ENTERED}
    for conversion in conversions:
        assert conversion.converted_at - conversion.message.submitted_at >= timedelta(seconds=CONVERSION_DELAY[0])
        assert conversion.converted_at <= conversion.received_at
    codes = Message.objects.filter(flow__in=CONVERSION_RATES, status="delivered")
    share = {
        slug: sum(c.message.connection.slug == slug for c in conversions) / codes.filter(connection__slug=slug).count()
        for slug in [*honest, GREY_ROUTE]
    }
    # A seeded run: the same draws each time, about 20 codes per route.
    assert all(share[slug] > 0.75 for slug in honest), share
    # Some of the grey route's messages did arrive, far fewer than it says.
    assert 0 < share[GREY_ROUTE] < 0.6 * min(share[slug] for slug in honest), share

    while maintain.roll_up():
        pass
    period = Period(bucket_start(started, "h"), bucket_start(timezone.now(), "h") + timedelta(hours=1), "h")
    scores = {s.route["connection"]: s for s in route_trust_scores(period=period, group_by=("connection",))}
    by_slug = {slug: scores[Connection.objects.get(slug=slug).pk] for slug in [*honest, GREY_ROUTE]}
    grey = by_slug[GREY_ROUTE]
    assert grey.signals.expected_conversions is not None
    assert grey.signals.expected_conversions >= MIN_EXPECTED_CONVERSIONS  # the conversion signal is weighed
    # Under 0.8 of what the flows' rates predict, the score says so in words.
    assert grey.signals.conversions < 0.8 * grey.signals.expected_conversions
    assert any(reason.startswith("Conversions: ") for reason in grey.reasons), grey.reasons
    assert grey.level == "untrusted"
    for slug in honest:
        assert by_slug[slug].level == "trusted", (slug, by_slug[slug].reasons)
        assert by_slug[slug].score > grey.score  # type: ignore[operator]
