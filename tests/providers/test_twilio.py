"""Twilio status callbacks at the adapter level: signature (published vectors, ports, proxies,
repeated parameters) and parsing of real callback bodies kept under tests/fixtures/twilio/."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import twilio
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, fill
from tests.providers.security_suite import SignedProviderSecuritySuite
from tests.providers.signing import FORM, fixture, form_fixture, twilio_request
from tests.webhooks import twilio_signed

TOKEN = "f3b9c1d2e4a5b6c7d8e9f0a1b2c3d4e5"
OTHER_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
URL = "https://dlr.example/hooks/twilio-main/"

# Published vectors: providers.md §4.1, from twilio-python tests/unit/test_request_validator.py.
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_BODY_SHA256 = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
JSON_URL = f"{VECTOR_URL}&bodySHA256={JSON_BODY_SHA256}"
JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="


def form_body(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


def edit_form(body: bytes, *, drop: tuple[str, ...] = (), **changes: str) -> bytes:
    """A fixture body with fields removed or set, as Twilio would have encoded it."""
    fields = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k not in drop]
    fields = [(k, changes.pop(k, v)) for k, v in fields]
    return urlencode(fields + list(changes.items())).encode()


def hmac_sha1_b64(key: str, text: str) -> str:
    """The Twilio algorithm written out independently of the adapter."""
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()).decode()


def parse_one(body: bytes, **kw: Any) -> ReceiptEvent:
    (event,) = twilio.adapter.parse(twilio_request(TOKEN, URL, body, **kw))
    return event


class TestTwilioSecurity(SignedProviderSecuritySuite):
    adapter = twilio.adapter
    secret = TOKEN
    other_secret = OTHER_TOKEN
    valid_body = fixture("twilio", "delivered.txt")
    tampered_body = valid_body.replace(b"MessageStatus=delivered", b"MessageStatus=undelivered")
    signature_header = "x-twilio-signature"
    bad_signature = base64.b64encode(bytes(20)).decode()  # an HMAC-SHA1's length, all zero

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return twilio_request(secret, URL, body, **kw)

    def signed_get(self) -> WebhookRequest:
        # StatusCallbackMethod=GET: the fields in the query, the URL (query included) signed.
        return twilio_request(self.secret, f"{URL}?{self.valid_body.decode()}", method="GET")


class TestTwilioSecurityBehindProxy(SignedProviderSecuritySuite):
    """The same refusals when Django sees the proxy's internal URL and `public_url` is set."""

    adapter = twilio.adapter
    secret = TOKEN
    other_secret = OTHER_TOKEN
    valid_body = fixture("twilio", "undelivered_30003.txt")
    tampered_body = valid_body.replace(b"ErrorCode=30003", b"ErrorCode=30005")
    signature_header = "x-twilio-signature"
    bad_signature = base64.b64encode(bytes(20)).decode()
    public_url = "https://public.example/hooks/twilio-main/"

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return twilio_request(secret, "http://internal:8000/hooks/twilio-main/", body, signed_url=self.public_url)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        self.adapter.verify(request, secrets, public_url=self.public_url)


# Published vectors


def test_published_form_vector_signature_is_reproduced() -> None:
    params = {name: [value] for name, value in VECTOR_PARAMS.items()}
    assert twilio.signature(VECTOR_TOKEN, VECTOR_URL, params) == VECTOR_SIGNATURE


def test_published_form_vector_verifies() -> None:
    request = twilio_request(VECTOR_TOKEN, VECTOR_URL, form_body(VECTOR_PARAMS), signature=VECTOR_SIGNATURE)
    twilio.adapter.verify(request, [VECTOR_TOKEN])


def test_published_json_vector_body_hash_is_the_published_one() -> None:
    assert hashlib.sha256(JSON_BODY).hexdigest() == JSON_BODY_SHA256


def test_published_json_vector_signature_is_reproduced() -> None:
    assert twilio.signature(VECTOR_TOKEN, JSON_URL, {}) == JSON_SIGNATURE


