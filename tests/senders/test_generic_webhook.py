from __future__ import annotations

import base64

import pytest

from dlrconsole.lib.standard_webhooks import sign
from retries.senders.base import SendError
from retries.senders.generic_webhook import GenericWebhookSender
from retries.senders.registry import get_sender
from tests.senders.http_server import ScriptedServer

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def sender(url: str, **extra: str) -> GenericWebhookSender:
    s = get_sender("generic-webhook", {"url": url, "secret": SECRET, **extra})
    assert isinstance(s, GenericWebhookSender)
    return s


def send(s: GenericWebhookSender) -> str:
    return s.send(
        to="+33612345678", body="hello", sender_id="", options={}, idempotency_key="evt-1"
    ).provider_message_id


def test_success_posts_a_verifiable_signed_body(provider_api: ScriptedServer) -> None:
    provider_api.reply(204, b"")
    assert send(sender(provider_api.url)) == "evt-1"
    request = provider_api.requests[0]
    assert request.headers["webhook-id"] == "evt-1"
    timestamp = int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"] == sign(SECRET, "evt-1", timestamp, request.body)
    assert request.json()["data"]["to"] == "+33612345678"


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (410, True), (500, False), (429, False)])
def test_http_errors_are_classified(provider_api: ScriptedServer, status: int, permanent: bool) -> None:
    provider_api.reply(status, {"error": "x"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is permanent


def test_slow_endpoint_times_out_as_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {}, delay=1.0)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url, read_timeout="0.2"))
    assert caught.value.permanent is False


def test_connection_refused_is_temporary_and_hides_the_secret(closed_port_url: str) -> None:
    with pytest.raises(SendError) as caught:
        send(sender(closed_port_url))
    assert caught.value.permanent is False
    assert SECRET not in str(caught.value)


def test_secret_without_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        get_sender("generic-webhook", {"url": "https://x.example", "secret": "abc"})
