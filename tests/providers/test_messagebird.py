"""MessageBird status reports at the adapter level: the `MessageBird-Signature-JWT` (every case of
the reference validator's testdata, kept as tests/fixtures/messagebird/signature_jwt_reference.json,
URL binding behind a proxy), and parsing of reports kept under tests/fixtures/messagebird/; plus one
report through the endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import messagebird
from receipts.providers.base import PayloadError, ReceiptEvent, SignatureError, WebhookRequest
from receipts.providers.messagebird import MessageBirdAdapter
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, fill
from tests.providers.security_suite import TimestampedProviderSecuritySuite
from tests.providers.signing import FIXTURES, FORM, fixture, form_fixture

SECRET = "5f0c2b8e9d4a7163c1e0b9a8f7d6e5c4b3a29180f7e6d5c4b3a2918070f6e5d4"
OTHER_SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
NOW = 1795687205  # 2026-11-26T10:00:05Z
URL = "https://dlr.example/hooks/mb-main/"
HEADER = "messagebird-signature-jwt"
JTI = "3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"

# Published vector: providers.md §4.6, messagebird/go-rest-api signature_jwt/testdata/reference.json.
REFERENCE_TIME = 1625479200  # 2021-07-05T12:00:00+02:00
REFERENCE_SECRET = "36efdd1aace2e26cd490f0d951138253bef2f7c6d34d18981da781555cc4cebb"
VECTOR_URL = "https://example.com/path?bar=1&foo=2"
VECTOR_PAYLOAD = b"Hello, World!"
VECTOR_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJNZXNzYWdlQmlyZCIsIm5iZiI6MTYyNTQ3OTIwMCwiZXhwIjoxNjI1NDc5MjYw"
    "LCJqdGkiOiI5M2U1NTAwNi1hMGU4LTQ1MjYtYTE5MC1mYTVmZjAwZWExMTYiLCJ1cmxfaGFzaCI6IjQxZjA1ZjBkZGQwYTIyYWIyMDlhYzQ2"
    "ZjQ3YzQ1NzJkOWNlZmEyNTdlZDc0YjI0MDA0YmFlNzUzZWNlNmMyNjAiLCJwYXlsb2FkX2hhc2giOiJkZmZkNjAyMWJiMmJkNWIwYWY2NzYy"
    "OTA4MDllYzNhNTMxOTFkZDgxYzdmNzBhNGIyODY4OGEzNjIxODI5ODZmIn0._H--TOuYFLpeEH39-rg5E3IHVkjHozBcaKVWPRC5m9I"
)
VECTOR_JTI = "93e55006-a0e8-4526-a190-fa5ff00ea116"
VECTOR_URL_HASH = "41f05f0ddd0a22ab209ac46f47c4572d9cefa257ed74b24004bae753ece6c260"
VECTOR_PAYLOAD_HASH = "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"
# From the same package's signature_test.go: a token with `iat` and no `nbf`, key "hunter2".
IAT_ONLY_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJNZXNzYWdlQmlyZCIsImlhdCI6MTYyNTQ3OTIwMCwiZXhwIjoxNjI1NDc5MjYw"
    "LCJqdGkiOiI1OWEyNDRkYy1lOWFkLTRlMjMtOTc3OC0zNzFmYWEyMzhmNzIiLCJ1cmxfaGFzaCI6IjBmMTE1ZGIwNjJiN2MwZGQwMzBiMTY4"
    "NzhjOTlkZWE1YzM1NGI0OWRjMzdiMzhlYjg4NDYxNzljNzc4M2U5ZDcifQ.SrhlKJ-ES4Dg8BBXKtop3u92Z_k4L4VjHKsyHWpweGE"
)

REFERENCE_CASES: list[dict[str, Any]] = json.loads(
    (FIXTURES / "messagebird" / "signature_jwt_reference.json").read_text()
)


def adapter_at(now: float) -> MessageBirdAdapter:
    return MessageBirdAdapter(clock=lambda: float(now))  # as time.time() reads


def mb_request(
    secret: str,
    query: bytes,
    *,
    url: str = URL,
    signed_base: str | None = None,
    now: int = NOW,
    jti: str = JTI,
) -> WebhookRequest:
    """A status report as MessageBird sends it: a GET whose query is the report, the token
    minted at `now` over the URL it called (`signed_base` with the same query, default `url`)."""
    called = f"{url}?{query.decode()}"
    token = messagebird.sign(secret, f"{signed_base or url}?{query.decode()}", b"", now=now, jti=jti)
    return WebhookRequest(method="GET", url=called, headers={HEADER: token, "user-agent": "MessageBird"}, body=b"")


def zeroed(token: str) -> str:
    """The same token with an all-zero HMAC-SHA256: well formed, wrong."""
    head, _, _ = token.rpartition(".")
    return head + "." + base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")


def edit_query(query: bytes, **changes: str) -> bytes:
    fields = dict(parse_qsl(query.decode(), keep_blank_values=True))
    return urlencode({**fields, **changes}).encode()


def parse_one(query: bytes) -> ReceiptEvent:
    (event,) = messagebird.adapter.parse(mb_request(SECRET, query))
    return event


class TestMessageBirdSecurity(TimestampedProviderSecuritySuite):
    """The suite's `timestamp` is the middle of the token's one-minute validity, so the window it
    checks is ±31 s: 30 s either side plus the validator's 1 s skew."""

    adapter = adapter_at(NOW)
    now = NOW
    tolerance_seconds = 31
    secret = SECRET
    other_secret = OTHER_SECRET
    # The report rides in the query; a body added after signing must be refused too.
    valid_body = fixture("messagebird", "delivered.txt")
    tampered_body = valid_body.replace(b"status=delivered", b"status=delivery_failed")
    signature_header = HEADER
    bad_signature = zeroed(mb_request(SECRET, valid_body).headers[HEADER])

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        return mb_request(secret, body, now=kw.pop("timestamp", NOW) - 30, **kw)