def test_published_json_vector_verifies() -> None:
    request = twilio_request(
        VECTOR_TOKEN, JSON_URL, JSON_BODY, content_type="application/json", signature=JSON_SIGNATURE
    )
    twilio.adapter.verify(request, [VECTOR_TOKEN])


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (VECTOR_URL, {**VECTOR_PARAMS, "Digits": "1235"}),
        (VECTOR_URL, {**VECTOR_PARAMS, "Extra": "1"}),
        (VECTOR_URL, {k: v for k, v in VECTOR_PARAMS.items() if k != "Digits"}),
        ("https://mycompany.com/myapp.php?foo=2&bar=2", VECTOR_PARAMS),
        ("https://mycompany.com/other.php?foo=1&bar=2", VECTOR_PARAMS),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS),
    ],
    ids=["changed-param", "added-param", "removed-param", "changed-query", "changed-path", "changed-scheme"],
)
def test_tampered_form_vector_is_refused(url: str, params: dict[str, str]) -> None:
    request = twilio_request(VECTOR_TOKEN, url, form_body(params), signature=VECTOR_SIGNATURE)
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, [VECTOR_TOKEN])


def test_published_form_vector_with_another_token_is_refused() -> None:
    request = twilio_request(VECTOR_TOKEN, VECTOR_URL, form_body(VECTOR_PARAMS), signature=VECTOR_SIGNATURE)
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, ["54321"])


def test_tampered_json_vector_body_is_refused() -> None:
    body = b'{"property": "value", "boolean": false}'
    request = twilio_request(VECTOR_TOKEN, JSON_URL, body, content_type="application/json", signature=JSON_SIGNATURE)
    with pytest.raises(SignatureError, match="bodySHA256"):
        twilio.adapter.verify(request, [VECTOR_TOKEN])


def test_json_vector_with_body_and_hash_both_replaced_is_refused() -> None:
    # The hash in the URL matches the new body, but the URL is what the signature covers.
    body = b'{"property": "value", "boolean": false}'
    url = f"{VECTOR_URL}&bodySHA256={hashlib.sha256(body).hexdigest()}"
    request = twilio_request(VECTOR_TOKEN, url, body, content_type="application/json", signature=JSON_SIGNATURE)
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, [VECTOR_TOKEN])


# Ports: Twilio's validators accept the URL with the default port added or removed.


@pytest.mark.parametrize(("scheme", "port"), [("https", 443), ("http", 80)])
def test_signature_over_url_with_default_port_verifies_request_url_without_port(scheme: str, port: int) -> None:
    request = twilio_request(
        TOKEN,
        f"{scheme}://dlr.example/hooks/tw/?a=1",
        fixture("twilio", "sent.txt"),
        signed_url=f"{scheme}://dlr.example:{port}/hooks/tw/?a=1",
    )
    twilio.adapter.verify(request, [TOKEN])


@pytest.mark.parametrize(("scheme", "port"), [("https", 443), ("http", 80)])
def test_signature_over_url_without_default_port_verifies_request_url_with_port(scheme: str, port: int) -> None:
    request = twilio_request(
        TOKEN,
        f"{scheme}://dlr.example:{port}/hooks/tw/?a=1",
        fixture("twilio", "sent.txt"),
        signed_url=f"{scheme}://dlr.example/hooks/tw/?a=1",
    )
    twilio.adapter.verify(request, [TOKEN])


def test_signature_over_another_port_does_not_verify() -> None:
    request = twilio_request(
        TOKEN, URL, fixture("twilio", "sent.txt"), signed_url="https://dlr.example:8443/hooks/twilio-main/"
    )
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, [TOKEN])


