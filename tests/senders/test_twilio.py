from __future__ import annotations

import base64
from urllib.parse import parse_qs

import pytest

from retries.senders.base import Sender, SendError, SendResult
from retries.senders.registry import get_sender
from tests.senders.http_server import ScriptedServer

TOKEN = "twilio-auth-token-secret-9f8e"


def sender(base_url: str, **extra: str) -> Sender:
    return get_sender("twilio", {"account_sid": "AC123", "auth_token": TOKEN, "base_url": base_url, **extra})


def send(s: Sender) -> SendResult:
    return s.send(
        to="+33612345678",
        body="Your code is 1234",
        sender_id="+15005550006",
        options={},
        idempotency_key="attempt-1",
        status_callback_url="https://dlr.example/hooks/twilio-main/",
    )


def test_success_returns_message_sid_and_posts_form_with_basic_auth(provider_api: ScriptedServer) -> None:
    provider_api.reply(201, {"sid": "SM0123456789abcdef", "status": "queued"})
    result = send(sender(provider_api.url))
    assert result.provider_message_id == "SM0123456789abcdef"
    request = provider_api.requests[0]
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    form = parse_qs(request.body.decode())
    assert form == {
        "To": ["+33612345678"],
        "From": ["+15005550006"],
        "Body": ["Your code is 1234"],
        "StatusCallback": ["https://dlr.example/hooks/twilio-main/"],
    }
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"AC123:{TOKEN}".encode()).decode()


def test_messaging_service_is_used_without_sender_id(provider_api: ScriptedServer) -> None:
    provider_api.reply(201, {"sid": "SM1"})
    sender(provider_api.url, messaging_service_sid="MG9").send(
        to="+33612345678", body="hi", sender_id="", options={}, idempotency_key="k"
    )
    assert parse_qs(provider_api.requests[0].body.decode())["MessagingServiceSid"] == ["MG9"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_hide_the_token(provider_api: ScriptedServer, status: int) -> None:
    provider_api.reply(status, {"code": 21211, "message": f"Invalid 'To' number, token {TOKEN}"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True
    assert caught.value.status_code == status
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_throttling_are_temporary(provider_api: ScriptedServer, status: int) -> None:
    provider_api.reply(status, {"message": "try later"}, Retry_After="5")
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is False


def test_slow_api_times_out_as_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(201, {"sid": "SM1"}, delay=1.0)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url, read_timeout="0.2"))
    assert caught.value.permanent is False
    assert "timed out" in caught.value.reason


def test_connection_refused_is_temporary_and_hides_the_token(closed_port_url: str) -> None:
    with pytest.raises(SendError) as caught:
        send(sender(closed_port_url))
    assert caught.value.permanent is False
    assert TOKEN not in str(caught.value)


def test_redirect_is_not_followed(provider_api: ScriptedServer) -> None:
    provider_api.reply(302, {}, Location="http://127.0.0.1:1/elsewhere")
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True
    assert len(provider_api.requests) == 1
