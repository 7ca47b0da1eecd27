"""Vonage SMS API delivery receipts at the adapter level: the `sig` parameter (published vector,
the five dashboard methods, the replay window), the signed-webhook JWT, the three transports,
and parsing of receipts kept under tests/fixtures/vonage/; plus one receipt through the endpoint."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import vonage, vonage_jwt
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.providers.vonage import VonageAdapter
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, fill
from tests.providers.security_suite import TimestampedProviderSecuritySuite
from tests.providers.signing import FORM, fixture

SECRET = "vonage-signature-secret-current-0123"
OTHER_SECRET = "vonage-signature-secret-previous-987"
NOW = 1795687205  # 2026-11-26T10:00:05Z, the fixtures' `timestamp`
URL = "https://dlr.example/hooks/vonage-main/"
JSON = "application/json"

# Published vector: providers.md §4.3(a), vonage-node-sdk packages/sms/__tests__/__dataSets__/signature.ts.
VECTOR_SECRET = "my_secret_key_for_testing"
VECTOR_PARAMS = {
    "message-timestamp": "2013-11-21 15:27:30",
    "messageId": "020000001B0FE827",
    "msisdn": "14843472194",
    "text": "Test again",
    "timestamp": "1385047698",
    "to": "13239877404",
    "type": "text",
}
VECTOR_CANONICAL = (
    "&message-timestamp=2013-11-21 15:27:30&messageId=020000001B0FE827&msisdn=14843472194"
    "&text=Test again&timestamp=1385047698&to=13239877404&type=text"
)
VECTOR_MD5HASH = "d2e7b1dc968737c5998ad624e02f90b7"
VECTOR_SHA256 = "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330"
# Published vector: providers.md §4.3(b), vonage-python-sdk jwt/tests/test_verify_jwt.py.
JWT_VECTOR_SECRET = "qwertyuiopasdfghjklzxcvbnm123456"
JWT_VECTOR_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2OTc2MzQ2ODAsImV4cCI6"
    "MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30tA6U_HQHZTC29y6CGM"
)
JWT_VECTOR_IAT = 1697634680


def adapter_at(now: float) -> VonageAdapter:
    return VonageAdapter(clock=lambda: float(now))  # as time.time() reads


def fixture_fields(name: str) -> dict[str, str]:
    raw = fixture("vonage", name)
    if name.endswith(".json"):
        return dict(json.loads(raw))
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def sig_for(secret: str, fields: dict[str, str], method: str) -> str:
    # Vonage sends HMACs in upper-case hex and the MD5 hash in lower-case.
    digest = vonage.signature(secret, fields, method)
    return digest if method == "md5hash" else digest.upper()


def build(fields: dict[str, str], transport: str) -> WebhookRequest:
    """A request carrying `fields` the way the account's delivery-receipt setting sends them."""
    if transport == "query":
        return WebhookRequest(method="GET", url=f"{URL}?{urlencode(fields)}", headers={}, body=b"")
    if transport == "json":
        return WebhookRequest(method="POST", url=URL, headers={"content-type": JSON}, body=json.dumps(fields).encode())
    return WebhookRequest(method="POST", url=URL, headers={"content-type": FORM}, body=urlencode(fields).encode())


def vonage_request(
    secret: str,
    fields: dict[str, str],
    *,
    method: str = "md5hash",
    transport: str = "form",
    timestamp: int | None = None,
) -> WebhookRequest:
    fields = {k: v for k, v in fields.items() if k != "sig"}
    if timestamp is not None:
        fields["timestamp"] = str(timestamp)
    return build({**fields, "sig": sig_for(secret, fields, method)}, transport)


def with_field(request: WebhookRequest, name: str, value: str | None, transport: str) -> WebhookRequest:
    fields = vonage.receipt_fields(request)
    fields.pop(name, None)
    if value is not None:
        fields[name] = value
    return build(fields, transport)


def parse_one(request: WebhookRequest) -> ReceiptEvent:
    (event,) = vonage.adapter.parse(request)
    return event


