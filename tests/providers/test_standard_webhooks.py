"""Standard Webhooks receipts at the adapter level: the spec's published vector, signature
headers, secret formats, the replay window, and parsing of our generic JSON body (fixtures
under tests/fixtures/standard_webhooks/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from dlrconsole.lib import standard_webhooks as signing
from receipts.models import Connection
from receipts.providers import standard_webhooks
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.providers.standard_webhooks import StandardWebhooksAdapter
from receipts.statuses import Status
from tests.providers.batch_suite import MultiEventSuite
from tests.providers.extremes_suite import ExtremeInputSuite, dumps
from tests.providers.security_suite import TimestampedProviderSecuritySuite
from tests.providers.signing import fixture, standard_webhooks_request
from tests.webhooks import generic_headers

# Published vector: providers.md §4.2, from standard-webhooks libraries/python/tests/test_webhooks.py.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_PAYLOAD = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_INVALID_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
OTHER_V1 = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
OTHER_V2 = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

NOW = 1795687205  # 2026-11-26T10:00:05Z, the fixtures' time
SECRET = "whsec_" + base64.b64encode(b"dlr-console-test-secret-32-bytes").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"dlr-console-previous-secret-0001").decode()
MSG_ID = "msg_2pWq0B7i9sDNx4Lr8uYk1Hh3aZc"  # the helper's default webhook-id


def adapter_at(now: float) -> StandardWebhooksAdapter:
    return StandardWebhooksAdapter(clock=lambda: float(now))  # as time.time() reads


def vector_request(signature: str = VECTOR_SIGNATURE, **kw: Any) -> WebhookRequest:
    return standard_webhooks_request(
        VECTOR_SECRET, VECTOR_PAYLOAD, timestamp=VECTOR_TS, msg_id=VECTOR_ID, signature=signature, **kw
    )


def with_header(request: WebhookRequest, name: str, value: str | None) -> WebhookRequest:
    headers = {k: v for k, v in request.headers.items() if k != name}
    if value is not None:
        headers[name] = value
    return replace(request, headers=headers)


def hmac_sha256_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's algorithm written out independently of the adapter, padding restored."""
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def parse(body: bytes, msg_id: str = MSG_ID) -> list[ReceiptEvent]:
    request = standard_webhooks_request(SECRET, body, timestamp=NOW, msg_id=msg_id)
    adapter = adapter_at(NOW)
    adapter.verify(request, [SECRET])
    return adapter.parse(request)


def receipt_body(**data: Any) -> bytes:
    return json.dumps(
        {"type": "message.status", "data": {"message_id": "gw-1", "status": "delivered", **data}}
    ).encode()


class TestStandardWebhooksSecurity(TimestampedProviderSecuritySuite):
    adapter = adapter_at(NOW)
    now = NOW
    tolerance_seconds = 300
    secret = SECRET
    other_secret = OTHER_SECRET
    valid_body = fixture("standard_webhooks", "delivered.json")
    tampered_body = valid_body.replace(b'"delivered"', b'"undelivered"')
    signature_header = "webhook-signature"
    bad_signature = "v1," + base64.b64encode(bytes(32)).decode()  # an HMAC-SHA256's length, all zero

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return standard_webhooks_request(secret, body, timestamp=kw.pop("timestamp", NOW), **kw)


# The published vector


def test_published_vector_signature_is_reproduced() -> None:
    assert signing.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_PAYLOAD) == VECTOR_SIGNATURE


def test_published_vector_verifies_on_a_clock_fixed_at_its_timestamp() -> None:
    adapter_at(VECTOR_TS).verify(vector_request(), [VECTOR_SECRET])


def test_published_invalid_signature_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(vector_request(VECTOR_INVALID_SIGNATURE), [VECTOR_SECRET])


def test_published_vector_is_refused_on_the_real_clock() -> None:
    # The module's adapter reads the system clock; a 2021 timestamp is far outside the window.
    with pytest.raises(SignatureError, match="tolerance"):
        standard_webhooks.adapter.verify(vector_request(), [VECTOR_SECRET])


def test_multi_signature_header_containing_the_valid_one_verifies() -> None:
    header = " ".join([OTHER_V1, OTHER_V2, VECTOR_SIGNATURE, OTHER_V1])
    adapter_at(VECTOR_TS).verify(vector_request(header), [VECTOR_SECRET])


def test_multi_signature_header_without_the_valid_one_is_refused() -> None:
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(vector_request(f"{OTHER_V1} {OTHER_V2}"), [VECTOR_SECRET])


@pytest.mark.parametrize(
    "header",
    [VECTOR_SIGNATURE.replace("v1,", "v2,"), VECTOR_SIGNATURE.replace("v1,", "v1a,"), VECTOR_SIGNATURE[3:]],
    ids=["v2", "v1a", "no-version"],
)
def test_valid_digest_under_another_version_or_none_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(vector_request(header), [VECTOR_SECRET])