class TestMessageBirdSecurityBehindProxy(TestMessageBirdSecurity):
    """The same refusals when Django sees the proxy's internal URL and `public_url` is set."""

    public_url = "https://public.example/hooks/mb-main/"

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        ts = kw.pop("timestamp", NOW) - 30
        return mb_request(secret, body, url="http://internal:8000/hooks/mb-main/", signed_base=self.public_url, now=ts)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        self.adapter.verify(request, secrets, public_url=self.public_url)


# The reference validator's testdata, case by case


def expected_refusal(reason: str) -> str:
    """Our message for each of the validator's reasons: the claim's, or an unverifiable token."""
    claim = reason.removeprefix("invalid jwt: claim ")
    return claim if claim != reason else "not signed with"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[case["name"] for case in REFERENCE_CASES])
def test_reference_case(case: dict[str, Any]) -> None:
    request = WebhookRequest(
        method=case["method"], url=case["url"], headers={HEADER: case["token"]}, body=case.get("payload", "").encode()
    )
    verify = adapter_at(datetime.fromisoformat(case["timestamp"]).timestamp()).verify
    if case["valid"]:
        verify(request, [case["secret"]])
    else:
        with pytest.raises(SignatureError, match=expected_refusal(case["reason"])):
            verify(request, [case.get("secret", "")])


def test_reference_file_is_complete() -> None:
    assert len(REFERENCE_CASES) == 43
    assert {c["valid"] for c in REFERENCE_CASES} == {True, False}
    assert all(c["timestamp"] == "2021-07-05T12:00:00+02:00" for c in REFERENCE_CASES)