class VonageSigSuite(TimestampedProviderSecuritySuite):
    adapter = adapter_at(NOW)
    now = NOW
    tolerance_seconds = vonage.TOLERANCE_SECONDS
    secret = SECRET
    other_secret = OTHER_SECRET
    signature_header = "sig"  # a field among the others, never a header: nothing to keep
    bad_signature = "0" * 32
    method = "md5hash"
    transport = "form"

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        fields = vonage.receipt_fields(replace(build({}, self.transport), body=body))
        return vonage_request(secret, fields, method=self.method, transport=self.transport, **kw)

    def with_signature(self, request: WebhookRequest, value: str | None) -> WebhookRequest:
        return with_field(request, "sig", value, self.transport)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        self.adapter.verify(request, secrets, options={"signature_method": self.method})


class TestVonageMd5HashFormSecurity(VonageSigSuite):
    valid_body = vonage_request(SECRET, fixture_fields("delivered.txt")).body
    tampered_body = valid_body.replace(b"status=delivered", b"status=failed")

    def signed_get(self) -> WebhookRequest:
        # The account's receipts set to GET: the same fields, `sig` among them, in the query.
        return vonage_request(SECRET, fixture_fields("delivered.txt"), transport="query", timestamp=NOW)


class TestVonageSha256JsonSecurity(VonageSigSuite):
    method = "sha256"
    transport = "json"
    bad_signature = "0" * 64
    valid_body = vonage_request(SECRET, fixture_fields("rejected.json"), method="sha256", transport="json").body
    tampered_body = valid_body.replace(b'"err-code": "6"', b'"err-code": "9"')


