"""Plivo message status callbacks: signature V3 (plivo-go's published vectors, the comma list,
GET and POST, proxies), parsing of real callback bodies under tests/fixtures/plivo/, and one
callback through the real endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import plivo
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, fill
from tests.providers.security_suite import SignedProviderSecuritySuite
from tests.providers.signing import FORM, fixture, form_fixture

TOKEN = "MzQ1NjI3ODkwYWJjZGVmMDEyMzQ1Njc4OTBhYmNk"
OTHER_TOKEN = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMy"
URL = "https://dlr.example/hooks/plivo-main/"
NONCE = "05429567804466091622"

# Published vectors: plivo-go utils_test.go TestValidateSignatureV3Pass1-4 (providers.md §4.4).
VECTOR_TOKEN = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
VECTOR_NONCE = "31627761595286130198"
VECTOR_URL_WITH_QUERY = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d"
VECTOR_URL = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"
VECTOR_PARAMS = {
    "Direction": "outbound",
    "From": "19792014278",
    "ALegUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallStatus": "in-progress",
    "BillRate": "0.002",
    "ParentAuthID": "MANWVLYTK4ZWU1YTY4QA",
    "To": "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
    "ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "RequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "SIP-H-To": "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
    "SessionStart": "2020-04-08 11:34:33.238707",
    "Event": "StartApp",
}
VECTORS = [
    pytest.param(VECTOR_URL_WITH_QUERY, "POST", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=", id="pass1-post-query"),
    pytest.param(VECTOR_URL_WITH_QUERY, "GET", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=", id="pass2-get-query"),
    pytest.param(VECTOR_URL, "POST", "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=", id="pass3-post"),
    pytest.param(VECTOR_URL, "GET", "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc=", id="pass4-get"),
]


def vector_params(**changes: str) -> dict[str, list[str]]:
    return {name: [value] for name, value in {**VECTOR_PARAMS, **changes}.items()}


def plivo_request(
    token: str,
    url: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    signed_url: str | None = None,
    nonce: str = NONCE,
    signature: str | None = None,
) -> WebhookRequest:
    """A callback that arrived at `url`, signed as Plivo signs over `signed_url` (default `url`).
    For GET the parameters are in `url`'s query and `body` is empty."""
    if signature is None:
        params = parse_qs(body.decode(), keep_blank_values=True) if method == "POST" else {}
        signature = plivo.signature_v3(token, signed_url or url, nonce, method=method, params=params)
    return WebhookRequest(
        method=method,
        url=url,
        headers={
            "content-type": FORM,
            "user-agent": "PlivoHTTP",
            "x-plivo-signature-v3": signature,
            "x-plivo-signature-v3-nonce": nonce,
        },
        body=body,
    )


def vector_request(url: str, method: str, signature: str, params: dict[str, str] = VECTOR_PARAMS) -> WebhookRequest:
    """The vector as Plivo would deliver it: POST parameters in the body, GET ones in the query."""
    if method == "POST":
        return plivo_request(VECTOR_TOKEN, url, urlencode(params).encode(), nonce=VECTOR_NONCE, signature=signature)
    joined = f"{url}&{urlencode(params)}" if "?" in url else f"{url}?{urlencode(params)}"
    return plivo_request(VECTOR_TOKEN, joined, method="GET", nonce=VECTOR_NONCE, signature=signature)


def edit_form(body: bytes, *, drop: tuple[str, ...] = (), **changes: str) -> bytes:
    """A fixture body with fields removed or set, as Plivo would have encoded it."""
    fields = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k not in drop]
    fields = [(k, changes.pop(k, v)) for k, v in fields]
    return urlencode(fields + list(changes.items())).encode()


def hmac_sha256_b64(key: str, text: str) -> str:
    """The V3 digest written out independently of the adapter."""
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def parse_one(body: bytes) -> ReceiptEvent:
    request = plivo_request(TOKEN, URL, body)
    plivo.adapter.verify(request, [TOKEN])
    (event,) = plivo.adapter.parse(request)
    return event


class TestPlivoSecurity(SignedProviderSecuritySuite):
    adapter = plivo.adapter
    secret = TOKEN
    other_secret = OTHER_TOKEN
    valid_body = fixture("plivo", "delivered.txt")
    tampered_body = valid_body.replace(b"Status=delivered", b"Status=undelivered")
    signature_header = "x-plivo-signature-v3"
    bad_signature = base64.b64encode(bytes(32)).decode()  # an HMAC-SHA256's length, all zero

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return plivo_request(secret, URL, body, **kw)

    def signed_get(self) -> WebhookRequest:
        # A callback `method` of GET: the parameters in the query, which V3 signs with the URL.
        return plivo_request(self.secret, f"{URL}?{self.valid_body.decode()}", method="GET")


