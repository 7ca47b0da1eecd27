"""The whole decision loop against the project served for real: the simulator's providers fail
some messages, the console decides to retry them, its attempt runner resends through the
simulator's send API, and the simulator plays the resends' receipts through the webhook path."""

from __future__ import annotations

import pytest

from dlrconsole.demo.management.commands.demo import (
    SENDER_ID,
    console_summary,
    ensure_demo_connections,
    ensure_demo_senders,
)
from dlrconsole.simulator import SendGateway, Simulator, SimulatorConfig, load_targets
from dlrconsole.simulator.traffic import DEFAULT_MIXES
from receipts.models import Connection, Message, OutboxEvent
from receipts.phones import PhoneNumber
from receipts.providers.registry import get_adapter
from receipts.services import MessageRegistration, connection_create, message_register
from retries.models import Attempt, ConnectionSender, Decision, Step
from retries.senders.generic_http import GenericHttpSender
from tests.factories import MessageFactory, product_token
from tests.worker import celery_worker, wait_until

SLUGS = ["sim-twilio", "sim-generic"]
# Half the traffic meets a phone that is off: plenty of retries in a short run.
HALF_ABSENT = {country: {"delivered": 1.0, "absent_subscriber": 1.0} for country in DEFAULT_MIXES}


@pytest.fixture
def api_token() -> str:
    return product_token("simulator")


@pytest.fixture
def connections() -> list[Connection]:
    return [
        connection_create(slug=slug, provider=provider, secrets=[get_adapter(provider).generate_secret()])
        for slug, provider in zip(SLUGS, ["twilio", "standard-webhooks"], strict=True)
    ]


def run_config(url: str, token: str, **overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "base_url": url, "token": token, "targets": load_targets(SLUGS), "rate": 20, "duration": 30,
        "time_scale": 0.05, "missing_rate": 0.0, "early_receipt_rate": 0.0,
    }  # fmt: skip
    return SimulatorConfig(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_a_resend_taken_by_the_send_api_is_played_by_the_simulator_not_registered(
    live_server, api_token, connections
) -> None:
    config = run_config(live_server.url, api_token, count=1, seed=5)
    original = MessageFactory(connection=connections[1], recipient="+33612345678", body="Your ACME code is 483920")
    lines: list[str] = []
    with SendGateway(config.targets, seed=5) as gateway:
        sent = GenericHttpSender({"url": gateway.url_for("sim-generic")}).send(
            to=original.recipient, body=original.body, sender_id="ACME", options={}, idempotency_key="k"
        )
        # What the console's attempt runner does with the reply.
        message_register(
            MessageRegistration(connection=connections[1], provider_message_id=sent.provider_message_id,
                                recipient=PhoneNumber(original.recipient, "FR"), chain_root=original)
        )  # fmt: skip

        report = Simulator(config, emit=lines.append, gateway=gateway).run()

    assert report.ok
    assert report.resends == 1
    assert report.responses[("register", 201)] == 1  # its own new message only
    resend = Message.objects.get(provider_message_id=sent.provider_message_id)
    assert resend.chain_root == original
    assert resend.receipts.exists()
    assert resend.status == report.expected_status[f"sim-generic:{sent.provider_message_id}"]
    assert any("[resend" in line for line in lines)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_temporary_failures_are_retried_through_the_send_api_and_the_resends_get_receipts(
    live_server, api_token, connections, default_rules
) -> None:
    Step.objects.filter(action="retry_same").update(delays=[1])  # beat runs each second in tests
    config = run_config(live_server.url, api_token, count=16, seed=11, country_mixes=HALF_ABSENT, resend_wait=10)
    with SendGateway(config.targets, seed=11) as gateway:
        for connection in connections:
            ConnectionSender.objects.create(connection=connection, kind="generic-http",
                                            config={"url": gateway.url_for(connection.slug)})  # fmt: skip
        with celery_worker(beat=True):
            report = Simulator(config, emit=lambda line: None, gateway=gateway).run()
            settled = wait_until(
                lambda: (
                    Message.objects.count() == report.started + report.resends
                    and not Attempt.objects.filter(outcome__in=["scheduled", "running"]).exists()
                    and not OutboxEvent.objects.filter(processed_at__isnull=True).exists()
                ),
                timeout=30,
            )

    assert report.ok, report.unexpected
    assert not report.stopped_because
    assert settled, [(a.chain_root_id, a.number, a.outcome, a.detail) for a in Attempt.objects.all()]
    assert report.resends == gateway.sent > 0
    assert gateway.replayed == 0  # each attempt sent once
    # Every message, original or resent, ends as its receipts say: the resends' receipts landed.
    landed = {
        f"{slug}:{pmid}": status
        for slug, pmid, status in Message.objects.values_list("connection__slug", "provider_message_id", "status")
    }
    assert landed == report.expected_status
    resends = Message.objects.filter(chain_root__isnull=False)
    assert resends.count() == report.resends
    assert all(resend.receipts.exists() for resend in resends)
    # Each chain starts with an original that failed for a temporary reason, retried by the rule.
    roots = Message.objects.filter(pk__in=resends.values("chain_root"))
    assert set(roots.values_list("reason", "error_class")) == {("absent_subscriber", "temporary")}
    assert all(Decision.objects.filter(message=root, action="retry_same").exists() for root in roots)
    assert resends.filter(status="delivered").exists()
    assert set(Attempt.objects.values_list("outcome", flat=True)) <= {"succeeded", "cancelled"}


@pytest.mark.django_db
def test_the_demo_points_each_connection_at_the_simulated_send_api() -> None:
    _, private_keys = ensure_demo_connections()
    targets = load_targets(list(Connection.objects.values_list("slug", flat=True)), private_keys=private_keys)
    with SendGateway(targets) as first:
        ensure_demo_senders(first, targets)
    with SendGateway(targets) as second:
        ensure_demo_senders(second, targets)  # a new port each run: updated, not duplicated

    senders = ConnectionSender.objects.select_related("connection")
    assert senders.count() == len(targets)
    for sender in senders:
        assert (sender.kind, sender.sender_id, sender.enabled) == ("generic-http", SENDER_ID, True)
        assert sender.config == {"url": second.url_for(sender.connection.slug)}


@pytest.mark.django_db
def test_the_demo_ends_with_what_the_console_made_of_the_run() -> None:
    original = MessageFactory(status="undelivered")
    MessageFactory(chain_root=original, connection=original.connection)
    Decision.objects.create(message=original, action="retry_same", state="scheduled", created_at=original.submitted_at)

    assert console_summary() == [
        "In the console: 2 messages (1 of them resends)",
        "  decisions by action: retry_same 1",
        "  attempts by outcome: none",
    ]