def jwt_request(
    secret: str, body: bytes, *, claims: dict[str, Any] | None = None, timestamp: int = NOW
) -> WebhookRequest:
    """A signed webhook: the body and an HS256 bearer token carrying its hash, issued at `timestamp`."""
    claims = {
        "iat": timestamp,
        "iss": "Vonage",
        "jti": "0f7c2c1e-5b8d-4e0a-9a51-3d6e2f1b7c90",
        "api_key": "a1b2c3d4",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        **(claims or {}),
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return WebhookRequest(
        method="POST", url=URL, headers={"content-type": JSON, "authorization": f"Bearer {token}"}, body=body
    )


class TestVonageJwtSecurity(TimestampedProviderSecuritySuite):
    adapter = adapter_at(NOW)
    now = NOW
    tolerance_seconds = vonage_jwt.MAX_AGE_SECONDS
    ahead_tolerance_seconds = vonage_jwt.AHEAD_SECONDS
    secret = SECRET
    other_secret = OTHER_SECRET
    valid_body = fixture("vonage", "rejected.json")
    tampered_body = valid_body.replace(b'"rejected"', b'"delivered"')
    signature_header = "authorization"
    bad_signature = "Bearer " + jwt.encode({"iat": NOW}, "x" * 32, algorithm="HS256")

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return jwt_request(secret, body, **kw)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        self.adapter.verify(request, secrets, options={"signature_method": "jwt"})


# Published vectors


def test_published_vector_canonical_string_is_reproduced() -> None:
    assert vonage.canonical(VECTOR_PARAMS) == VECTOR_CANONICAL


def test_published_vector_md5_hash_is_reproduced() -> None:
    assert vonage.signature(VECTOR_SECRET, VECTOR_PARAMS, "md5hash") == VECTOR_MD5HASH


def test_published_vector_sha256_hmac_is_reproduced() -> None:
    assert vonage.signature(VECTOR_SECRET, VECTOR_PARAMS, "sha256").upper() == VECTOR_SHA256


@pytest.mark.parametrize(("method", "sig"), [("md5hash", VECTOR_MD5HASH), ("sha256", VECTOR_SHA256)])
def test_published_vector_verifies_on_a_clock_at_its_timestamp(method: str, sig: str) -> None:
    request = build({**VECTOR_PARAMS, "sig": sig}, "query")
    adapter_at(1385047698).verify(request, [VECTOR_SECRET], options={"signature_method": method})


@pytest.mark.parametrize("sig", [VECTOR_SHA256.lower(), VECTOR_SHA256])
def test_sig_is_compared_case_insensitively(sig: str) -> None:
    request = build({**VECTOR_PARAMS, "sig": sig}, "query")
    adapter_at(1385047698).verify(request, [VECTOR_SECRET], options={"signature_method": "sha256"})


@pytest.mark.parametrize(
    "changes",
    [
        {"text": "Test again!"},
        {"msisdn": "14843472195"},
        {"timestamp": "1385047699"},
        {"sig": VECTOR_MD5HASH[:-1] + "8"},
    ],
    ids=["text", "msisdn", "timestamp", "sig"],
)
def test_published_vector_tampered_is_refused(changes: dict[str, str]) -> None:
    request = build({**VECTOR_PARAMS, "sig": VECTOR_MD5HASH, **changes}, "query")
    with pytest.raises(SignatureError):
        adapter_at(1385047698).verify(request, [VECTOR_SECRET], options={"signature_method": "md5hash"})


def test_published_vector_is_refused_on_the_real_clock() -> None:
    request = build({**VECTOR_PARAMS, "sig": VECTOR_MD5HASH}, "query")
    with pytest.raises(SignatureError, match="tolerance"):
        vonage.adapter.verify(request, [VECTOR_SECRET], options={"signature_method": "md5hash"})


def test_jwt_vector_is_signed_with_its_secret_but_binds_no_body_so_is_refused() -> None:
    assert vonage_jwt.claims(JWT_VECTOR_TOKEN, [JWT_VECTOR_SECRET])["iat"] == JWT_VECTOR_IAT
    request = WebhookRequest(
        method="POST", url=URL, headers={"authorization": f"Bearer {JWT_VECTOR_TOKEN}"}, body=b"{}"
    )
    with pytest.raises(SignatureError, match="payload_hash"):
        adapter_at(JWT_VECTOR_IAT).verify(request, [JWT_VECTOR_SECRET], options={"signature_method": "jwt"})


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_jwt_vector_is_refused_with_another_secret() -> None:
    request = WebhookRequest(
        method="POST", url=URL, headers={"authorization": f"Bearer {JWT_VECTOR_TOKEN}"}, body=b"{}"
    )
    with pytest.raises(SignatureError):
        adapter_at(JWT_VECTOR_IAT).verify(request, ["asdf"], options={"signature_method": "jwt"})


# The five dashboard methods


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_each_dashboard_method_verifies_under_its_own_option_only(method: str) -> None:
    request = vonage_request(SECRET, fixture_fields("delivered.txt"), method=method, transport="query")
    adapter_at(NOW).verify(request, [SECRET], options={"signature_method": method})
    other = "sha1" if method != "sha1" else "md5"
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(request, [SECRET], options={"signature_method": other})


def test_md5_hash_is_md5_of_canonical_string_then_secret() -> None:
    fields = fixture_fields("delivered.txt")
    expected = hashlib.md5((vonage.canonical(fields) + SECRET).encode()).hexdigest()  # noqa: S324
    assert vonage.signature(SECRET, fields, "md5hash") == expected


def test_ampersand_and_equals_inside_values_are_signed_as_underscores() -> None:
    fields = fixture_fields("failed_absent_subscriber.txt")
    assert fields["client-ref"] == "login=7732&retry=0"
    assert "&client-ref=login_7732_retry_0&" in vonage.canonical(fields)
    adapter_at(NOW).verify(vonage_request(SECRET, fields), [SECRET])


def test_without_options_the_default_md5_hash_is_expected() -> None:
    adapter_at(NOW).verify(vonage_request(SECRET, fixture_fields("delivered.txt")), [SECRET])


@pytest.mark.parametrize("skip_blank", [False, True], ids=["blank-kept", "blank-skipped"])
def test_blank_fields_verify_whether_the_signer_kept_or_skipped_them(skip_blank: bool) -> None:
    # Vonage's own SDKs disagree: Python and Node sign blank values, Java leaves them out.
    fields = {**fixture_fields("delivered.txt"), "client-ref": ""}
    sig = hashlib.md5((vonage.canonical(fields, skip_blank=skip_blank) + SECRET).encode()).hexdigest()  # noqa: S324
    adapter_at(NOW).verify(build({**fields, "sig": sig}, "form"), [SECRET])


@pytest.mark.parametrize("timestamp", [None, "", "soon", "1795687205.5"])
def test_missing_or_malformed_timestamp_is_refused(timestamp: str | None) -> None:
    fields = {k: v for k, v in fixture_fields("delivered.txt").items() if k != "timestamp"}
    if timestamp is not None:
        fields["timestamp"] = timestamp
    request = build({**fields, "sig": vonage.signature(SECRET, fields)}, "form")
    with pytest.raises(SignatureError, match="timestamp"):
        adapter_at(NOW).verify(request, [SECRET])


def test_query_changed_after_signing_is_refused() -> None:
    request = vonage_request(SECRET, fixture_fields("delivered.txt"), transport="query")
    forged = replace(request, url=request.url.replace("status=delivered", "status=expired"))
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(forged, [SECRET])


@pytest.mark.parametrize("method", ["sha384", "", None, ["md5"]])
def test_connection_with_an_unknown_signature_method_refuses(method: object) -> None:
    request = vonage_request(SECRET, fixture_fields("delivered.txt"))
    with pytest.raises(SignatureError, match="signature_method"):
        adapter_at(NOW).verify(request, [SECRET], options={"signature_method": method})


@pytest.mark.parametrize("options", [{}, *({"signature_method": m} for m in vonage.SIGNATURE_METHODS)])
def test_valid_options_are_accepted(options: dict[str, str]) -> None:
    vonage.adapter.validate_options(options)


@pytest.mark.parametrize("options", [{"signature_method": "sha384"}, {"signature_method": "SHA256"}, {"secret": "x"}])
def test_invalid_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"signature_method|unknown"):
        vonage.adapter.validate_options(options)