class TestPlivoSecurityBehindProxy(SignedProviderSecuritySuite):
    """The same refusals when Django sees the proxy's internal URL and `public_url` is set."""

    adapter = plivo.adapter
    secret = TOKEN
    other_secret = OTHER_TOKEN
    valid_body = fixture("plivo", "undelivered_30.txt")
    tampered_body = valid_body.replace(b"ErrorCode=30", b"ErrorCode=20")
    signature_header = "x-plivo-signature-v3"
    bad_signature = base64.b64encode(bytes(32)).decode()
    public_url = "https://public.example/hooks/plivo-main/"

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return plivo_request(secret, "http://internal:8000/hooks/plivo-main/", body, signed_url=self.public_url)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        self.adapter.verify(request, secrets, public_url=self.public_url)


# Published vectors


@pytest.mark.parametrize(("url", "method", "expected"), VECTORS)
def test_published_vector_signature_is_reproduced(url: str, method: str, expected: str) -> None:
    assert plivo.signature_v3(VECTOR_TOKEN, url, VECTOR_NONCE, method=method, params=vector_params()) == expected


@pytest.mark.parametrize(("url", "method", "expected"), VECTORS)
def test_published_vector_verifies_as_a_delivered_request(url: str, method: str, expected: str) -> None:
    plivo.adapter.verify(vector_request(url, method, expected), [VECTOR_TOKEN])


@pytest.mark.parametrize(("url", "method", "expected"), VECTORS)
@pytest.mark.parametrize(
    "tamper",
    [
        {"params": {**VECTOR_PARAMS, "CallStatus": "completed"}},
        {"params": {**VECTOR_PARAMS, "Extra": "1"}},
        {"params": {k: v for k, v in VECTOR_PARAMS.items() if k != "BillRate"}},
        {"signature": "+"},
        {"nonce": "31627761595286130199"},
        {"token": "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc5"},
    ],
    ids=["changed-param", "added-param", "dropped-param", "signature", "nonce", "token"],
)
def test_tampered_published_vector_is_refused(url: str, method: str, expected: str, tamper: dict[str, Any]) -> None:
    # plivo-go's TestValidateSignatureV3Fail changes the signature's last character.
    signature = expected[:-1] + tamper["signature"] if "signature" in tamper else expected
    request = vector_request(url, method, signature, tamper.get("params", VECTOR_PARAMS))
    if "nonce" in tamper:
        request = replace(request, headers={**request.headers, "x-plivo-signature-v3-nonce": tamper["nonce"]})
    with pytest.raises(SignatureError):
        plivo.adapter.verify(request, [tamper.get("token", VECTOR_TOKEN)])


@pytest.mark.parametrize(("url", "method", "expected"), VECTORS)
def test_published_vector_under_the_other_method_is_refused(url: str, method: str, expected: str) -> None:
    with pytest.raises(SignatureError):
        plivo.adapter.verify(vector_request(url, "GET" if method == "POST" else "POST", expected), [VECTOR_TOKEN])


def test_signed_string_follows_the_documented_separators() -> None:
    params = {"b": ["2"], "a": ["1 2"]}
    base = "https://h.example/p/"
    assert plivo.signed_base_url(f"{base}?y=2&x=1", "POST", params) == f"{base}?x=1&y=2.a1 2b2"
    assert plivo.signed_base_url(base, "POST", params) == f"{base}?a1 2b2"
    assert plivo.signed_base_url(f"{base}?y=2&x=1", "POST", {}) == f"{base}?x=1&y=2"
    assert plivo.signed_base_url(base, "POST", {}) == base
    assert plivo.signed_base_url(f"{base}?y=2", "GET", params) == f"{base}?a=1 2&b=2&y=2"
    assert plivo.signed_base_url(base, "GET", {}) == base
    expected = hmac_sha256_b64(TOKEN, f"{base}?x=1&y=2.a1 2b2.{NONCE}")
    assert plivo.signature_v3(TOKEN, f"{base}?y=2&x=1", NONCE, method="POST", params=params) == expected


# Signature headers