def test_published_vector_claims_are_the_published_hashes() -> None:
    claims = jwt.decode(VECTOR_TOKEN, REFERENCE_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert (claims["nbf"], claims["exp"], claims["jti"]) == (REFERENCE_TIME, REFERENCE_TIME + 60, VECTOR_JTI)
    assert claims["url_hash"] == VECTOR_URL_HASH == hashlib.sha256(VECTOR_URL.encode()).hexdigest()
    assert claims["payload_hash"] == VECTOR_PAYLOAD_HASH == hashlib.sha256(VECTOR_PAYLOAD).hexdigest()


def test_published_vector_token_is_reproduced_by_sign() -> None:
    token = messagebird.sign(REFERENCE_SECRET, VECTOR_URL, VECTOR_PAYLOAD, now=REFERENCE_TIME, jti=VECTOR_JTI)
    assert token == VECTOR_TOKEN


def test_published_vector_is_refused_on_the_real_clock() -> None:
    request = WebhookRequest(method="POST", url=VECTOR_URL, headers={HEADER: VECTOR_TOKEN}, body=VECTOR_PAYLOAD)
    with pytest.raises(SignatureError, match="exp is in the past"):
        messagebird.adapter.verify(request, [REFERENCE_SECRET])


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_token_with_iat_and_no_nbf_verifies() -> None:
    request = WebhookRequest(method="GET", url="https://example.com/", headers={HEADER: IAT_ONLY_TOKEN}, body=b"")
    adapter_at(REFERENCE_TIME).verify(request, ["hunter2"])
    with pytest.raises(SignatureError):
        adapter_at(REFERENCE_TIME).verify(request, [""])


@pytest.mark.parametrize(
    ("seconds", "valid"),
    [(-2, False), (-1, True), (0, True), (60, True), (61, True), (62, False)],
)
def test_token_is_valid_from_nbf_to_exp_with_one_second_of_skew(seconds: int, valid: bool) -> None:
    request = mb_request(SECRET, fixture("messagebird", "sent.txt"), now=NOW)
    if valid:
        adapter_at(NOW + seconds).verify(request, [SECRET])
    else:
        with pytest.raises(SignatureError):
            adapter_at(NOW + seconds).verify(request, [SECRET])


def forged(claims: dict[str, Any], query: bytes, *, drop: tuple[str, ...] = ()) -> WebhookRequest:
    """A report whose token, signed with the right key, carries `claims` over the defaults,
    less the claims named in `drop`."""
    url = f"{URL}?{query.decode()}"
    defaults = {"iss": "MessageBird", "nbf": NOW, "exp": NOW + 60, "jti": JTI}
    payload = {**defaults, "url_hash": hashlib.sha256(url.encode()).hexdigest(), **claims}
    token = jwt.encode({k: v for k, v in payload.items() if k not in drop}, SECRET, algorithm="HS256")
    return WebhookRequest(method="GET", url=url, headers={HEADER: token}, body=b"")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "Bird"}, "iss has wrong value"),
        ({"iss": "messagebird"}, "iss has wrong value"),
        ({"jti": ""}, "jti is empty"),
        ({"jti": None}, "jti is empty"),
        ({"exp": None}, "must be unix times"),
        ({"nbf": "2026-11-26"}, "must be unix times"),
        ({"exp": True}, "must be unix times"),
        ({"url_hash": "0" * 64}, "url_hash is invalid"),
        ({"url_hash": 7}, "url_hash is invalid"),
        ({"payload_hash": "0" * 64}, "payload_hash is set but actual payload is missing"),
    ],
)
def test_claims_that_break_the_reference_rules_are_refused(claims: dict[str, Any], reason: str) -> None:
    request = forged(claims, fixture("messagebird", "sent.txt"))
    with pytest.raises(SignatureError, match=reason):
        adapter_at(NOW).verify(request, [SECRET])


MAX_AGE = messagebird.MAX_TOKEN_AGE_SECONDS