def test_port_variants_keep_the_host_as_written() -> None:
    # Twilio signs the callback URL as configured; its validators add or strip the port on the
    # netloc text without lower-casing the host.
    request = twilio_request(
        TOKEN,
        "https://Hooks.DLR.example/hooks/tw/",
        fixture("twilio", "sent.txt"),
        signed_url="https://Hooks.DLR.example:443/hooks/tw/",
    )
    twilio.adapter.verify(request, [TOKEN])


def test_ipv6_literal_port_variants_verify() -> None:
    request = twilio_request(
        TOKEN,
        "https://[2001:db8::1]/hooks/tw/",
        fixture("twilio", "sent.txt"),
        signed_url="https://[2001:db8::1]:443/hooks/tw/",
    )
    twilio.adapter.verify(request, [TOKEN])


def test_unreadable_port_in_request_url_is_a_signature_error_not_a_crash() -> None:
    # Django builds the URL from the Host header, which may carry any digits as a port; such a
    # URL has no port variants, but it is still compared as written.
    url = "https://dlr.example:99999/hooks/tw/"
    twilio.adapter.verify(twilio_request(TOKEN, url, fixture("twilio", "sent.txt")), [TOKEN])
    forged = twilio_request(TOKEN, url, fixture("twilio", "sent.txt"), signed_url="https://dlr.example/hooks/tw/")
    with pytest.raises(SignatureError):
        twilio.adapter.verify(forged, [TOKEN])


# public_url: behind a TLS-terminating proxy Django sees another URL than the one Twilio signed.

INTERNAL = "http://internal:8000/hooks/twilio-main/"
PUBLIC = "https://public.example/hooks/twilio-main/"


def test_public_url_override_verifies_the_url_twilio_signed() -> None:
    request = twilio_request(TOKEN, INTERNAL, fixture("twilio", "delivered.txt"), signed_url=PUBLIC)
    twilio.adapter.verify(request, [TOKEN], public_url=PUBLIC)


def test_without_public_url_the_proxied_request_does_not_verify() -> None:
    request = twilio_request(TOKEN, INTERNAL, fixture("twilio", "delivered.txt"), signed_url=PUBLIC)
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, [TOKEN])


def test_public_url_override_keeps_the_request_query() -> None:
    request = twilio_request(
        TOKEN,
        f"{INTERNAL}?tenant=7&x=a%2Bb",
        fixture("twilio", "delivered.txt"),
        signed_url=f"{PUBLIC}?tenant=7&x=a%2Bb",
    )
    twilio.adapter.verify(request, [TOKEN], public_url=PUBLIC)


def test_public_url_written_with_its_query_does_not_repeat_the_query() -> None:
    # The admin may paste the exact StatusCallback URL, query included; the proxied request
    # arrives with that same query.
    request = twilio_request(
        TOKEN, f"{INTERNAL}?tenant=7", fixture("twilio", "delivered.txt"), signed_url=f"{PUBLIC}?tenant=7"
    )
    twilio.adapter.verify(request, [TOKEN], public_url=f"{PUBLIC}?tenant=7")


def test_public_url_override_accepts_the_default_port_variant() -> None:
    request = twilio_request(
        TOKEN, INTERNAL, fixture("twilio", "delivered.txt"), signed_url="https://public.example:443/hooks/twilio-main/"
    )
    twilio.adapter.verify(request, [TOKEN], public_url=PUBLIC)


def test_public_url_override_refuses_a_signature_over_the_internal_url() -> None:
    request = twilio_request(TOKEN, INTERNAL, fixture("twilio", "delivered.txt"))
    with pytest.raises(SignatureError):
        twilio.adapter.verify(request, [TOKEN], public_url=PUBLIC)


# Repeated and blank parameters


def test_repeated_params_are_signed_once_per_distinct_value_in_sorted_order() -> None:
    body = b"Tag=b&MessageSid=SM1&Tag=a&Tag=b&MessageStatus=sent"
    expected = hmac_sha1_b64(TOKEN, URL + "MessageSidSM1" + "MessageStatussent" + "Taga" + "Tagb")
    assert twilio.signature(TOKEN, URL, {"Tag": ["b", "a", "b"], "MessageSid": ["SM1"], "MessageStatus": ["sent"]}) == (
        expected
    )
    twilio.adapter.verify(twilio_request(TOKEN, URL, body, signature=expected), [TOKEN])