# Secrets


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # 31 characters: one "=" missing
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",  # 34 characters: "==" missing
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",  # and without the prefix
    ],
)
def test_secret_missing_base64_padding_is_tolerated(secret: str) -> None:
    expected = hmac_sha256_signature(secret, VECTOR_ID, VECTOR_TS, VECTOR_PAYLOAD)
    assert expected != VECTOR_SIGNATURE
    assert signing.sign(secret, VECTOR_ID, VECTOR_TS, VECTOR_PAYLOAD) == expected
    adapter_at(VECTOR_TS).verify(vector_request(expected), [secret])


def test_secret_without_the_whsec_prefix_signs_like_the_prefixed_one() -> None:
    adapter_at(VECTOR_TS).verify(vector_request(), ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])


def test_malformed_stored_secret_does_not_hide_a_valid_one_beside_it() -> None:
    adapter_at(VECTOR_TS).verify(vector_request(), ["whsec_not*base64", VECTOR_SECRET])
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(vector_request(), ["whsec_not*base64"])


@pytest.mark.parametrize(
    "secret",
    [
        VECTOR_SECRET,  # 24 bytes
        "whsec_" + base64.b64encode(bytes(range(64))).decode(),
        base64.b64encode(bytes(range(40))).decode(),
        standard_webhooks.adapter.generate_secret(),
    ],
    ids=["24-bytes", "64-bytes", "no-prefix", "generated"],
)
def test_validate_secret_accepts_base64_keys_of_24_to_64_bytes(secret: str) -> None:
    standard_webhooks.adapter.validate_secret(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(bytes(23)).decode(),
        "whsec_" + base64.b64encode(bytes(65)).decode(),
        "whsec_",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # decodes to 23 bytes
    ],
    ids=["23-bytes", "65-bytes", "empty", "23-bytes-unpadded"],
)
def test_validate_secret_refuses_keys_outside_24_to_64_bytes(secret: str) -> None:
    with pytest.raises(ValueError, match="24 to 64 bytes"):
        standard_webhooks.adapter.validate_secret(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_not base64 at all!",
        "whsec_@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwB",
        "whsec_é",
    ],
    ids=["spaces", "symbols", "impossible-length", "non-ascii"],
)
def test_validate_secret_refuses_what_is_not_base64(secret: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        standard_webhooks.adapter.validate_secret(secret)


def test_generated_secret_is_a_prefixed_32_byte_key() -> None:
    first, second = standard_webhooks.adapter.generate_secret(), standard_webhooks.adapter.generate_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


# Headers and the replay window


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_request_missing_a_signature_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError, match="missing"):
        adapter_at(VECTOR_TS).verify(with_header(vector_request(), header, None), [VECTOR_SECRET])


def test_timestamp_is_covered_by_the_signature() -> None:
    request = with_header(vector_request(), "webhook-timestamp", str(VECTOR_TS + 1))
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(request, [VECTOR_SECRET])


def test_webhook_id_is_covered_by_the_signature() -> None:
    request = with_header(vector_request(), "webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJel")
    with pytest.raises(SignatureError):
        adapter_at(VECTOR_TS).verify(request, [VECTOR_SECRET])


@pytest.mark.parametrize("offset", [-300, 300], ids=["past", "future"])
def test_timestamp_exactly_at_the_tolerance_verifies(offset: int) -> None:
    # The reference libraries refuse only beyond five minutes.
    adapter_at(VECTOR_TS - offset).verify(vector_request(), [VECTOR_SECRET])


@pytest.mark.parametrize(("offset", "verifies"), [(-301, False), (-299, True), (299, True), (301, False)], ids=str)
def test_published_vector_within_five_minutes_of_the_clock_verifies(offset: int, verifies: bool) -> None:
    adapter = adapter_at(VECTOR_TS + offset)
    if verifies:
        adapter.verify(vector_request(), [VECTOR_SECRET])
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            adapter.verify(vector_request(), [VECTOR_SECRET])


@pytest.mark.parametrize("timestamp", ["1614265330.0", "1614265330.5", "1.6e9", "0x6038d8f2", "now", "-"])
def test_timestamp_that_is_not_an_integer_is_refused(timestamp: str) -> None:
    request = with_header(vector_request(), "webhook-timestamp", timestamp)
    with pytest.raises(SignatureError, match="unix time"):
        adapter_at(VECTOR_TS).verify(request, [VECTOR_SECRET])


# Parsing our generic JSON body