def test_comma_separated_signatures_verify_when_one_matches() -> None:
    request = plivo_request(TOKEN, URL, fixture("plivo", "sent.txt"))
    good = request.headers["x-plivo-signature-v3"]
    header = f"{base64.b64encode(bytes(32)).decode()}, {good}"
    plivo.adapter.verify(replace(request, headers={**request.headers, "x-plivo-signature-v3": header}), [TOKEN])


def test_comma_separated_signatures_none_matching_are_refused() -> None:
    request = plivo_request(TOKEN, URL, fixture("plivo", "sent.txt"))
    header = ",".join(base64.b64encode(bytes([i]) * 32).decode() for i in range(3))
    with pytest.raises(SignatureError):
        plivo.adapter.verify(replace(request, headers={**request.headers, "x-plivo-signature-v3": header}), [TOKEN])


def test_main_account_signature_verifies_with_the_main_account_token() -> None:
    # A subaccount's callback: -V3 made with the subaccount's token, -Ma-V3 with the main one.
    sub = plivo_request(OTHER_TOKEN, URL, fixture("plivo", "sent.txt"))
    main = plivo_request(TOKEN, URL, fixture("plivo", "sent.txt")).headers["x-plivo-signature-v3"]
    request = replace(sub, headers={**sub.headers, "x-plivo-signature-ma-v3": main})
    plivo.adapter.verify(request, [TOKEN])
    assert "x-plivo-signature-ma-v3" not in plivo.adapter.headers_to_keep(request)


def test_missing_nonce_is_refused() -> None:
    request = plivo_request(TOKEN, URL, fixture("plivo", "sent.txt"))
    headers = {k: v for k, v in request.headers.items() if k != "x-plivo-signature-v3-nonce"}
    with pytest.raises(SignatureError, match="Nonce"):
        plivo.adapter.verify(replace(request, headers=headers), [TOKEN])


def test_replayed_callback_verifies_again_and_has_the_same_dedupe_key() -> None:
    # V3 has no timestamp: a replay is accepted and stored once, as the same receipt.
    request = plivo_request(TOKEN, URL, fixture("plivo", "delivered.txt"))
    plivo.adapter.verify(request, [TOKEN])
    plivo.adapter.verify(request, [TOKEN])
    assert plivo.adapter.parse(request)[0].dedupe_key() == plivo.adapter.parse(request)[0].dedupe_key()


def test_get_callback_is_signed_over_the_query_and_parsed_from_it() -> None:
    url = f"{URL}?{fixture('plivo', 'sent.txt').decode()}"
    request = plivo_request(TOKEN, url, method="GET")
    plivo.adapter.verify(request, [TOKEN])
    (event,) = plivo.adapter.parse(request)
    assert (event.provider_message_id, event.status) == ("8f3c1a2e-5b6d-11ef-9a4c-0242ac120002", Status.SENT)


def test_public_url_override_keeps_the_request_query() -> None:
    internal = "http://internal:8000/hooks/plivo-main/?tenant=7"
    request = plivo_request(
        TOKEN, internal, fixture("plivo", "sent.txt"), signed_url="https://public.example/hooks/plivo-main/?tenant=7"
    )
    plivo.adapter.verify(request, [TOKEN], public_url="https://public.example/hooks/plivo-main/?tenant=7")
    with pytest.raises(SignatureError):
        plivo.adapter.verify(request, [TOKEN])


# Parsing real status callbacks

MESSAGE_ID = "8f3c1a2e-5b6d-11ef-9a4c-0242ac120002"
# Every fixture went to MCC 208, MNC 01 (Orange France) at TotalAmount 0.06800 (in USD).
NETWORK_PRICE: dict[str, Any] = {"network": "20801", "price": Decimal("0.068000"), "currency": "USD"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "queued.txt",
            ReceiptEvent(
                MESSAGE_ID,
                "queued",
                Status.ACCEPTED,
                "",
                "",
                datetime(2026, 11, 26, 10, 0, 0, 418020, UTC),
                **NETWORK_PRICE,
            ),
        ),
        (
            "sent.txt",
            ReceiptEvent(
                MESSAGE_ID, "sent", Status.SENT, "", "", datetime(2026, 11, 26, 10, 0, 1, 250731, UTC), **NETWORK_PRICE
            ),
        ),
        (
            "delivered.txt",
            ReceiptEvent(
                MESSAGE_ID,
                "delivered",
                Status.DELIVERED,
                "",
                "",
                datetime(2026, 11, 26, 10, 0, 4, 907112, UTC),
                **NETWORK_PRICE,
            ),
        ),
        (
            "undelivered_30.txt",
            ReceiptEvent(
                "c47d9e10-5b6d-11ef-8e21-0242ac120003",
                "undelivered",
                Status.UNDELIVERED,
                "30",
                "",
                datetime(2026, 11, 26, 10, 2, 15, 330500, UTC),
                **NETWORK_PRICE,
            ),
        ),
        (
            "failed_40.txt",
            ReceiptEvent(
                "d9a0b7f2-5b6d-11ef-b3e5-0242ac120004",
                "failed",
                Status.FAILED,
                "40",
                "",
                datetime(2026, 11, 26, 10, 3, 0, 4200, UTC),
                **NETWORK_PRICE,
            ),
        ),
    ],
)
def test_status_callback_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    (event,) = plivo.adapter.parse(plivo_request(TOKEN, URL, fixture("plivo", name)))
    assert event == expected
    assert (event.event_id, event.permanent, event.raw, event.extra) == ("", None, "", {})