def test_repeated_params_signed_with_duplicates_kept_do_not_verify() -> None:
    # Some gateways (RapidPro's courier) keep duplicates; Twilio's own validators do not.
    body = b"Tag=b&MessageSid=SM1&Tag=a&Tag=b&MessageStatus=sent"
    with_duplicates = hmac_sha1_b64(TOKEN, URL + "MessageSidSM1" + "MessageStatussent" + "Taga" + "Tagb" + "Tagb")
    with pytest.raises(SignatureError):
        twilio.adapter.verify(twilio_request(TOKEN, URL, body, signature=with_duplicates), [TOKEN])


def test_blank_params_are_part_of_the_signature() -> None:
    body = b"MessageSid=SM1&MessageStatus=sent&ErrorCode="
    with_blank = hmac_sha1_b64(TOKEN, URL + "ErrorCode" + "MessageSidSM1" + "MessageStatussent")
    twilio.adapter.verify(twilio_request(TOKEN, URL, body, signature=with_blank), [TOKEN])
    without_blank = hmac_sha1_b64(TOKEN, URL + "MessageSidSM1" + "MessageStatussent")
    with pytest.raises(SignatureError):
        twilio.adapter.verify(twilio_request(TOKEN, URL, body, signature=without_blank), [TOKEN])


def test_get_callback_is_signed_over_the_url_alone_and_parsed_from_the_query() -> None:
    url = f"{URL}?MessageSid=SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c&MessageStatus=sent"
    request = twilio_request(TOKEN, url, method="GET", signature=hmac_sha1_b64(TOKEN, url))
    twilio.adapter.verify(request, [TOKEN])
    (event,) = twilio.adapter.parse(request)
    assert (event.provider_message_id, event.status) == ("SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c", Status.SENT)


# Parsing real status callbacks


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "delivered.txt",
            ReceiptEvent(
                provider_message_id="SM1f0e8ae6ade43cb3c0ce4525424e404f",
                provider_status="delivered",
                status=Status.DELIVERED,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 4, tzinfo=UTC),
                event_id="",
                extra={},
            ),
        ),
        (
            "undelivered_30003.txt",
            ReceiptEvent(
                provider_message_id="SM8d2c6b0f4e3a41d9b7c5e1f2a3b4c5d6",
                provider_status="undelivered",
                status=Status.UNDELIVERED,
                error_code="30003",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 7, tzinfo=UTC),
                event_id="",
                extra={},
            ),
        ),
        (
            "sent.txt",
            ReceiptEvent(
                provider_message_id="SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c",
                provider_status="sent",
                status=Status.SENT,
                error_code="",
                error_description="",
                provider_timestamp=None,
                event_id="",
                extra={},
            ),
        ),
        (
            "failed.txt",
            ReceiptEvent(
                provider_message_id="SM5b7d9f1a3c5e7a9b1d3f5a7c9e1b3d5f",
                provider_status="failed",
                status=Status.FAILED,
                error_code="30008",
                error_description="",
                provider_timestamp=None,
                event_id="",
                extra={},
            ),
        ),
    ],
)
def test_status_callback_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    request = twilio_request(TOKEN, URL, fixture("twilio", name))
    twilio.adapter.verify(request, [TOKEN])
    assert twilio.adapter.parse(request) == [expected]


def test_retried_callback_has_the_same_dedupe_key_and_the_next_status_another() -> None:
    delivered = fixture("twilio", "delivered.txt")
    assert parse_one(delivered).dedupe_key() == parse_one(delivered).dedupe_key()
    assert parse_one(delivered).dedupe_key() != parse_one(edit_form(delivered, MessageStatus="read")).dedupe_key()