@pytest.mark.parametrize(
    ("claims", "drop", "verifies"),
    [
        ({"nbf": NOW - MAX_AGE, "exp": NOW + 86400}, (), True),
        ({"nbf": NOW - MAX_AGE - 1, "exp": NOW + 86400}, (), False),
        ({"nbf": NOW - 10 * 365 * 86400, "exp": NOW + 10 * 365 * 86400}, (), False),
        ({"iat": NOW - MAX_AGE, "exp": NOW + 86400}, ("nbf",), True),
        ({"iat": NOW - MAX_AGE - 1, "exp": NOW + 86400}, ("nbf",), False),
        ({"exp": NOW + 60}, ("nbf",), False),
        ({"nbf": -(10**400), "exp": 10**400}, (), False),
    ],
    ids=["at-max-age", "older", "ten-years", "iat-at-max-age", "iat-older", "neither-nbf-nor-iat", "401-digits"],
)
def test_token_issued_longer_ago_than_the_max_age_is_refused_whatever_its_exp(
    claims: dict[str, Any], drop: tuple[str, ...], verifies: bool
) -> None:
    request = forged(claims, fixture("messagebird", "sent.txt"), drop=drop)
    if verifies:
        adapter_at(NOW).verify(request, [SECRET])
    else:
        with pytest.raises(SignatureError):
            adapter_at(NOW).verify(request, [SECRET])


def test_token_without_exp_is_refused_as_expired() -> None:
    url = f"{URL}?{fixture('messagebird', 'sent.txt').decode()}"
    claims = {"iss": "MessageBird", "nbf": NOW, "jti": JTI, "url_hash": hashlib.sha256(url.encode()).hexdigest()}
    request = WebhookRequest(method="GET", url=url, headers={HEADER: jwt.encode(claims, SECRET)}, body=b"")
    with pytest.raises(SignatureError, match="exp is in the past"):
        adapter_at(NOW).verify(request, [SECRET])


def test_report_whose_query_was_changed_is_refused() -> None:
    request = mb_request(SECRET, fixture("messagebird", "delivery_failed.txt"))
    changed = replace(request, url=request.url.replace("status=delivery_failed", "status=delivered"))
    with pytest.raises(SignatureError, match="url_hash"):
        adapter_at(NOW).verify(changed, [SECRET])


def test_report_whose_query_was_reordered_is_refused() -> None:
    # The URL is hashed as called: MessageBird's order, not a canonical one.
    query = fixture("messagebird", "sent.txt")
    request = mb_request(SECRET, query)
    reordered = "&".join(reversed(query.decode().split("&")))
    with pytest.raises(SignatureError, match="url_hash"):
        adapter_at(NOW).verify(replace(request, url=f"{URL}?{reordered}"), [SECRET])


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_longer_hmac_algorithms_verify(algorithm: str) -> None:
    query = fixture("messagebird", "sent.txt")
    token = messagebird.sign(SECRET, f"{URL}?{query.decode()}", b"", now=NOW, jti=JTI, algorithm=algorithm)
    request = WebhookRequest(method="GET", url=f"{URL}?{query.decode()}", headers={HEADER: token}, body=b"")
    adapter_at(NOW).verify(request, [SECRET])


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", " ", "Bearer x.y.z"])
def test_unreadable_token_is_refused(token: str) -> None:
    request = replace(mb_request(SECRET, fixture("messagebird", "sent.txt")), headers={HEADER: token})
    with pytest.raises(SignatureError):
        adapter_at(NOW).verify(request, [SECRET])


# public_url: behind a TLS-terminating proxy Django sees another URL than MessageBird called

INTERNAL = "http://internal:8000/hooks/mb-main/"
PUBLIC = "https://public.example/hooks/mb-main/"


def test_public_url_override_verifies_the_url_messagebird_called() -> None:
    request = mb_request(SECRET, fixture("messagebird", "delivered.txt"), url=INTERNAL, signed_base=PUBLIC)
    adapter_at(NOW).verify(request, [SECRET], public_url=PUBLIC)
    with pytest.raises(SignatureError, match="url_hash"):
        adapter_at(NOW).verify(request, [SECRET])


def test_public_url_written_with_a_query_does_not_repeat_it() -> None:
    request = mb_request(SECRET, fixture("messagebird", "delivered.txt"), url=INTERNAL, signed_base=PUBLIC)
    adapter_at(NOW).verify(request, [SECRET], public_url=f"{PUBLIC}?id=stale")


def test_public_url_without_a_request_query_is_used_as_is() -> None:
    token = messagebird.sign(SECRET, PUBLIC, b"", now=NOW, jti=JTI)
    request = WebhookRequest(method="GET", url=INTERNAL, headers={HEADER: token}, body=b"")
    adapter_at(NOW).verify(request, [SECRET], public_url=PUBLIC)