def test_message_is_known_by_its_message_uuid_never_by_parent_message_uuid() -> None:
    # Plivo: ParentMessageUUID is "reserved for future use, and should be ignored for now".
    (event,) = plivo.adapter.parse(plivo_request(TOKEN, URL, fixture("plivo", "delivered_other_parent.txt")))
    assert (event.provider_message_id, event.status) == ("e2b7c4d8-5b6d-11ef-a1f3-0242ac120005", Status.DELIVERED)


@pytest.mark.parametrize(
    ("changes", "network", "price"),
    [
        ({"MCC": "310", "MNC": "260"}, "310260", Decimal("0.068000")),
        ({"MCC": "", "MNC": "01"}, "", Decimal("0.068000")),
        ({"MCC": "208", "MNC": "x1"}, "", Decimal("0.068000")),
        ({"TotalAmount": ""}, "20801", None),
        ({"TotalAmount": "abc"}, "20801", None),
        ({"TotalAmount": "0.136", "TotalRate": "0.068", "Units": "2"}, "20801", Decimal("0.136000")),
    ],
)
def test_network_is_mcc_and_mnc_and_price_the_total_amount(
    changes: dict[str, str], network: str, price: Decimal | None
) -> None:
    fields = dict(parse_qsl(fixture("plivo", "delivered.txt").decode(), keep_blank_values=True)) | changes
    (event,) = plivo.adapter.parse(plivo_request(TOKEN, URL, urlencode(fields).encode()))
    assert (event.network, event.price, event.currency) == (network, price, "USD" if price is not None else "")


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("queued", Status.ACCEPTED),
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("read", Status.DELIVERED),
        ("undelivered", Status.UNDELIVERED),
        ("failed", Status.FAILED),
        ("rejected", Status.REJECTED),
        ("Delivered", Status.DELIVERED),
        ("received", Status.UNKNOWN),
        ("a_status_plivo_adds_later", Status.UNKNOWN),
    ],
)
def test_status_values_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    event = parse_one(edit_form(fixture("plivo", "delivered.txt"), Status=status))
    assert (event.provider_status, event.status) == (status, normalized)


def test_undelivered_is_never_mapped_to_sent() -> None:
    assert parse_one(fixture("plivo", "undelivered_30.txt")).status == Status.UNDELIVERED


@pytest.mark.parametrize(("raw", "code"), [("000", ""), ("", ""), ("30", "30"), ("0", "0"), ("1000", "1000")])
def test_error_code_is_kept_verbatim_and_000_means_none(raw: str, code: str) -> None:
    assert parse_one(edit_form(fixture("plivo", "undelivered_30.txt"), ErrorCode=raw)).error_code == code


def test_stage_time_falls_back_to_the_message_time_and_skips_unreadable_ones() -> None:
    body = edit_form(fixture("plivo", "delivered.txt"), DeliveryReportTime="yesterday", drop=("SentTime", "QueuedTime"))
    assert parse_one(body).provider_timestamp == datetime(2026, 11, 26, 10, 0, 0, 412345, UTC)
    body = edit_form(body, drop=("MessageTime",))
    assert parse_one(body).provider_timestamp is None


def test_each_status_of_a_message_has_its_own_dedupe_key() -> None:
    keys = {parse_one(fixture("plivo", name)).dedupe_key() for name in ("queued.txt", "sent.txt", "delivered.txt")}
    assert len(keys) == 3