def test_single_object_fixture_parses_to_one_event_keyed_by_the_webhook_id() -> None:
    events = parse(fixture("standard_webhooks", "delivered.json"))
    assert events == [
        ReceiptEvent(
            provider_message_id="gw-7f3a9c2e",
            provider_status="delivered",
            status=Status.DELIVERED,
            error_code="",
            error_description="",
            provider_timestamp=datetime(2026, 11, 26, 10, 0, 3, tzinfo=UTC),
            event_id=MSG_ID,
            extra={},
        )
    ]
    assert events[0].dedupe_key() == MSG_ID


def test_error_fixture_keeps_the_code_and_the_description_and_its_time_in_utc() -> None:
    (event,) = parse(fixture("standard_webhooks", "undelivered_error.json"))
    assert event == ReceiptEvent(
        provider_message_id="gw-41b8d0aa",
        provider_status="undelivered",
        status=Status.UNDELIVERED,
        error_code="0x0b",
        error_description="Absent subscriber",
        provider_timestamp=datetime(2026, 11, 26, 10, 2, 9, tzinfo=UTC),
        event_id=MSG_ID,
        extra={},
    )
    # Sent as 11:02:09+01:00: the instant is kept, in UTC (PostgreSQL refuses some offsets).
    assert event.provider_timestamp is not None
    assert event.provider_timestamp.utcoffset() == timedelta(0)


def test_network_and_price_fixture_keeps_them() -> None:
    (event,) = parse(fixture("standard_webhooks", "delivered_network_price.json"))
    assert event == ReceiptEvent(
        provider_message_id="gw-7f3a9c2f",
        provider_status="delivered",
        status=Status.DELIVERED,
        error_code="",
        error_description="",
        provider_timestamp=datetime(2026, 11, 26, 10, 0, 3, tzinfo=UTC),
        event_id=MSG_ID,
        extra={},
        network="20801",
        price=Decimal("0.045000"),
        currency="EUR",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"network": "Orange F", "price": 0.05, "currency": "eur"}, ("Orange F", Decimal("0.050000"), "EUR")),
        ({"network": 20801, "price": True, "currency": 978}, ("", None, "")),
        ({"network": "x" * 65, "price": "-1", "currency": "EUR"}, ("", None, "")),
        ({"price": {"amount": 1}, "currency": "EURO"}, ("", None, "")),
        ({"price": "0.01"}, ("", Decimal("0.010000"), "")),
    ],
)
def test_unusable_network_or_price_is_dropped_and_the_receipt_kept(
    fields: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    (event,) = parse(receipt_body(**fields))
    assert (event.network, event.price, event.currency) == expected
    assert event.status == Status.DELIVERED


def test_list_fixture_parses_to_one_event_per_item_keyed_by_webhook_id_and_index() -> None:
    body = fixture("standard_webhooks", "batch.json")
    # Each item keeps its own part of the body, not the whole body again.
    items = [json.dumps(item, separators=(",", ":")) for item in json.loads(body)["data"]]
    events = parse(body)
    assert events == [
        ReceiptEvent(
            provider_message_id="gw-7f3a9c2e",
            provider_status="sent",
            status=Status.SENT,
            provider_timestamp=datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC),
            event_id=f"{MSG_ID}:0",
            raw=items[0],
        ),
        ReceiptEvent(
            provider_message_id="gw-7f3a9c2e",
            provider_status="DELIVRD",
            status=Status.DELIVERED,
            provider_timestamp=datetime(2026, 11, 26, 10, 0, 3, tzinfo=UTC),
            event_id=f"{MSG_ID}:1",
            raw=items[1],
        ),
        ReceiptEvent(
            provider_message_id="gw-90e1c4f7",
            provider_status="rejected",
            status=Status.REJECTED,
            error_code="21610",
            error_description="Recipient opted out",
            provider_timestamp=datetime(2026, 11, 26, 5, 4, 58, tzinfo=timezone(timedelta(hours=-5))),
            event_id=f"{MSG_ID}:2",
            raw=items[2],
        ),
    ]
    assert [e.dedupe_key() for e in events] == [f"{MSG_ID}:0", f"{MSG_ID}:1", f"{MSG_ID}:2"]
    assert (events[1].error_code, events[1].error_description) == ("", "")


def test_long_webhook_id_still_gives_each_list_item_its_own_stable_key() -> None:
    # `<id>:1` and `<id>:10` must not become one key once cut to the 128-character column.
    long_id = "msg_" + "x" * 122
    body = json.dumps({"data": [{"message_id": f"gw-{i}", "status": "delivered"} for i in range(12)]}).encode()
    keys = [event.dedupe_key() for event in parse(body, msg_id=long_id)]
    assert len(set(keys)) == 12
    assert all(len(key) <= 128 for key in keys)
    assert keys == [event.dedupe_key() for event in parse(body, msg_id=long_id)]


