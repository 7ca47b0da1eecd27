from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from retries.senders.base import SendError
from retries.senders.registry import get_sender
from retries.senders.vonage import VonageSender
from tests.senders.http_server import ScriptedServer

SECRET = "vonage-api-secret-77aa"


def sender(base_url: str, **extra: str) -> VonageSender:
    s = get_sender("vonage", {"api_key": "key1", "api_secret": SECRET, "base_url": base_url, **extra})
    assert isinstance(s, VonageSender)
    return s


def send(s: VonageSender) -> str:
    return s.send(
        to="+447700900000",
        body="Your code is 1234",
        sender_id="Acme",
        options={},
        idempotency_key="attempt-1",
        status_callback_url="https://dlr.example/hooks/vonage/",
    ).provider_message_id


def reply_with_status(server: ScriptedServer, status: str) -> None:
    # Vonage answers 200 and puts the outcome in messages[].status.
    server.reply(
        200,
        {
            "message-count": "1",
            "messages": [{"status": status, "error-text": f"refused {SECRET}", "to": "447700900000"}],
        },
    )


def test_success_returns_message_id_and_posts_credentials_in_form(provider_api: ScriptedServer) -> None:
    provider_api.reply(
        200,
        {"message-count": "1", "messages": [{"to": "447700900000", "message-id": "0C000000217B7F02", "status": "0"}]},
    )
    assert send(sender(provider_api.url)) == "0C000000217B7F02"
    request = provider_api.requests[0]
    assert request.path == "/sms/json"
    form = parse_qs(request.body.decode())
    assert form["api_key"] == ["key1"]
    assert form["api_secret"] == [SECRET]
    assert form["to"] == ["447700900000"]
    assert form["from"] == ["Acme"]
    assert form["text"] == ["Your code is 1234"]
    assert form["callback"] == ["https://dlr.example/hooks/vonage/"]
    assert form["client-ref"] == ["attempt-1"]


@pytest.mark.parametrize(("status", "permanent"), [("1", False), ("5", False), ("10", False)])
def test_throttling_and_internal_errors_are_temporary(
    provider_api: ScriptedServer, status: str, permanent: bool
) -> None:
    reply_with_status(provider_api, status)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is permanent


@pytest.mark.parametrize("status", ["2", "3", "4", "6", "7", "9", "15", "29", "99"])
def test_refusals_are_permanent_and_hide_the_secret(provider_api: ScriptedServer, status: str) -> None:
    reply_with_status(provider_api, status)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True
    assert f"status {status}" in caught.value.reason
    assert SECRET not in str(caught.value)


def test_http_401_is_permanent(provider_api: ScriptedServer) -> None:
    provider_api.reply(401, {"error": "bad credentials"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True


@pytest.mark.parametrize("status", [500, 503, 429])
def test_http_server_errors_are_temporary(provider_api: ScriptedServer, status: int) -> None:
    provider_api.reply(status, {"error": "down"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is False


def test_slow_api_times_out_as_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {}, delay=1.0)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url, read_timeout="0.2"))
    assert caught.value.permanent is False


def test_connection_refused_is_temporary(closed_port_url: str) -> None:
    with pytest.raises(SendError) as caught:
        send(sender(closed_port_url))
    assert caught.value.permanent is False
    assert SECRET not in str(caught.value)