# Parsing real status reports


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "delivered.txt",
            ReceiptEvent(
                provider_message_id="efa6405d518d4c0c88cce11f7db775fb",
                provider_status="delivered",
                status=Status.DELIVERED,
                error_code="",
                error_description="successfully delivered",
                provider_timestamp=datetime(2026, 11, 26, 10, 4, 7, tzinfo=UTC),
                event_id="",
                extra={},
                network="20408",
                price=Decimal("0.07"),
                currency="EUR",
            ),
        ),
        (
            "delivery_failed.txt",
            ReceiptEvent(
                provider_message_id="5e4b7a2c9d1f4e8ba6c3d0f9e2b1a7c4",
                provider_status="delivery_failed",
                status=Status.UNDELIVERED,
                error_code="1",
                error_description="unknown subscriber",
                provider_timestamp=datetime(2026, 11, 26, 10, 7, 12, tzinfo=UTC),
                event_id="",
                extra={},
                network="20416",
                price=Decimal("0.07"),
                currency="EUR",
            ),
        ),
        (
            "sent.txt",
            ReceiptEvent(
                provider_message_id="7c1e9a4b2d6f4a0c8e3b5d7f9a1c3e5b",
                provider_status="sent",
                status=Status.SENT,
                error_code="",
                error_description="pending",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 2, tzinfo=UTC),
                event_id="",
                extra={},
                network="20404",
                price=Decimal("0.07"),
                currency="EUR",
            ),
        ),
    ],
)
def test_status_report_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    request = mb_request(SECRET, fixture("messagebird", name))
    adapter_at(NOW).verify(request, [SECRET])
    assert messagebird.adapter.parse(request) == [expected]


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("scheduled", Status.ACCEPTED),
        ("sent", Status.SENT),
        ("buffered", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("expired", Status.EXPIRED),
        ("delivery_failed", Status.UNDELIVERED),
        ("DELIVERED", Status.DELIVERED),
        ("a_status_messagebird_adds_later", Status.UNKNOWN),
    ],
)
def test_status_values_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    event = parse_one(edit_query(fixture("messagebird", "sent.txt"), status=status))
    assert (event.provider_status, event.status) == (status, normalized)


@pytest.mark.parametrize("field", ["id", "status"])
def test_report_without_its_id_or_status_is_refused(field: str) -> None:
    query = edit_query(fixture("messagebird", "sent.txt"), **{field: ""})
    with pytest.raises(PayloadError, match=field):
        parse_one(query)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-26T10:04:07Z", datetime(2026, 11, 26, 10, 4, 7, tzinfo=UTC)),
        ("2026-11-26T11:04:07+01:00", datetime(2026, 11, 26, 11, 4, 7, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-11-26T10:04:07", None),
        ("yesterday", None),
        ("", None),
    ],
    ids=["zulu", "offset", "naive", "malformed", "absent"],
)
def test_status_datetime_is_kept_only_with_its_offset(value: str, expected: datetime | None) -> None:
    event = parse_one(edit_query(fixture("messagebird", "delivered.txt"), statusDatetime=value))
    assert event.provider_timestamp == expected


def test_status_reason_becomes_the_error_description_cut_to_255_characters() -> None:
    event = parse_one(edit_query(fixture("messagebird", "delivery_failed.txt"), statusReason="x" * 300))
    assert event.error_description == "x" * 255


def test_posted_form_report_is_read_from_its_body() -> None:
    body = fixture("messagebird", "delivery_failed.txt")
    token = messagebird.sign(SECRET, URL, body, now=NOW, jti=JTI)
    request = WebhookRequest(method="POST", url=URL, headers={HEADER: token, "content-type": FORM}, body=body)
    adapter_at(NOW).verify(request, [SECRET])
    (event,) = messagebird.adapter.parse(request)
    assert (event.provider_message_id, event.status, event.error_code) == (
        "5e4b7a2c9d1f4e8ba6c3d0f9e2b1a7c4",
        Status.UNDELIVERED,
        "1",
    )