def test_sms_sid_and_sms_status_stand_in_for_the_message_fields() -> None:
    event = parse_one(edit_form(fixture("twilio", "sent.txt"), drop=("MessageSid", "MessageStatus")))
    assert (event.provider_message_id, event.provider_status, event.status) == (
        "SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c",
        "sent",
        Status.SENT,
    )


@pytest.mark.parametrize(
    "body",
    [
        edit_form(fixture("twilio", "delivered.txt"), drop=("MessageSid", "SmsSid")),
        edit_form(fixture("twilio", "delivered.txt"), MessageSid="", SmsSid=""),
    ],
    ids=["absent", "blank"],
)
def test_callback_without_message_sid_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError, match="MessageSid"):
        parse_one(body)


@pytest.mark.parametrize(
    "body",
    [
        edit_form(fixture("twilio", "delivered.txt"), drop=("MessageStatus", "SmsStatus")),
        edit_form(fixture("twilio", "delivered.txt"), MessageStatus="", SmsStatus=""),
    ],
    ids=["absent", "blank"],
)
def test_callback_without_message_status_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError, match="MessageStatus"):
        parse_one(body)


@pytest.mark.parametrize("status", ["partially_delivered", "receiving", "a_status_twilio_adds_later"])
def test_unmapped_status_is_kept_as_unknown(status: str) -> None:
    event = parse_one(edit_form(fixture("twilio", "delivered.txt"), MessageStatus=status, SmsStatus=status))
    assert (event.provider_status, event.status) == (status, Status.UNKNOWN)


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("queued", Status.ACCEPTED),
        ("accepted", Status.ACCEPTED),
        ("scheduled", Status.ACCEPTED),
        ("sending", Status.ACCEPTED),
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("read", Status.DELIVERED),
        ("undelivered", Status.UNDELIVERED),
        ("failed", Status.FAILED),
        ("canceled", Status.FAILED),
        ("Delivered", Status.DELIVERED),
    ],
)
def test_status_values_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    event = parse_one(edit_form(fixture("twilio", "delivered.txt"), MessageStatus=status))
    assert (event.provider_status, event.status) == (status, normalized)


@pytest.mark.parametrize(
    "raw", ["2613261004", "2611261060", "261126100", "26112610040", "2611-26100", "abcdefghij", ""]
)
def test_malformed_raw_dlr_done_date_is_ignored(raw: str) -> None:
    event = parse_one(edit_form(fixture("twilio", "delivered.txt"), RawDlrDoneDate=raw))
    assert event.provider_timestamp is None
    assert (event.provider_message_id, event.status) == ("SM1f0e8ae6ade43cb3c0ce4525424e404f", Status.DELIVERED)


def test_error_message_becomes_the_error_description_cut_to_255_characters() -> None:
    body = edit_form(fixture("twilio", "undelivered_30003.txt"), ErrorMessage="Unreachable destination " * 20)
    assert parse_one(body).error_description == ("Unreachable destination " * 20)[:255]


def test_non_utf8_body_is_refused() -> None:
    body = fixture("twilio", "delivered.txt").replace(b"%2B15558675310", b"\xff\xfe")
    with pytest.raises(PayloadError, match="UTF-8"):
        twilio.adapter.parse(WebhookRequest(method="POST", url=URL, headers={"content-type": "x"}, body=body))


@pytest.mark.parametrize("body", [b"MessageSid", b'{"MessageSid": "SM1", "MessageStatus": "sent"}'])
def test_body_that_is_not_form_encoded_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        twilio.adapter.parse(WebhookRequest(method="POST", url=URL, headers={"content-type": "x"}, body=body))


@pytest.mark.parametrize(
    "changes",
    [{"MessageSid": "SM" + "0" * 127}, {"MessageSid": "SM1\x00"}, {"ErrorCode": "3" * 33}],
    ids=["id-over-128", "nul-in-id", "error-code-over-32"],
)
def test_field_that_does_not_fit_its_column_is_refused(changes: dict[str, str]) -> None:
    with pytest.raises(PayloadError):
        parse_one(edit_form(fixture("twilio", "undelivered_30003.txt"), **changes))