@pytest.mark.parametrize(("field", "reason"), [("MessageUUID", "MessageUUID"), ("Status", "Status")])
def test_callback_without_required_field_is_refused(field: str, reason: str) -> None:
    for body in (
        edit_form(fixture("plivo", "sent.txt"), drop=(field,)),
        edit_form(fixture("plivo", "sent.txt"), drop=(), **dict.fromkeys([field], "")),
    ):
        with pytest.raises(PayloadError, match=reason):
            plivo.adapter.parse(plivo_request(TOKEN, URL, body))


@pytest.mark.parametrize("body", [b"MessageUUID", b"\xff\xfe=1", b'{"MessageUUID": "x", "Status": "sent"}'])
def test_body_that_is_not_a_utf8_form_is_refused(body: bytes) -> None:
    request = WebhookRequest(method="POST", url=URL, headers={"content-type": FORM}, body=body)
    with pytest.raises(PayloadError):
        plivo.adapter.parse(request)


@pytest.mark.parametrize(
    "changes",
    [{"MessageUUID": "m" * 129}, {"MessageUUID": "m\x00"}, {"ErrorCode": "9" * 33}],
    ids=["id-over-128", "nul-in-id", "error-code-over-32"],
)
def test_field_that_does_not_fit_its_column_is_refused(changes: dict[str, str]) -> None:
    body = edit_form(fixture("plivo", "undelivered_30.txt"), drop=(), **changes)
    with pytest.raises(PayloadError):
        plivo.adapter.parse(plivo_request(TOKEN, URL, body))


def test_connection_takes_no_options() -> None:
    plivo.adapter.validate_options({})
    with pytest.raises(ValueError, match="no options"):
        plivo.adapter.validate_options({"accept_v2": True})


# Through the real endpoint


@pytest.mark.django_db
def test_signed_undelivered_callback_through_the_endpoint_stores_the_receipt_and_moves_the_message(client) -> None:
    connection = ConnectionFactory(provider="plivo", secrets=[OTHER_TOKEN, TOKEN])
    MessageFactory(connection=connection, provider_message_id="c47d9e10-5b6d-11ef-8e21-0242ac120003")
    body = fixture("plivo", "undelivered_30.txt")
    url = f"http://testserver/hooks/{connection.slug}/"
    params = parse_qs(body.decode(), keep_blank_values=True)
    headers = {
        "x-plivo-signature-v3": plivo.signature_v3(TOKEN, url, NONCE, method="POST", params=params),
        "x-plivo-signature-v3-nonce": NONCE,
    }
    response = client.post(f"/hooks/{connection.slug}/", data=body, content_type=FORM, headers=headers)
    assert response.status_code == 200, response.content
    message = Message.objects.get(provider_message_id="c47d9e10-5b6d-11ef-8e21-0242ac120003")
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "30")
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status, receipt.error_code) == ("undelivered", Status.UNDELIVERED, "30")
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 2, 15, 330500, UTC)
    assert "x-plivo-signature-v3" not in receipt.headers
    replay = client.post(f"/hooks/{connection.slug}/", data=body, content_type=FORM, headers=headers)
    assert (replay.status_code, Receipt.objects.count()) == (200, 1)


@pytest.mark.django_db
def test_unsigned_callback_through_the_endpoint_is_refused_and_stores_nothing(client) -> None:
    connection = ConnectionFactory(provider="plivo", secrets=[TOKEN])
    response = client.post(f"/hooks/{connection.slug}/", data=fixture("plivo", "delivered.txt"), content_type=FORM)
    assert response.status_code == 401
    assert Receipt.objects.count() == 0


class TestPlivoExtremes(ExtremeInputSuite):
    provider = "plivo"
    secret = TOKEN
    message_id = "c47d9e10-5b6d-11ef-8e21-0242ac120003"
    fields = {
        "time": plivo.STAGE_TIMES,
        "number": ("ErrorCode",),
        "message_id": ("MessageUUID",),
        "status": ("Status",),
        "error_code": ("ErrorCode",),
    }

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        form = fill(form_fixture("plivo", "undelivered_30.txt"), slots, self.fields)
        body = urlencode(form).encode()
        url = f"http://testserver/hooks/{connection.slug}/"
        params = parse_qs(body.decode(), keep_blank_values=True)
        headers = {
            "x-plivo-signature-v3": plivo.signature_v3(TOKEN, url, NONCE, method="POST", params=params),
            "x-plivo-signature-v3-nonce": NONCE,
        }
        return client.post(f"/hooks/{connection.slug}/", data=body, content_type=FORM, headers=headers)
