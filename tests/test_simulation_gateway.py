"""The simulator's send API over real HTTP on loopback: the generic HTTP contract the console's
sender speaks, idempotency keys honoured, each new send handed to the simulator's queue once,
bad requests refused with a reason, and a bound on what one run takes."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest
import requests

from dlrconsole.simulator import SendGateway, Target
from dlrconsole.simulator.gateway import MAX_REQUEST_BYTES, AdoptedResend
from retries.senders.base import SendError
from retries.senders.generic_http import GenericHttpSender

TARGETS = [
    Target(slug="sim-twilio", provider="twilio", secret="t"),
    Target(slug="sim-generic", provider="standard-webhooks", secret="s"),
]
SEND = {"to": "+33612345678", "body": "Your ACME code is 483920", "sender_id": "ACME", "options": {}}


@pytest.fixture
def send_api() -> Iterator[SendGateway]:
    with SendGateway(TARGETS, max_resends=3, seed=1) as gateway:
        yield gateway


def post(gateway: SendGateway, slug: str, payload: object, key: str = "") -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(gateway.url_for(slug), json=payload, headers=headers, timeout=5)


def drained(gateway: SendGateway) -> list[AdoptedResend]:
    taken = []
    while True:
        try:
            taken.append(gateway.adopted.get_nowait())
        except queue.Empty:
            return taken


def test_the_console_sender_gets_a_provider_style_id_and_the_simulator_gets_the_send(send_api):
    sender = GenericHttpSender({"url": send_api.url_for("sim-twilio")})

    result = sender.send(**SEND, idempotency_key="retry-of-message-7", status_callback_url="http://x/hooks/y/")

    assert result.provider_message_id.startswith("SM")
    assert len(result.provider_message_id) == 34  # a Twilio Message SID
    assert drained(send_api) == [
        AdoptedResend("sim-twilio", result.provider_message_id, "+33612345678", "FR", "Your ACME code is 483920")
    ]


def test_a_repeated_idempotency_key_answers_the_first_id_and_sends_nothing(send_api):
    first = post(send_api, "sim-generic", SEND, key="retry-of-message-7")
    again = post(send_api, "sim-generic", SEND, key="retry-of-message-7")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(drained(send_api)) == 1
    assert (send_api.sent, send_api.replayed) == (1, 1)


def test_keys_are_per_connection_and_requests_without_a_key_are_each_a_send(send_api):
    ids = {
        post(send_api, "sim-generic", SEND, key="k").json()["id"],
        post(send_api, "sim-twilio", SEND, key="k").json()["id"],
        post(send_api, "sim-twilio", SEND).json()["id"],
    }
    assert len(ids) == 3
    assert len(drained(send_api)) == 3


def test_a_key_reused_for_another_request_is_refused(send_api):
    post(send_api, "sim-generic", SEND, key="k")
    reused = post(send_api, "sim-generic", {**SEND, "body": "Another text"}, key="k")

    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["error"]
    assert len(drained(send_api)) == 1


@pytest.mark.parametrize(
    ("slug", "payload", "status", "reason"),
    [
        ("nope", SEND, 404, "no such connection"),
        ("sim-generic", ["not", "an", "object"], 400, "JSON object"),
        ("sim-generic", {**SEND, "to": ""}, 400, "non-empty strings"),
        ("sim-generic", {**SEND, "body": None}, 400, "non-empty strings"),
        ("sim-generic", {**SEND, "to": "+3361234"}, 422, "not a valid number"),
    ],
)
def test_bad_requests_are_refused_with_a_reason_and_send_nothing(send_api, slug, payload, status, reason):
    response = post(send_api, slug, payload, key="k")
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert drained(send_api) == []


def test_malformed_oversized_and_non_post_requests_are_refused(send_api):
    url = send_api.url_for("sim-generic")
    assert requests.post(url, data=b"{not json", timeout=5).status_code == 400
    assert requests.post(url, data=b"x" * (MAX_REQUEST_BYTES + 1), timeout=5).status_code == 413
    assert requests.get(url, timeout=5).status_code == 405
    assert drained(send_api) == []
    assert send_api.refused == 1  # the two others never reached the contract's checks


def test_a_run_takes_at_most_its_share_of_resends_and_none_once_it_is_over(send_api):
    assert [post(send_api, "sim-generic", SEND, key=f"k{i}").status_code for i in range(4)] == [200, 200, 200, 429]

    send_api.stop_accepting()

    assert post(send_api, "sim-generic", SEND, key="k0").status_code == 200  # a replay still answers
    assert len(drained(send_api)) == 3


def test_the_console_sender_reads_the_refusals_as_the_contract_says(send_api):
    sender = GenericHttpSender({"url": send_api.url_for("sim-generic")})
    for key in ("k1", "k2", "k3"):
        sender.send(**SEND, idempotency_key=key)

    with pytest.raises(SendError) as full:
        sender.send(**SEND, idempotency_key="k4")
    with pytest.raises(SendError) as bad_number:
        sender.send(**{**SEND, "to": "+1555"}, idempotency_key="k5")

    assert (full.value.status_code, full.value.permanent) == (429, False)  # tried again later
    assert (bad_number.value.status_code, bad_number.value.permanent) == (422, True)
