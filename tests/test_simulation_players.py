"""Every simulator player speaks its provider's language: its requests pass the provider
adapter's own verification and parse back to what was meant, its fates end in the right
normalized status with error codes the catalog knows, and a run of all of them against the
project served for real lands exactly as planned."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from dlrconsole.simulator import Simulator, SimulatorConfig, SimulatorError, load_targets
from dlrconsole.simulator.base import FAILURE_REASONS, FATES, Delivery, Event, OutgoingRequest, Player, Target
from dlrconsole.simulator.players.aws_sns import signer
from dlrconsole.simulator.players.registry import get_player, player_kinds
from dlrconsole.simulator.players.telnyx import public_key
from dlrconsole.simulator.traffic import MessagePlan
from receipts.errors import catalog_entry
from receipts.models import Message, Receipt
from receipts.providers import sns_signature
from receipts.providers.base import SignatureError, WebhookRequest
from receipts.providers.registry import get_adapter
from receipts.services import connection_create
from receipts.statuses import FAILURE_STATUSES, Status
from tests.factories import product_token

KINDS = player_kinds()
# Where a provider has no status of its own for an expiry, it says so with another one.
EXPIRED_AS = {"twilio": Status.FAILED, "plivo": Status.UNDELIVERED}
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
Keys = Callable[[str], tuple[str, str, str]]


def self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=36500))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns_cert_url(settings: Any) -> Iterator[str]:
    """A loopback server plays the SNS host serving the signing certificate (tests only)."""
    pem = self_signed(SNS_KEY)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(pem)))
            self.end_headers()
            self.wfile.write(pem)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.DLR_SNS_CERT_HOST_PATTERN = r"127\.0\.0\.1:\d+"
    settings.DLR_SNS_CERT_URL_SCHEMES = ["http"]
    sns_signature.clear_cache()
    yield f"http://127.0.0.1:{server.server_address[1]}/SimpleNotificationService-loopback.pem"
    sns_signature.clear_cache()
    server.shutdown()
    server.server_close()


@pytest.fixture
def keys(sns_cert_url: str) -> Keys:
    """kind → (connection secret, private key for load_targets or "", the key the player signs with)."""

    def keys_for(kind: str) -> tuple[str, str, str]:
        player = get_player(kind)
        if kind == "aws-sns":
            token = secrets.token_urlsafe(24)
            private = signer(sns_cert_url, SNS_KEY)
            return token, private, player.signing_key("sim", [token], private)
        secret, key = player.demo_keys()
        return secret, ("" if key == secret else key), key

    return keys_for


def plan_for(player: Player, target: Target, events: list[Event]) -> MessagePlan:
    now = datetime.now(UTC)
    return MessagePlan(
        target=target,
        provider_message_id=player.message_id(random.Random(1)),
        recipient="+33612345678",
        country="FR",
        flow="login-otp",
        client_reference="otp-0001",
        submitted_at=now,
        fate="delivered",
        events=events,
        posts=[],
        register_due=0.0,
    )


def as_received(request: OutgoingRequest) -> WebhookRequest:
    """The request as the webhook view hands it to the adapter: a path token taken out of the URL."""
    parts = urlsplit(request.url)
    segments = parts.path.strip("/").split("/")  # hooks, slug[, token]
    url = request.url
    token = ""
    if len(segments) == 3:
        token = unquote(segments[2])
        url = url.replace(f"/{segments[2]}/", "/", 1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return WebhookRequest(method=request.method, url=url, headers=headers, body=request.body, path_token=token)


def build(player: Player, target: Target, event: Event, secret: str) -> OutgoingRequest:
    plan = plan_for(player, target, [event])
    delivery = Delivery(
        plan=plan,
        events=[event],
        webhook_url="http://127.0.0.1:8000/hooks/sim/",
        secret=secret,
        delivery_id=player.delivery_id(random.Random(2)),
        attempt=1,
        now=time.time(),
    )
    return player.request(delivery)


def no_error(code: str) -> str:
    # "0" / "000" on a non-failure is the provider saying "no error".
    return "" if not code.strip("0") else code


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fate", FATES)
def test_player_requests_verify_and_parse_back_through_the_adapter(kind: str, fate: str, keys: Keys) -> None:
    player = get_player(kind)
    adapter = get_adapter(kind)
    secret, _, key = keys(kind)
    target = Target(slug="sim", provider=kind, secret=key)
    now = datetime.now(UTC)
    for step in player.steps(random.Random(fate), fate):
        event = Event(step.status, now, 0.0, step.error_code, step.description)
        outgoing = build(player, target, event, key)
        request = as_received(outgoing)

        assert outgoing.url.startswith("http://127.0.0.1:8000/hooks/sim/")
        adapter.verify(request, [secret])
        (parsed,) = adapter.parse(request)

        assert parsed.provider_status == step.status
        assert no_error(parsed.error_code) == no_error(step.error_code)
        assert parsed.status is not Status.UNKNOWN


@pytest.mark.parametrize("kind", KINDS)
def test_forged_player_requests_are_refused(kind: str, keys: Keys) -> None:
    player = get_player(kind)
    secret, _, key = keys(kind)
    target = Target(slug="sim", provider=kind, secret=key)
    step = player.steps(random.Random(0), "delivered")[-1]
    event = Event(step.status, datetime.now(UTC), 0.0)
    request = as_received(build(player, target, event, player.forged_key()))

    with pytest.raises(SignatureError):
        get_adapter(kind).verify(request, [secret])


@pytest.mark.parametrize("kind", KINDS)
def test_every_fate_ends_in_its_normalized_final_status(kind: str) -> None:
    player = get_player(kind)
    adapter = get_adapter(kind)
    rng = random.Random(3)
    for fate in FATES:
        for _ in range(5):
            *head, final = player.steps(rng, fate)
            assert all(adapter.normalize_status(s.status) in {Status.ACCEPTED, Status.SENT} for s in head)
            status = adapter.normalize_status(final.status)
            if fate == "delivered":
                assert status is Status.DELIVERED
            elif fate == "expired":
                assert status is EXPIRED_AS.get(kind, Status.EXPIRED)
            else:
                assert status.value in FAILURE_STATUSES, (fate, final)


@pytest.mark.django_db  # the catalog reads admin overrides first
@pytest.mark.parametrize("kind", KINDS)
def test_every_failure_is_reported_with_an_error_code_the_catalog_knows(kind: str) -> None:
    player = get_player(kind)
    assert set(player.failures) == set(FAILURE_REASONS)
    for reason, failure in player.failures.items():
        if failure.code:
            assert catalog_entry(kind, failure.code) is not None, (reason, failure.code)


def test_aws_sns_is_played_only_with_a_signer_and_never_in_the_demo() -> None:
    player = get_player("aws-sns")
    assert player.not_in_demo
    with pytest.raises(SimulatorError, match="AWS SNS"):
        player.signing_key("sns", ["t" * 24], "")
    with pytest.raises(SimulatorError, match="not in the demo"):
        player.demo_keys()


def test_telnyx_needs_the_private_key_of_the_connections_public_key() -> None:
    player = get_player("telnyx")
    public, private = player.demo_keys()
    assert public_key(private) == public
    assert player.signing_key("tx", [public], private) == private
    with pytest.raises(SimulatorError, match="--telnyx-private-key"):
        player.signing_key("tx", [public], "")
    with pytest.raises(SimulatorError, match="does not match"):
        player.signing_key("tx", [public], player.forged_key())


@pytest.fixture
def api_token() -> str:
    return product_token("simulator")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_player_lands_through_the_real_webhook_path(live_server, api_token, keys: Keys) -> None:
    private_keys: dict[str, str] = {}
    slugs = []
    for kind in KINDS:
        secret, private, _ = keys(kind)
        if private:
            private_keys[kind] = private
        slug = f"sim-{kind}"
        connection_create(slug=slug, provider=kind, secrets=[secret])
        slugs.append(slug)
    # Vonage accounts may sign with a bearer JWT instead of `sig`.
    jwt_vonage = connection_create(
        slug="sim-vonage-jwt", provider="vonage", secrets=["vonage-signature-secret-of-32-bytes-or-more"]
    )
    jwt_vonage.options = {"signature_method": "jwt"}
    jwt_vonage.save()
    slugs.append("sim-vonage-jwt")
    config = SimulatorConfig(
        base_url=live_server.url,
        token=api_token,
        targets=load_targets(slugs, private_keys=private_keys),
        rate=100,
        duration=60,
        count=8 * len(slugs),
        seed=11,
        duplicate_rate=0.3,
        out_of_order_rate=0.3,
        early_receipt_rate=0.2,
        late_rate=0.3,
        missing_rate=0.1,
        bad_signature_rate=0.2,
        time_scale=0.03,
    )

    report = Simulator(config, emit=lambda line: None).run()

    assert report.unexpected == []
    assert report.started == report.completed == config.count
    refused = {key for key in report.responses if not 200 <= key[1] < 300}
    assert refused == {("forged", 401)}
    assert report.outcomes["duplicates"] > 0
    assert report.outcomes["late"] > 0
    assert report.outcomes["parked"] > 0
    assert set(Message.objects.values_list("connection__slug", flat=True)) == set(slugs)
    assert not Receipt.objects.filter(message__isnull=True).exists(), "every parked receipt was linked"
    landed = {
        f"{slug}:{pmid}": status
        for slug, pmid, status in Message.objects.values_list("connection__slug", "provider_message_id", "status")
    }
    assert landed == report.expected_status
    delivered = set(Message.objects.filter(status=Status.DELIVERED).values_list("connection__slug", flat=True))
    assert delivered == set(slugs), "every provider delivered something"
