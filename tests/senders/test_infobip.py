from __future__ import annotations

import pytest

from retries.senders.base import SendError
from retries.senders.infobip import InfobipSender
from retries.senders.registry import get_sender
from tests.senders.http_server import ScriptedServer

API_KEY = "infobip-api-key-secret-3c3c"


def sender(base_url: str, **extra: str) -> InfobipSender:
    s = get_sender("infobip", {"api_key": API_KEY, "base_url": base_url, **extra})
    assert isinstance(s, InfobipSender)
    return s


def send(s: InfobipSender) -> str:
    return s.send(
        to="+41793026727",
        body="Your code is 1234",
        sender_id="InfoSMS",
        options={},
        idempotency_key="attempt-42",
        status_callback_url="https://dlr.example/hooks/infobip/",
    ).provider_message_id


def accepted(message_id: str) -> dict[str, object]:
    return {
        "bulkId": "b1",
        "messages": [
            {
                "to": "41793026727",
                "messageId": message_id,
                "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"},
            }
        ],
    }


def test_success_uses_idempotency_key_as_message_id_and_app_auth(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, accepted("attempt-42"))
    assert send(sender(provider_api.url)) == "attempt-42"
    request = provider_api.requests[0]
    assert request.path == "/sms/2/text/advanced"
    assert request.headers["authorization"] == f"App {API_KEY}"
    assert request.json() == {
        "messages": [
            {
                "destinations": [{"to": "41793026727", "messageId": "attempt-42"}],
                "from": "InfoSMS",
                "text": "Your code is 1234",
                "notifyUrl": "https://dlr.example/hooks/infobip/",
            }
        ]
    }


def test_rejected_group_is_permanent(provider_api: ScriptedServer) -> None:
    body = accepted("attempt-42")
    body["messages"][0]["status"] = {"groupId": 5, "groupName": "REJECTED", "name": "REJECTED_DESTINATION"}  # type: ignore[index]
    provider_api.reply(200, body)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True
    assert "REJECTED" in caught.value.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_hide_the_key(provider_api: ScriptedServer, status: int) -> None:
    provider_api.reply(status, {"requestError": {"serviceException": {"text": f"Invalid login {API_KEY}"}}})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is True
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_temporary(provider_api: ScriptedServer, status: int) -> None:
    provider_api.reply(status, {"error": "down"})
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url))
    assert caught.value.permanent is False


def test_slow_api_times_out_as_temporary(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, accepted("x"), delay=1.0)
    with pytest.raises(SendError) as caught:
        send(sender(provider_api.url, read_timeout="0.2"))
    assert caught.value.permanent is False


def test_connection_refused_is_temporary(closed_port_url: str) -> None:
    with pytest.raises(SendError) as caught:
        send(sender(closed_port_url))
    assert caught.value.permanent is False
    assert API_KEY not in str(caught.value)
