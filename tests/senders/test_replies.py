"""What every HTTP sender keeps of a reply: the status and the documented fields it parses,
never the peer's text (it lands on the timeline, the API and the product feed)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from retries.senders.base import Sender, SendError
from retries.senders.registry import get_sender
from tests.senders.http_server import ScriptedServer

MARKER = "internal-secret-page-content"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()

# kind → (config for a base URL, a successful reply that also carries the marker)
SENDERS: dict[str, tuple[Any, Any]] = {
    "twilio": (
        lambda url: {"account_sid": "AC1", "auth_token": "tok", "base_url": url},
        {"sid": "SM1", "status": "queued", "body": MARKER},
    ),
    "vonage": (
        lambda url: {"api_key": "k", "api_secret": "s", "base_url": url},
        {"messages": [{"status": "0", "message-id": "0C01", "error-text": MARKER}]},
    ),
    "infobip": (
        lambda url: {"api_key": "k", "base_url": url},
        {"messages": [{"messageId": "m1", "status": {"groupName": "PENDING", "description": MARKER}}]},
    ),
    "generic-http": (lambda url: {"url": url}, {"id": "gw-1", "note": MARKER}),
    "generic-webhook": (lambda url: {"url": url, "secret": WEBHOOK_SECRET}, {"echo": MARKER}),
}


def sender(kind: str, url: str) -> Sender:
    return get_sender(kind, SENDERS[kind][0](url))


def send(s: Sender) -> Any:
    return s.send(to="+33612345678", body="hi", sender_id="Acme", options={}, idempotency_key="k-1")


@pytest.mark.parametrize("kind", SENDERS)
def test_a_success_summary_shows_the_status_and_the_id_never_the_reply(provider_api: ScriptedServer, kind: str) -> None:
    provider_api.reply(200, SENDERS[kind][1])
    result = send(sender(kind, provider_api.url))
    assert MARKER not in result.response_summary
    assert result.response_summary.startswith(("HTTP 200", "status 0"))


@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("status", [400, 500])
def test_an_error_reason_shows_the_status_never_the_reply(provider_api: ScriptedServer, kind: str, status: int) -> None:
    provider_api.reply(status, {"error": MARKER, "message": MARKER})
    with pytest.raises(SendError) as caught:
        send(sender(kind, provider_api.url))
    assert caught.value.reason == f"HTTP {status}"


def test_a_documented_error_code_is_kept_and_nothing_else(provider_api: ScriptedServer) -> None:
    provider_api.reply(400, {"code": 21211, "message": f"Invalid 'To' {MARKER}", "more_info": MARKER})
    with pytest.raises(SendError) as caught:
        send(sender("twilio", provider_api.url))
    assert caught.value.reason == "HTTP 400: error 21211"
    provider_api.reply(401, {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": MARKER}}})
    with pytest.raises(SendError) as caught:
        send(sender("infobip", provider_api.url))
    assert caught.value.reason == "HTTP 401: error UNAUTHORIZED"


def test_a_parsed_field_cannot_smuggle_text(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {"id": f"gw-1 <script>{MARKER}</script> " + "x" * 200})
    result = send(sender("generic-http", provider_api.url))
    assert result.response_summary.startswith("HTTP 200: id gw-1script")
    assert "<" not in result.response_summary
    assert len(result.response_summary) < 100


@pytest.mark.parametrize("kind", SENDERS)
def test_a_send_api_on_a_loopback_address_is_refused_permanently_without_a_request(
    provider_api: ScriptedServer, kind: str, settings: Any
) -> None:
    """A sender saved before validation existed (or behind a name) is refused when it calls."""
    configured = sender(kind, provider_api.url)
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(SendError) as caught:
        send(configured)
    assert caught.value.permanent is True
    assert caught.value.reason.startswith("refused: 127.0.0.1 is a loopback address")
    assert provider_api.requests == []