# The signed-webhook JWT


def jwt_verify(request: WebhookRequest, now: float = NOW) -> None:
    adapter_at(now).verify(request, [SECRET], options={"signature_method": "jwt"})


def test_jwt_without_payload_hash_is_refused() -> None:
    # Vonage calls the body check optional, but a token without the claim binds no body: it
    # would authenticate any receipt for as long as it is accepted.
    token = jwt.encode({"iat": NOW, "jti": "j-1"}, SECRET, algorithm="HS256")
    for body in (fixture("vonage", "rejected.json"), b""):
        request = WebhookRequest(method="POST", url=URL, headers={"authorization": f"Bearer {token}"}, body=body)
        with pytest.raises(SignatureError):
            jwt_verify(request)


@pytest.mark.parametrize("query", ["", "?" + urlencode(fixture_fields("delivered.txt"))], ids=["no-query", "receipt"])
def test_jwt_on_a_get_is_refused_even_with_a_payload_hash_of_its_body(query: str) -> None:
    # The receipt of a GET is its query, which the token does not cover.
    body = fixture("vonage", "rejected.json")
    request = replace(jwt_request(SECRET, body), method="GET", url=URL + query)
    with pytest.raises(SignatureError, match="POST"):
        jwt_verify(request)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iat": None}, "not a time"),
        ({"iat": NOW - vonage_jwt.MAX_AGE_SECONDS - 1}, "25 hours"),
        ({"iat": NOW + vonage_jwt.AHEAD_SECONDS + 1}, "future"),
        ({"iat": float("nan")}, "not a time"),
        ({"iat": 10**400}, "not a time"),
        ({"iat": "1795687205"}, "not a time"),
        ({"exp": float("nan")}, "not a time"),
        ({"nbf": float("-inf")}, "not a time"),
    ],
    ids=[
        "iat-null",
        "older-than-25-hours",
        "issued-ahead",
        "iat-nan",
        "iat-401-digits",
        "iat-text",
        "exp-nan",
        "nbf-inf",
    ],
)
def test_jwt_whose_age_cannot_be_read_or_is_beyond_the_bounds_is_refused(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        jwt_verify(jwt_request(SECRET, fixture("vonage", "rejected.json"), claims=claims))


def test_jwt_without_iat_is_refused() -> None:
    body = fixture("vonage", "rejected.json")
    token = jwt.encode({"jti": "j-1", "payload_hash": hashlib.sha256(body).hexdigest()}, SECRET, algorithm="HS256")
    request = WebhookRequest(method="POST", url=URL, headers={"authorization": f"Bearer {token}"}, body=body)
    with pytest.raises(SignatureError, match="iat"):
        jwt_verify(request)


@pytest.mark.django_db
def test_a_token_from_2020_without_payload_hash_does_not_authenticate_a_get_receipt(client: Any) -> None:
    connection = ConnectionFactory(provider="vonage", secrets=[SECRET], options={"signature_method": "jwt"})
    victim = MessageFactory(connection=connection, provider_message_id="0B00000127FDBC63")
    old_token = jwt.encode({"iat": 1587494962, "jti": "c5ba8f24", "api_key": "a1b2c3d"}, SECRET, algorithm="HS256")
    query = urlencode({k: v for k, v in fixture_fields("delivered.txt").items() if k != "sig"})
    response = client.get(f"/hooks/{connection.slug}/?{query}", headers={"Authorization": f"Bearer {old_token}"})
    assert response.status_code == 401
    assert not Receipt.objects.exists()
    assert Message.objects.get(pk=victim.pk).status == Status.QUEUED


@pytest.mark.django_db
def test_jwt_signed_receipt_posted_now_is_stored(client: Any) -> None:
    connection = ConnectionFactory(provider="vonage", secrets=[SECRET], options={"signature_method": "jwt"})
    message = MessageFactory(connection=connection, provider_message_id="0B00000127FDBCA8")
    request = jwt_request(SECRET, fixture("vonage", "rejected.json"), timestamp=int(time.time()))
    response = client.post(
        f"/hooks/{connection.slug}/",
        data=request.body,
        content_type=JSON,
        headers={"Authorization": request.headers["authorization"]},
    )
    assert response.status_code == 200, response.content
    assert Message.objects.get(pk=message.pk).status == Status.REJECTED


@pytest.mark.parametrize("payload_hash", ["0" * 64, 42, ""], ids=["other-hash", "not-a-string", "blank"])
def test_jwt_whose_payload_hash_does_not_match_is_refused(payload_hash: object) -> None:
    request = jwt_request(SECRET, fixture("vonage", "rejected.json"), claims={"payload_hash": payload_hash})
    with pytest.raises(SignatureError, match="payload_hash"):
        jwt_verify(request)


def test_jwt_payload_hash_in_upper_case_verifies() -> None:
    body = fixture("vonage", "rejected.json")
    jwt_verify(jwt_request(SECRET, body, claims={"payload_hash": hashlib.sha256(body).hexdigest().upper()}))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [({"exp": NOW - 1}, "expired"), ({"nbf": NOW + 60}, "not valid yet"), ({"exp": "tomorrow"}, "not a time")],
)
def test_jwt_time_claims_are_checked_against_our_clock(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        jwt_verify(jwt_request(SECRET, fixture("vonage", "rejected.json"), claims=claims))


@pytest.mark.parametrize(
    "header",
    ["", "Bearer ", f"Basic {JWT_VECTOR_TOKEN}", "Bearer not-a-jwt", f"Bearer {JWT_VECTOR_TOKEN[:-2]}"],
)
def test_jwt_missing_or_unreadable_is_refused(header: str) -> None:
    request = WebhookRequest(method="POST", url=URL, headers={"authorization": header}, body=b"{}")
    with pytest.raises(SignatureError):
        adapter_at(JWT_VECTOR_IAT).verify(request, [JWT_VECTOR_SECRET], options={"signature_method": "jwt"})


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_jwt_signed_with_another_algorithm_is_refused() -> None:
    token = jwt.encode({"iat": NOW}, SECRET, algorithm="HS512")
    request = WebhookRequest(method="POST", url=URL, headers={"authorization": f"Bearer {token}"}, body=b"")
    with pytest.raises(SignatureError):
        jwt_verify(request)


# Parsing real receipts

DELIVERED = ReceiptEvent(
    provider_message_id="0B00000127FDBC63",
    provider_status="delivered",
    status=Status.DELIVERED,
    error_code="",
    error_description="",
    provider_timestamp=datetime(2026, 11, 26, 10, 4, tzinfo=UTC),
    event_id="",
    extra={},
    network="23410",
    price=Decimal("0.033300"),
    currency="EUR",
)


@pytest.mark.parametrize("transport", ["query", "form", "json"])
def test_receipt_parses_the_same_from_each_transport(transport: str) -> None:
    request = vonage_request(SECRET, fixture_fields("delivered.txt"), transport=transport)
    adapter_at(NOW).verify(request, [SECRET])
    assert vonage.adapter.parse(request) == [DELIVERED]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("delivered.txt", DELIVERED),
        (
            "failed_absent_subscriber.txt",
            ReceiptEvent(
                provider_message_id="0B00000127FDBC7A",
                provider_status="failed",
                status=Status.UNDELIVERED,
                error_code="2",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 7, tzinfo=UTC),
                event_id="",
                extra={},
                network="23415",
                price=Decimal("0.033300"),
                currency="EUR",
            ),
        ),
        (
            "accepted.txt",
            ReceiptEvent(
                provider_message_id="0B00000127FDBC91",
                provider_status="accepted",
                status=Status.SENT,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                event_id="",
                extra={},
                network="23420",
                price=Decimal("0.033300"),
                currency="EUR",
            ),
        ),
        (
            # No scts: the carrier gave no receipt time, message-timestamp stands in.
            "rejected.json",
            ReceiptEvent(
                provider_message_id="0B00000127FDBCA8",
                provider_status="rejected",
                status=Status.REJECTED,
                error_code="6",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 1, 55, tzinfo=UTC),
                event_id="",
                extra={},
                network="23430",
                price=Decimal("0.000000"),
                currency="EUR",
            ),
        ),
    ],
)
def test_receipt_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    transport = "json" if name.endswith(".json") else "form"
    request = vonage_request(SECRET, fixture_fields(name), transport=transport)
    adapter_at(NOW).verify(request, [SECRET])
    assert vonage.adapter.parse(request) == [expected]