def json_callback(body: bytes, *, content_type: str = "application/json") -> WebhookRequest:
    """A JSON callback as Twilio signs one: the body's hash in the URL, the URL signed."""
    url = f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    return twilio_request(TOKEN, url, body, content_type=content_type, signature=twilio.signature(TOKEN, url, {}))


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", FORM])
def test_json_callback_is_parsed_from_the_body_its_url_hashes_whatever_the_content_type(content_type: str) -> None:
    body = b'{"MessageSid": "SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c", "MessageStatus": "sent", "ErrorCode": null}'
    request = json_callback(body, content_type=content_type)
    twilio.adapter.verify(request, [TOKEN])
    (event,) = twilio.adapter.parse(request)
    assert (event.provider_message_id, event.status, event.error_code) == (
        "SM3a9e7c5b1d2f4e6a8b0c9d7e5f3a1b2c",
        Status.SENT,
        "",
    )


def test_json_callback_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError):
        twilio.adapter.parse(json_callback(b'[{"MessageSid": "SM1", "MessageStatus": "sent"}]'))


def test_json_body_whose_hash_is_not_in_the_signed_url_is_not_read_as_json() -> None:
    # Only bodySHA256 in the signed URL makes a body JSON: the Content-Type header is not signed.
    body = b'{"MessageSid": "SM1", "MessageStatus": "sent"}'
    with pytest.raises(PayloadError, match="form"):
        parse_one(body, content_type="application/json")


def test_signed_get_with_a_body_is_refused() -> None:
    url = f"{URL}?{fixture('twilio', 'sent.txt').decode()}"
    forged = b'{"MessageSid": "SM8d2c6b0f4e3a41d9b7c5e1f2a3b4c5d6", "MessageStatus": "delivered"}'
    request = replace(twilio_request(TOKEN, url, method="GET"), body=forged)
    request = replace(request, headers={**request.headers, "content-type": "application/json"})
    with pytest.raises(SignatureError, match="GET"):
        twilio.adapter.verify(request, [TOKEN])


@pytest.mark.django_db
def test_one_signed_get_url_cannot_carry_a_receipt_for_another_message(client: Client) -> None:
    connection = ConnectionFactory(provider="twilio", secrets=[TOKEN])
    victim = MessageFactory(connection=connection, provider_message_id="SM8d2c6b0f4e3a41d9b7c5e1f2a3b4c5d6")
    query = fixture("twilio", "sent.txt").decode()
    signature = twilio.signature(TOKEN, f"http://testserver/hooks/{connection.slug}/?{query}", {})
    forged = b'{"MessageSid": "SM8d2c6b0f4e3a41d9b7c5e1f2a3b4c5d6", "MessageStatus": "delivered"}'
    response = client.generic(
        "GET",
        f"/hooks/{connection.slug}/?{query}",
        data=forged,
        content_type="application/json",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 401
    assert not Receipt.objects.exists()
    assert Message.objects.get(pk=victim.pk).status == Status.QUEUED


class TestTwilioExtremes(ExtremeInputSuite):
    provider = "twilio"
    secret = TOKEN
    message_id = "SM8d2c6b0f4e3a41d9b7c5e1f2a3b4c5d6"
    fields = {
        "time": ("RawDlrDoneDate",),
        "number": ("ErrorCode",),
        "message_id": ("MessageSid", "SmsSid"),
        "status": ("MessageStatus", "SmsStatus"),
        "error_code": ("ErrorCode",),
        "description": ("ErrorMessage",),
    }

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        form = fill(form_fixture("twilio", "undelivered_30003.txt"), slots, self.fields)
        body, headers = twilio_signed(connection, f"http://testserver/hooks/{connection.slug}/", form)
        return client.post(
            f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
        )