def test_retried_report_has_a_new_jti_but_the_same_dedupe_key() -> None:
    query = fixture("messagebird", "delivered.txt")
    first = mb_request(SECRET, query, now=NOW, jti="first-attempt")
    retry = mb_request(SECRET, query, now=NOW + 600, jti="second-attempt")
    assert first.headers[HEADER] != retry.headers[HEADER]
    (a,) = messagebird.adapter.parse(first)
    (b,) = messagebird.adapter.parse(retry)
    assert a.event_id == b.event_id == ""
    assert a.dedupe_key() == b.dedupe_key() != parse_one(edit_query(query, status="expired")).dedupe_key()


# Through the endpoint


@pytest.mark.django_db
def test_signed_status_report_is_stored_and_moves_the_message(client: Any) -> None:
    connection = ConnectionFactory(provider="messagebird", secrets=[OTHER_SECRET, SECRET])
    message = MessageFactory(connection=connection, provider_message_id="efa6405d518d4c0c88cce11f7db775fb")
    query = fixture("messagebird", "delivered.txt").decode()
    url = f"http://testserver/hooks/{connection.slug}/?{query}"
    token = messagebird.sign(SECRET, url, b"", now=int(time.time()), jti=JTI)
    response = client.get(f"/hooks/{connection.slug}/?{query}", headers={"MessageBird-Signature-JWT": token})
    assert response.status_code == 200, response.content
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status, receipt.error_code) == ("delivered", Status.DELIVERED, "")
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 4, 7, tzinfo=UTC)
    assert HEADER not in receipt.headers


@pytest.mark.django_db
def test_status_report_signed_for_another_url_is_refused_and_not_stored(client: Any) -> None:
    connection = ConnectionFactory(provider="messagebird", secrets=[SECRET])
    query = fixture("messagebird", "delivered.txt").decode()
    token = messagebird.sign(SECRET, f"https://elsewhere.example/?{query}", b"", now=int(time.time()), jti=JTI)
    response = client.get(f"/hooks/{connection.slug}/?{query}", headers={"MessageBird-Signature-JWT": token})
    assert response.status_code == 401
    assert not Receipt.objects.exists()


class TestMessageBirdExtremes(ExtremeInputSuite):
    provider = "messagebird"
    secret = SECRET
    message_id = "5e4b7a2c9d1f4e8ba6c3d0f9e2b1a7c4"
    fields = {
        "time": ("statusDatetime",),
        "number": ("statusErrorCode",),
        "message_id": ("id",),
        "status": ("status",),
        "error_code": ("statusErrorCode",),
        "description": ("statusReason",),
    }

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        report = fill(form_fixture("messagebird", "delivery_failed.txt"), slots, self.fields)
        query = urlencode(report)
        token = messagebird.sign(
            SECRET, f"http://testserver/hooks/{connection.slug}/?{query}", b"", now=int(time.time()), jti=JTI
        )
        return client.get(f"/hooks/{connection.slug}/?{query}", headers={"MessageBird-Signature-JWT": token})


@pytest.mark.parametrize(
    ("changes", "network", "price", "currency"),
    [
        ({"price[amount]": "free", "price[currency]": "EUR"}, "20408", None, ""),
        ({"price[amount]": "-0.07"}, "20408", None, ""),
        ({"price[currency]": "euro"}, "20408", Decimal("0.07"), ""),
        ({"mccmnc": "x" * 200}, "", Decimal("0.07"), "EUR"),
    ],
    ids=["price-not-a-number", "price-negative", "currency-not-iso", "network-too-long"],
)
def test_a_network_or_price_we_cannot_keep_is_dropped_and_the_report_still_parses(
    changes: dict[str, str], network: str, price: Decimal | None, currency: str
) -> None:
    event = parse_one(edit_query(fixture("messagebird", "delivered.txt"), **changes))
    assert (event.status, event.network, event.price, event.currency) == (Status.DELIVERED, network, price, currency)
