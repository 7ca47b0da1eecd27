"""Telnyx messaging webhooks: Ed25519 signatures (RFC 8032 test key 1, the replay window, key
formats), parsing of real webhook bodies under tests/fixtures/telnyx/, and one webhook through
the real endpoint."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import telnyx
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.providers.telnyx import TelnyxAdapter
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, dumps
from tests.providers.security_suite import TimestampedProviderSecuritySuite
from tests.providers.signing import fixture

# RFC 8032 §7.1 TEST 1 (providers.md §4.5): a published Ed25519 key pair and its signature of
# the empty message.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_EMPTY_SIGNATURE_HEX = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
PRIVATE_KEY = base64.b64encode(RFC_SEED).decode()
PUBLIC_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
OTHER_SEED = bytes(range(32))
OTHER_PRIVATE_KEY = base64.b64encode(OTHER_SEED).decode()
OTHER_PUBLIC_KEY = base64.b64encode(
    Ed25519PrivateKey.from_private_bytes(OTHER_SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()
PRIVATE_FOR = {PUBLIC_KEY: PRIVATE_KEY, OTHER_PUBLIC_KEY: OTHER_PRIVATE_KEY}

NOW = 1795687205  # 2026-11-26T10:00:05Z, the fixtures' time
URL = "https://dlr.example/hooks/telnyx-main/"


def adapter_at(now: float) -> TelnyxAdapter:
    return TelnyxAdapter(clock=lambda: float(now))  # as time.time() reads


def telnyx_request(
    private_key: str, body: bytes, *, timestamp: int = NOW, signature: str | None = None
) -> WebhookRequest:
    """A webhook carrying `body`, signed as Telnyx signs unless `signature` is given."""
    if signature is None:
        signature = telnyx.sign(private_key, timestamp, body)
    return WebhookRequest(
        method="POST",
        url=URL,
        headers={
            "content-type": "application/json",
            "user-agent": "telnyx-webhooks",
            "telnyx-signature-ed25519": signature,
            "telnyx-timestamp": str(timestamp),
        },
        body=body,
    )


def with_header(request: WebhookRequest, name: str, value: str) -> WebhookRequest:
    return replace(request, headers={**request.headers, name: value})


def parse(body: bytes) -> list[ReceiptEvent]:
    request = telnyx_request(PRIVATE_KEY, body)
    adapter_at(NOW).verify(request, [PUBLIC_KEY])
    return telnyx.adapter.parse(request)


def envelope(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture("telnyx", name))
    return data


def edited(name: str, **payload_changes: Any) -> bytes:
    data = envelope(name)
    data["data"]["payload"].update(payload_changes)
    return json.dumps(data).encode()


class TestTelnyxSecurity(TimestampedProviderSecuritySuite):
    adapter = adapter_at(NOW)
    now = NOW
    tolerance_seconds = 300
    secret = PUBLIC_KEY
    other_secret = OTHER_PUBLIC_KEY
    valid_body = fixture("telnyx", "message_finalized_delivered.json")
    tampered_body = valid_body.replace(b'"delivered"', b'"delivery_failed"')
    signature_header = "telnyx-signature-ed25519"
    bad_signature = base64.b64encode(bytes(64)).decode()  # an Ed25519 signature's length, all zero

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        # The connection holds public keys; Telnyx signs with the matching private key.
        return telnyx_request(PRIVATE_FOR[secret], body, **kw)


# RFC 8032 key handling


def test_rfc8032_public_key_in_base64_is_the_published_one() -> None:
    assert base64.b64decode(PUBLIC_KEY).hex() == RFC_PUBLIC_HEX
    public = Ed25519PrivateKey.from_private_bytes(RFC_SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == RFC_PUBLIC_HEX


def test_public_key_for_the_rfc8032_seed_is_the_published_public_key() -> None:
    assert telnyx.public_key_for(PRIVATE_KEY) == PUBLIC_KEY


def test_rfc8032_empty_message_signature_verifies_with_the_base64_public_key() -> None:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(PUBLIC_KEY))
    key.verify(bytes.fromhex(RFC_EMPTY_SIGNATURE_HEX), b"")
    assert Ed25519PrivateKey.from_private_bytes(RFC_SEED).sign(b"").hex() == RFC_EMPTY_SIGNATURE_HEX


def test_signed_bytes_are_the_timestamp_text_a_bar_and_the_raw_body() -> None:
    body = fixture("telnyx", "message_sent.json")
    expected = Ed25519PrivateKey.from_private_bytes(RFC_SEED).sign(f"{NOW}|".encode() + body)
    assert telnyx.sign(PRIVATE_KEY, NOW, body) == base64.b64encode(expected).decode()


def test_signature_over_the_body_alone_is_refused() -> None:
    body = fixture("telnyx", "message_sent.json")
    alone = base64.b64encode(Ed25519PrivateKey.from_private_bytes(RFC_SEED).sign(body)).decode()
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(telnyx_request(PRIVATE_KEY, body, signature=alone), [PUBLIC_KEY])


def test_timestamp_header_changed_after_signing_is_refused() -> None:
    request = telnyx_request(PRIVATE_KEY, fixture("telnyx", "message_sent.json"))
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(with_header(request, "telnyx-timestamp", str(NOW + 1)), [PUBLIC_KEY])


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("telnyx-timestamp", "2026-11-26T10:00:05Z"),
        ("telnyx-timestamp", ""),
        ("telnyx-signature-ed25519", "not base64!"),
        ("telnyx-signature-ed25519", base64.b64encode(bytes(32)).decode()),
    ],
    ids=["timestamp-not-unix", "timestamp-empty", "signature-not-base64", "signature-wrong-length"],
)
def test_malformed_signature_headers_are_refused(header: str, value: str) -> None:
    request = telnyx_request(PRIVATE_KEY, fixture("telnyx", "message_sent.json"))
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(with_header(request, header, value), [PUBLIC_KEY])


def test_module_adapter_reads_the_real_clock() -> None:
    with pytest.raises(SignatureError, match="tolerance"):
        telnyx.adapter.verify(telnyx_request(PRIVATE_KEY, fixture("telnyx", "message_sent.json")), [PUBLIC_KEY])


def test_malformed_stored_key_does_not_hide_a_valid_one_beside_it() -> None:
    request = telnyx_request(PRIVATE_KEY, fixture("telnyx", "message_sent.json"))
    adapter_at(NOW).verify(request, ["not-a-key", base64.b64encode(bytes(31)).decode(), PUBLIC_KEY])


# Secrets: the account's public keys


@pytest.mark.parametrize("secret", [PUBLIC_KEY, OTHER_PUBLIC_KEY, f" {PUBLIC_KEY}\n"])
def test_validate_secret_accepts_base64_32_byte_public_keys(secret: str) -> None:
    telnyx.adapter.validate_secret(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "not base64!",
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.b64encode(bytes(64)).decode(),
        RFC_PUBLIC_HEX,
    ],
    ids=["empty", "not-base64", "31-bytes", "33-bytes", "64-bytes", "hex"],
)
def test_validate_secret_refuses_what_is_not_a_base64_ed25519_public_key(secret: str) -> None:
    with pytest.raises(ValueError, match="Telnyx public key"):
        telnyx.adapter.validate_secret(secret)


def test_generate_secret_refuses_because_telnyx_gives_the_key() -> None:
    with pytest.raises(ValueError, match="Mission Control"):
        telnyx.adapter.generate_secret()


# Parsing real webhooks


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "message_sent.json",
            ReceiptEvent(
                provider_message_id="40317a52-9f1e-4c2b-8d7a-5e6f1b2c3d4e",
                provider_status="sent",
                status=Status.SENT,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 1, 484000, UTC),
                event_id="b301ed3f-1490-491f-995f-6e64e69674d4",
                network="T-MOBILE USA, INC.",
                price=Decimal("0.004000"),
                currency="USD",
            ),
        ),
        (
            "message_finalized_delivered.json",
            ReceiptEvent(
                provider_message_id="40317a52-9f1e-4c2b-8d7a-5e6f1b2c3d4e",
                provider_status="delivered",
                status=Status.DELIVERED,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 4, 912000, UTC),
                event_id="4ee8c3a6-4995-4309-a3c6-38e3db9ea4be",
                network="T-MOBILE USA, INC.",
                price=Decimal("0.004000"),
                currency="USD",
            ),
        ),
        (
            "message_finalized_delivery_failed.json",
            ReceiptEvent(
                provider_message_id="a8c5d2e1-7b4f-4a3c-9e6d-2f1a0b9c8d7e",
                provider_status="delivery_failed",
                status=Status.UNDELIVERED,
                error_code="40008",
                error_description="The message was not delivered; the carrier gave no reason.",
                provider_timestamp=datetime(2026, 11, 26, 10, 2, 15, 330000, UTC),
                event_id="7a6c0b1e-2f3d-4e5a-9b8c-1d2e3f4a5b6c",
                network="T-MOBILE USA, INC.",
                price=Decimal("0.004000"),
                currency="USD",
            ),
        ),
        (
            "message_finalized_sending_failed.json",
            ReceiptEvent(
                provider_message_id="f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b",
                provider_status="sending_failed",
                status=Status.FAILED,
                error_code="40001",
                error_description="The destination number is not routable (landline or non-routable number).",
                provider_timestamp=datetime(2026, 11, 26, 10, 3, 0, 210000, UTC),
                event_id="0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f",
                network="T-MOBILE USA, INC.",
                price=Decimal("0.004000"),
                currency="USD",
            ),
        ),
    ],
)
def test_webhook_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    (event,) = parse(fixture("telnyx", name))
    assert event == expected
    assert (event.permanent, event.raw, event.extra) == (None, "", {})
    assert event.dedupe_key() == expected.event_id


def test_inbound_message_is_not_a_receipt() -> None:
    assert parse(fixture("telnyx", "message_received.json")) == []


@pytest.mark.parametrize("event_type", ["message.received", "call.initiated", "a.future.event"])
def test_other_event_types_give_no_events_whatever_their_payload(event_type: str) -> None:
    body = json.dumps({"data": {"event_type": event_type, "id": "e1", "payload": None}}).encode()
    assert parse(body) == []


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("queued", Status.ACCEPTED),
        ("sending", Status.ACCEPTED),
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("delivery_failed", Status.UNDELIVERED),
        ("sending_failed", Status.FAILED),
        ("expired", Status.EXPIRED),
        ("delivery_unconfirmed", Status.UNKNOWN),
        ("Delivered", Status.DELIVERED),
        ("a_status_telnyx_adds_later", Status.UNKNOWN),
    ],
)
def test_recipient_status_values_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    to = [{"phone_number": "+13125550123", "status": status}]
    (event,) = parse(edited("message_finalized_delivered.json", to=to))
    assert (event.provider_status, event.status) == (status, normalized)


def test_several_recipients_are_one_event_with_the_first_recipients_status() -> None:
    to = [
        {"phone_number": "+13125550123", "status": "delivered"},
        {"phone_number": "+13125550124", "status": "expired"},
    ]
    (event,) = parse(edited("message_finalized_delivered.json", to=to))
    assert (event.provider_status, event.status) == ("delivered", Status.DELIVERED)


def test_first_error_gives_the_code_and_its_title_when_there_is_no_detail() -> None:
    errors = [{"code": 40006, "title": "Recipient unavailable"}, {"code": "40008", "title": "Undeliverable"}]
    (event,) = parse(edited("message_finalized_delivery_failed.json", errors=errors))
    assert (event.error_code, event.error_description) == ("40006", "Recipient unavailable")


def test_error_detail_is_cut_to_255_characters() -> None:
    errors = [{"code": "40008", "title": "Undeliverable", "detail": "x" * 300}]
    (event,) = parse(edited("message_finalized_delivery_failed.json", errors=errors))
    assert event.error_description == "x" * 255


@pytest.mark.parametrize("occurred_at", [None, 1795687205, "yesterday", "2026-11-26T10:00:04"])
def test_missing_unreadable_or_zoneless_occurred_at_is_dropped(occurred_at: object) -> None:
    data = envelope("message_finalized_delivered.json")
    data["data"]["occurred_at"] = occurred_at
    (event,) = parse(json.dumps(data).encode())
    assert (event.provider_timestamp, event.status) == (None, Status.DELIVERED)


def test_retried_webhook_keeps_its_event_id_across_attempts() -> None:
    data = envelope("message_finalized_delivered.json")
    data["meta"]["attempt"] = 2
    assert parse(json.dumps(data).encode())[0].dedupe_key() == "4ee8c3a6-4995-4309-a3c6-38e3db9ea4be"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "JSON"),
        (b"[]", "data"),
        (b'{"data": []}', "data"),
        (b'{"data": {"id": "e1"}}', "event_type"),
        (b'{"data": {"event_type": 7}}', "event_type"),
        (b'{"data": {"event_type": "message.finalized", "payload": []}}', "payload"),
        (b'{"data": {"event_type": "message.sent", "payload": {"to": []}}}', "payload.id"),
        (b'{"data": {"event_type": "message.sent", "payload": {"id": "m1"}}}', "payload.to"),
        (b'{"data": {"event_type": "message.sent", "payload": {"id": "m1", "to": []}}}', "payload.to"),
        (b'{"data": {"event_type": "message.sent", "payload": {"id": "m1", "to": ["+1"]}}}', "payload.to"),
        (b'{"data": {"event_type": "message.sent", "payload": {"id": "m1", "to": [{}]}}}', "status"),
        (
            b'{"data": {"event_type": "message.sent", '
            b'"payload": {"id": "m1", "to": [{"status": "sent"}], "errors": {}}}}',
            "errors",
        ),
    ],
)
def test_malformed_webhook_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse(body)


@pytest.mark.parametrize(
    "changes",
    [{"id": "m" * 129}, {"id": "m\x00"}, {"errors": [{"code": "4" * 33}]}],
    ids=["id-over-128", "nul-in-id", "error-code-over-32"],
)
def test_field_that_does_not_fit_its_column_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(PayloadError):
        parse(edited("message_finalized_delivery_failed.json", **changes))


# Through the real endpoint


@pytest.mark.django_db
def test_signed_finalized_webhook_through_the_endpoint_stores_the_receipt_and_moves_the_message(
    client, monkeypatch
) -> None:
    monkeypatch.setattr(telnyx.adapter, "clock", lambda: NOW)
    connection = ConnectionFactory(provider="telnyx", secrets=[OTHER_PUBLIC_KEY, PUBLIC_KEY])
    MessageFactory(connection=connection, provider_message_id="a8c5d2e1-7b4f-4a3c-9e6d-2f1a0b9c8d7e")
    body = fixture("telnyx", "message_finalized_delivery_failed.json")
    headers = {"telnyx-signature-ed25519": telnyx.sign(PRIVATE_KEY, NOW, body), "telnyx-timestamp": str(NOW)}
    response = client.post(f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content
    message = Message.objects.get(provider_message_id="a8c5d2e1-7b4f-4a3c-9e6d-2f1a0b9c8d7e")
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "40008")
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status, receipt.error_code) == (
        "delivery_failed",
        Status.UNDELIVERED,
        "40008",
    )
    assert receipt.dedupe_key == "7a6c0b1e-2f3d-4e5a-9b8c-1d2e3f4a5b6c"
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 2, 15, 330000, UTC)
    assert "telnyx-signature-ed25519" not in receipt.headers
    retry = client.post(f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers)
    assert (retry.status_code, Receipt.objects.count()) == (200, 1)


@pytest.mark.django_db
def test_inbound_message_through_the_endpoint_is_acknowledged_and_stores_nothing(client, monkeypatch) -> None:
    monkeypatch.setattr(telnyx.adapter, "clock", lambda: NOW)
    connection = ConnectionFactory(provider="telnyx", secrets=[PUBLIC_KEY])
    body = fixture("telnyx", "message_received.json")
    headers = {"telnyx-signature-ed25519": telnyx.sign(PRIVATE_KEY, NOW, body), "telnyx-timestamp": str(NOW)}
    response = client.post(f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert Receipt.objects.count() == 0


@pytest.mark.django_db
def test_stale_webhook_through_the_endpoint_is_refused(client) -> None:
    connection = ConnectionFactory(provider="telnyx", secrets=[PUBLIC_KEY])
    body = fixture("telnyx", "message_sent.json")
    headers = {"telnyx-signature-ed25519": telnyx.sign(PRIVATE_KEY, NOW, body), "telnyx-timestamp": str(NOW)}
    response = client.post(f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert Receipt.objects.count() == 0


class TestTelnyxExtremes(ExtremeInputSuite):
    provider = "telnyx"
    secret = PUBLIC_KEY
    message_id = "a8c5d2e1-7b4f-4a3c-9e6d-2f1a0b9c8d7e"

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        data = envelope("message_finalized_delivery_failed.json")
        event = data["data"]
        event["occurred_at"] = slots.get("time", event["occurred_at"])
        event["payload"]["id"] = slots.get("message_id", self.message_id)
        event["payload"]["to"][0]["status"] = slots.get("status", "delivery_failed")
        error = event["payload"]["errors"][0]
        error["code"] = "<<number>>" if "number" in slots else slots.get("error_code", error["code"])
        error["detail"] = slots.get("description", error["detail"])
        body = dumps(data, number=slots.get("number", ""))
        request = telnyx_request(PRIVATE_KEY, body, timestamp=int(time.time()))
        headers = {name: value for name, value in request.headers.items() if name != "content-type"}
        return client.post(f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers)
