from __future__ import annotations

import pytest

from retries.senders.base import SendError
from retries.senders.generic_http import GenericHttpSender
from retries.senders.registry import get_sender
from tests.senders.http_server import ScriptedServer

TOKEN = "gateway-bearer-token-5d5d"


def sender(url: str, **extra: str) -> GenericHttpSender:
    s = get_sender("generic-http", {"url": url, "token": TOKEN, **extra})
    assert isinstance(s, GenericHttpSender)
    return s


def send(s: GenericHttpSender) -> str:
    return s.send(
        to="+33612345678",
        body="hello",
        sender_id="Acme",
        options={"priority": "high"},
        idempotency_key="attempt-7",
        status_callback_url="https://dlr.example/hooks/gw/",
    ).provider_message_id


def test_success_sends_idempotency_key_and_bearer_token(provider_api: ScriptedServer) -> None:
    provider_api.reply(202, {"id": "gw-123"})
    assert send(sender(provider_api.url + "/send")) == "gw-123"
    request = provider_api.requests[0]
    assert request.path == "/send"
    assert request.headers["idempotency-key"] == "attempt-7"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "to": "+33612345678",
        "body": "hello",
        "sender_id": "Acme",
        "options": {"priority": "high"},
        "status_callback_url": "https://dlr.example/hooks/gw/",
    }


def test_id_field_is_configurable(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {"message_id": "m-9"})
    assert send(sender(provider_api.url, id_field="message_id")) == "m-9"


def test_reply_without_id_is_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {"ok": True})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is False


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (422, True), (500, False), (429, False)])
def test_http_errors_are_classified_without_the_token(
    provider_api: ScriptedServer, status: int, permanent: bool
) -> None:
    provider_api.reply(status, {"error": f"nope {TOKEN}"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is permanent
    assert TOKEN not in str(caught.value)


def test_slow_api_times_out_as_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {"id": "x"}, delay=1.0)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url, read_timeout="0.2"))
    assert caught.value.permanent is False


def test_connection_refused_is_temporary(closed_port_url: str) -> None:
    with pytest.raises(SendError) as caught:
        send(sender(closed_port_url))
    assert caught.value.permanent is False