def test_json_fixture_is_read_as_sent() -> None:
    body = fixture("vonage", "rejected.json")
    event = parse_one(WebhookRequest(method="POST", url=URL, headers={"content-type": JSON}, body=body))
    assert (event.provider_message_id, event.status, event.error_code) == ("0B00000127FDBCA8", Status.REJECTED, "6")


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("accepted", Status.SENT),
        ("buffered", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("expired", Status.EXPIRED),
        ("failed", Status.UNDELIVERED),
        ("rejected", Status.REJECTED),
        ("unknown", Status.UNKNOWN),
        ("Delivered", Status.DELIVERED),
        ("a_status_vonage_adds_later", Status.UNKNOWN),
    ],
)
def test_status_values_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    event = parse_one(build({**fixture_fields("delivered.txt"), "status": status}, "form"))
    assert (event.provider_status, event.status) == (status, normalized)


@pytest.mark.parametrize(
    ("status", "err_code", "expected"),
    [("delivered", "0", ""), ("accepted", "0", ""), ("buffered", "0", ""), ("failed", "0", "0"), ("expired", "5", "5")],
)
def test_err_code_zero_is_no_error_on_non_failure_statuses(status: str, err_code: str, expected: str) -> None:
    event = parse_one(build({**fixture_fields("delivered.txt"), "status": status, "err-code": err_code}, "form"))
    assert event.error_code == expected


