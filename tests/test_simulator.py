"""The provider simulator against the project served for real: everything it sends is accepted
through the API and the webhook path, and lands as the providers meant it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dlrconsole.demo.management.commands.demo import demo_kinds, demo_slug, ensure_demo_connections
from dlrconsole.simulator import Simulator, SimulatorConfig, SimulatorError, check_base_url, load_targets
from dlrconsole.simulator.players.registry import get_player, player_kinds
from dlrconsole.simulator.players.telnyx import public_key as telnyx_public_key
from dlrconsole.simulator.traffic import DEFAULT_MIXES
from receipts.models import Connection, Message, Receipt
from receipts.providers.registry import get_adapter
from receipts.services import connection_create
from tests.factories import product_token

SLUGS = ["sim-twilio", "sim-generic"]


@pytest.fixture
def api_token() -> str:
    return product_token("simulator")


@pytest.fixture
def connections() -> list[Connection]:
    return [
        connection_create(slug=slug, provider=provider, secrets=[get_adapter(provider).generate_secret()])
        for slug, provider in zip(SLUGS, ["twilio", "standard-webhooks"], strict=True)
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_simulated_traffic_lands_through_the_real_webhook_path(live_server, api_token, connections) -> None:
    config = SimulatorConfig(
        base_url=live_server.url,
        token=api_token,
        targets=load_targets(SLUGS),
        rate=50,
        duration=30,
        count=24,
        seed=7,
        duplicate_rate=0.3,
        out_of_order_rate=0.3,
        early_receipt_rate=0.3,
        bad_signature_rate=0.25,
        time_scale=0.05,
    )
    lines: list[str] = []

    report = Simulator(config, emit=lines.append).run()

    assert report.unexpected == []
    assert report.ok
    assert report.started == report.completed == 24
    assert not report.stopped_because
    # The only non-2xx answers are the 401s to the deliberately forged posts.
    refused = {key: n for key, n in report.responses.items() if not 200 <= key[1] < 300}
    assert set(refused) == {("forged", 401)}
    # The run exercised what it is for: provider retries, late receipts, parking.
    assert report.outcomes["duplicates"] > 0
    assert report.outcomes["late"] > 0
    assert report.outcomes["parked"] > 0

    assert Message.objects.count() == 24
    assert set(Message.objects.values_list("connection__slug", flat=True)) == set(SLUGS)
    assert Receipt.objects.count() == report.outcomes["received"] - report.outcomes["duplicates"]
    assert not Receipt.objects.filter(message__isnull=True).exists(), "every parked receipt was linked"
    # Whatever the posting order, each message ends in the status its receipts imply.
    landed = {
        f"{slug}:{pmid}": status
        for slug, pmid, status in Message.objects.values_list("connection__slug", "provider_message_id", "status")
    }
    assert landed == report.expected_status
    assert any("forged signature" in line for line in lines)


@pytest.mark.django_db(transaction=True)
def test_simulate_command_prints_a_summary(live_server, api_token, connections) -> None:
    out = StringIO()
    call_command(
        "simulate",
        "--url",
        live_server.url,
        "--token",
        api_token,
        "--connection",
        ",".join(SLUGS),
        "--count",
        "4",
        "--rate",
        "20",
        "--time-scale",
        "0.05",
        "--seed",
        "3",
        stdout=out,
    )
    output = out.getvalue()
    assert "HTTP status counts:" in output
    assert "register 201 x4" in output
    assert Message.objects.count() == 4


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000", "http://127.0.0.2"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8000", "ftp://127.0.0.1", "127.0.0.1:8000"])
def test_other_urls_are_refused_without_allow_remote(url: str) -> None:
    with pytest.raises(SimulatorError):
        check_base_url(url)


def test_remote_url_is_accepted_when_allowed() -> None:
    assert check_base_url("https://dlr.example.com/", allow_remote=True) == "https://dlr.example.com"


@pytest.mark.django_db
def test_disabled_or_missing_connections_are_refused(connections) -> None:
    Connection.objects.filter(slug="sim-twilio").update(enabled=False)
    with pytest.raises(SimulatorError, match="disabled"):
        load_targets(["sim-twilio"])
    with pytest.raises(SimulatorError, match="no connection"):
        load_targets(["nope"])


@pytest.mark.django_db(transaction=True)
def test_a_refused_token_stops_the_run_before_any_traffic(live_server, connections) -> None:
    config = SimulatorConfig(base_url=live_server.url, token="not-a-token", targets=load_targets(SLUGS), count=3)
    with pytest.raises(SimulatorError, match="refused the token"):
        Simulator(config, emit=lambda line: None).run()
    assert not Message.objects.exists()
    assert not Receipt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_simulate_command_plays_telnyx_with_its_private_key_and_a_country_mix(live_server, api_token, tmp_path) -> None:
    player = get_player("telnyx")
    public, private = player.demo_keys()
    connection_create(slug="sim-telnyx", provider="telnyx", secrets=[public])
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({country: {"absent_subscriber": 1} for country in DEFAULT_MIXES}))
    out = StringIO()

    call_command(
        *("simulate", "--url", live_server.url, "--token", api_token, "--connection", "sim-telnyx"),
        *("--count", "5", "--rate", "20", "--time-scale", "0.05", "--seed", "1", "--missing-rate", "0"),
        *("--telnyx-private-key", private, "--country-mix", str(mix)),
        stdout=out,
    )

    assert "register 201 x5" in out.getvalue()
    assert set(Message.objects.values_list("status", "error_code")) == {("undelivered", "40006")}


@pytest.mark.django_db
def test_simulate_command_refuses_telnyx_without_its_private_key() -> None:
    public, _ = get_player("telnyx").demo_keys()
    connection_create(slug="sim-telnyx", provider="telnyx", secrets=[public])
    with pytest.raises(CommandError, match="--telnyx-private-key"):
        call_command("simulate", "--url", "http://127.0.0.1:9", "--token", "t", "--connection", "sim-telnyx")


@pytest.mark.django_db
def test_demo_creates_a_connection_per_playable_provider_and_a_fresh_telnyx_key_each_run() -> None:
    created, private_keys = ensure_demo_connections()

    assert sorted(created) == sorted(demo_slug(kind) for kind in demo_kinds())
    assert "aws-sns" not in demo_kinds()
    assert set(demo_kinds()) == set(player_kinds()) - {"aws-sns"}
    first = Connection.objects.get(slug="telnyx-demo").secrets
    assert first == [telnyx_public_key(private_keys["telnyx"])]

    created_again, private_keys_again = ensure_demo_connections()

    assert created_again == []
    assert Connection.objects.get(slug="telnyx-demo").secrets == [telnyx_public_key(private_keys_again["telnyx"])]
    assert private_keys_again["telnyx"] != private_keys["telnyx"]
    targets = load_targets([demo_slug(kind) for kind in demo_kinds()], private_keys=private_keys_again)
    assert {target.provider for target in targets} == set(demo_kinds())