def test_webhook_ids_longer_than_the_key_column_do_not_share_a_key() -> None:
    body = receipt_body()
    (first,) = parse(body, msg_id="msg_" + "x" * 200 + "1")
    (second,) = parse(body, msg_id="msg_" + "x" * 200 + "2")
    assert first.dedupe_key() != second.dedupe_key()
    assert len(first.dedupe_key()) <= 128


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("delivered", Status.DELIVERED),
        ("DELIVRD", Status.DELIVERED),
        ("undeliv", Status.UNDELIVERED),
        ("rejectd", Status.REJECTED),
        ("submitted", Status.ACCEPTED),
        ("enroute", Status.SENT),
        ("expired", Status.EXPIRED),
        ("unknown", Status.UNKNOWN),
        ("in_limbo", Status.UNKNOWN),
    ],
)
def test_status_maps_case_insensitively_and_unmapped_ones_are_unknown(status: str, normalized: Status) -> None:
    (event,) = parse(receipt_body(status=status))
    assert (event.provider_status, event.status) == (status, normalized)


def test_message_id_of_128_characters_is_accepted() -> None:
    (event,) = parse(receipt_body(message_id="m" * 128))
    assert event.provider_message_id == "m" * 128


def test_numeric_error_code_is_kept_as_text() -> None:
    (event,) = parse(receipt_body(status="undelivered", error_code=30003))
    assert event.error_code == "30003"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"delivered", id="not-json"),
        pytest.param(b'{"data": {"message_id": "gw-1", "status": "deliv\xe9red"}}', id="not-utf8"),
        pytest.param(b'[{"message_id": "gw-1", "status": "delivered"}]', id="top-level-array"),
        pytest.param(b'"delivered"', id="top-level-string"),
        pytest.param(b'{"type": "message.status"}', id="missing-data"),
        pytest.param(b'{"data": null}', id="data-null"),
        pytest.param(b'{"data": "delivered"}', id="data-string"),
        pytest.param(b'{"data": []}', id="data-empty-list"),
        pytest.param(b'{"data": [{"message_id": "gw-1", "status": "sent"}, 1]}', id="data-list-with-non-object"),
        pytest.param(b'{"data": {"status": "delivered"}}', id="missing-message-id"),
        pytest.param(receipt_body(message_id=""), id="empty-message-id"),
        pytest.param(receipt_body(message_id=12345), id="numeric-message-id"),
        pytest.param(receipt_body(message_id=None), id="null-message-id"),
        pytest.param(b'{"data": {"message_id": "gw-1"}}', id="missing-status"),
        pytest.param(receipt_body(status=3), id="numeric-status"),
        pytest.param(receipt_body(status=["delivered"]), id="list-status"),
        pytest.param(receipt_body(status=""), id="empty-status"),
        pytest.param(receipt_body(timestamp="2026-11-26T10:00:03"), id="timestamp-without-zone"),
        pytest.param(receipt_body(timestamp=1795687203), id="numeric-timestamp"),
        pytest.param(receipt_body(timestamp="yesterday"), id="unreadable-timestamp"),
        pytest.param(receipt_body(message_id="m" * 129), id="message-id-over-128"),
        pytest.param(receipt_body(message_id="gw-\x00-1"), id="nul-in-message-id"),
        pytest.param(receipt_body(status="s" * 65), id="status-over-64"),
        pytest.param(receipt_body(error_code="e" * 33), id="error-code-over-32"),
    ],
)
def test_malformed_body_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse(body)


class TestStandardWebhooksExtremes(ExtremeInputSuite):
    provider = "standard-webhooks"
    secret = SECRET
    message_id = "gw-7f3a9c2e"

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        item = {
            "message_id": slots.get("message_id", self.message_id),
            "status": slots.get("status", "undelivered"),
            "error_code": slots.get("error_code", "<<number>>" if "number" in slots else "27"),
            "error_description": slots.get("description", "Absent subscriber"),
            "timestamp": slots.get("time", "2026-11-26T10:00:02Z"),
        }
        body = dumps({"type": "message.status", "data": item}, number=slots.get("number", ""))
        headers = generic_headers(connection, body)
        return client.post(
            f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
        )


class TestStandardWebhooksBatchBounds(MultiEventSuite):
    adapter = standard_webhooks.adapter
    secret = SECRET

    def request(self, count: int, *, filler: int = 0) -> tuple[str, bytes, dict[str, str]]:
        items = [{"message_id": f"gw-{i:05d}", "status": "delivered"} for i in range(count)]
        body = json.dumps({"type": "message.status", "trace": "x" * filler, "data": items}).encode()
        msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        return (
            "",
            body,
            {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.sign(SECRET, msg_id, timestamp, body),
            },
        )