@pytest.mark.parametrize(
    ("scts", "message_timestamp", "expected"),
    [
        ("2611261004", "2026-11-26 10:04:07", datetime(2026, 11, 26, 10, 4, tzinfo=UTC)),
        ("261126100433", "", datetime(2026, 11, 26, 10, 4, 33, tzinfo=UTC)),
        ("", "2026-11-26 10:04:07", datetime(2026, 11, 26, 10, 4, 7, tzinfo=UTC)),
        ("2613261004", "2026-11-26 10:04:07", datetime(2026, 11, 26, 10, 4, 7, tzinfo=UTC)),
        ("26112610", "2026-11-26T10:04:07Z", None),
        ("", "", None),
    ],
    ids=["scts", "scts-with-seconds", "no-scts", "bad-scts", "both-malformed", "neither"],
)
def test_provider_timestamp_prefers_the_carrier_time(
    scts: str, message_timestamp: str, expected: datetime | None
) -> None:
    fields = {**fixture_fields("delivered.txt"), "scts": scts, "message-timestamp": message_timestamp}
    assert parse_one(build(fields, "form")).provider_timestamp == expected


@pytest.mark.parametrize("field", ["messageId", "status"])
def test_receipt_without_its_id_or_status_is_refused(field: str) -> None:
    fields = {k: v for k, v in fixture_fields("delivered.txt").items() if k != field}
    with pytest.raises(PayloadError, match=field):
        parse_one(build(fields, "form"))
    with pytest.raises(PayloadError, match=field):
        parse_one(build({**fields, field: ""}, "query"))


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"{not json"])
def test_json_body_that_is_not_an_object_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_one(WebhookRequest(method="POST", url=URL, headers={"content-type": JSON}, body=body))


def test_json_values_that_are_not_strings_are_read_as_their_json_text() -> None:
    body = json.dumps({"messageId": "0B1", "status": "failed", "err-code": 5, "scts": None}).encode()
    event = parse_one(WebhookRequest(method="POST", url=URL, headers={"content-type": JSON}, body=body))
    assert (event.error_code, event.provider_timestamp) == ("5", None)


def test_non_utf8_form_body_is_refused() -> None:
    body = b"messageId=0B1&status=delivered&to=\xff\xfe"
    with pytest.raises(PayloadError, match="UTF-8"):
        parse_one(WebhookRequest(method="POST", url=URL, headers={"content-type": FORM}, body=body))


def test_retried_receipt_has_the_same_dedupe_key_and_the_next_status_another() -> None:
    fields = fixture_fields("accepted.txt")
    first = parse_one(vonage_request(SECRET, fields, timestamp=NOW))
    retry = parse_one(vonage_request(SECRET, fields, timestamp=NOW + 3600))  # re-signed later
    delivered = parse_one(build({**fields, "status": "delivered"}, "form"))
    assert first.dedupe_key() == retry.dedupe_key() != delivered.dedupe_key()


# Through the endpoint


@pytest.mark.django_db
def test_signed_receipt_posted_as_a_get_query_is_stored_and_moves_the_message(client: Any) -> None:
    connection = ConnectionFactory(provider="vonage", secrets=[SECRET], options={"signature_method": "sha256"})
    message = MessageFactory(connection=connection, provider_message_id="0B00000127FDBC7A")
    fields = {**fixture_fields("failed_absent_subscriber.txt"), "timestamp": str(int(time.time()))}
    query = urlencode({**fields, "sig": sig_for(SECRET, fields, "sha256")})
    response = client.get(f"/hooks/{connection.slug}/?{query}")
    assert response.status_code == 200, response.content
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "2")
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status, receipt.error_code) == ("failed", Status.UNDELIVERED, "2")
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 7, tzinfo=UTC)
    assert receipt.message_id == message.pk


@pytest.mark.django_db
def test_receipt_signed_with_another_secret_is_refused_and_not_stored(client: Any) -> None:
    connection = ConnectionFactory(provider="vonage", secrets=[SECRET], options={"signature_method": "md5hash"})
    request = vonage_request(OTHER_SECRET, fixture_fields("delivered.txt"), timestamp=int(time.time()))
    response = client.post(f"/hooks/{connection.slug}/", data=request.body, content_type=FORM)
    assert response.status_code == 401
    assert not Receipt.objects.exists()


class TestVonageExtremes(ExtremeInputSuite):
    provider = "vonage"
    secret = SECRET
    message_id = "0B00000127FDBC7A"
    fields = {
        "time": ("scts", "message-timestamp"),
        "number": ("err-code",),
        "message_id": ("messageId",),
        "status": ("status",),
        "error_code": ("err-code",),
    }

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        fields = fill(fixture_fields("failed_absent_subscriber.txt"), slots, self.fields)
        request = vonage_request(SECRET, fields, timestamp=int(time.time()))
        return client.post(f"/hooks/{connection.slug}/", data=request.body, content_type=FORM)
