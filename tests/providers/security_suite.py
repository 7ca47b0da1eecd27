"""One security suite for every signing provider: subclass it in the provider's tests.

As in django-anymail's `tests/webhook_cases.py`, what a signature must refuse is written once
and every provider's test module inherits it, so a new adapter cannot forget a case. A subclass
(named `Test…` so pytest collects it) sets the class attributes and implements
`make_signed_request`; the suite then pins, at the adapter level (no database, no HTTP):

- a correctly signed request verifies, and parses (so the refusals below are about the signature,
  not about a body the adapter could not read anyway);
- a missing or empty signature, a wrong signature, a signature made with another secret and a
  body changed after signing are refused with `SignatureError`;
- rotated secrets: the right secret verifies whether it is first or second in the list;
- a connection without any secret refuses everything;
- the refusal message never contains the secret, and the signature header is not among the
  headers kept with the receipt;
- only signed material is read: each part the signature does not cover, changed on a correctly
  signed request (a body added to a GET, the query of a body-signed POST changed, the method
  flipped, Content-Type and other headers changed), is refused, or changes nothing of what
  would be stored (the parsed events and the raw payload kept with them). A provider that
  sends GET receipts also implements `signed_get`, so its query-carried receipt is changed too.

Schemes whose signature covers a timestamp subclass `TimestampedProviderSecuritySuite`
instead, which adds the tolerance window: too old and too far ahead are refused, inside the
window both ways verifies. The adapter there must run on a clock fixed at `now`.

Example::

    class TestAcmeSecurity(SignedProviderSecuritySuite):
        adapter = acme.adapter
        secret = "acme-secret-current"
        other_secret = "acme-secret-previous"
        valid_body = fixture("acme", "delivered.json")
        tampered_body = valid_body.replace(b'"delivered"', b'"failed"')
        signature_header = "x-acme-signature"
        bad_signature = "sha256=" + "0" * 64

        def make_signed_request(self, secret, body, **kw):
            return acme_request(secret, body, **kw)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest

from receipts.providers.base import PayloadError, ProviderAdapter, ReceiptEvent, SignatureError, WebhookRequest

# Another receipt, in every signing provider's field names at once (Twilio, Vonage, Plivo,
# MessageBird), as a forger would put it where the signature does not reach.
FORGED = {
    "MessageSid": "SMf0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
    "SmsSid": "SMf0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
    "MessageStatus": "undelivered",
    "SmsStatus": "undelivered",
    "ErrorCode": "30005",
    "messageId": "0BF0F0F0F0F0F0F0",
    "status": "expired",
    "err-code": "5",
    "MessageUUID": "f0f0f0f0-0000-4000-8000-f0f0f0f0f0f0",
    "Status": "failed",
    "id": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
    "statusErrorCode": "5",
}
FORGED_QUERY = urlencode(FORGED)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def with_query(request: WebhookRequest, query: str) -> WebhookRequest:
    base = request.url.partition("?")[0]
    return replace(request, url=f"{base}?{query}" if query else base)


def with_header(request: WebhookRequest, name: str, value: str | None) -> WebhookRequest:
    headers = {key: v for key, v in request.headers.items() if key != name}
    return replace(request, headers=headers if value is None else {**headers, name: value})


def flipped(request: WebhookRequest) -> WebhookRequest:
    return replace(request, method="GET" if request.method == "POST" else "POST")


def forged_queries(request: WebhookRequest) -> list[WebhookRequest]:
    """The query replaced by, put before and put after a forged receipt's fields."""
    query = request.url.partition("?")[2]
    joined = [f"{FORGED_QUERY}&{query}", f"{query}&{FORGED_QUERY}"] if query else []
    return [with_query(request, q) for q in (FORGED_QUERY, *joined)]


def forged_bodies(request: WebhookRequest) -> list[WebhookRequest]:
    """A forged receipt as a form and as JSON, where the request carried no body."""
    if request.body:
        return []
    return [
        with_header(replace(request, body=body), "content-type", content_type)
        for body, content_type in ((FORGED_QUERY.encode(), FORM), (json.dumps(FORGED).encode(), JSON))
    ]


UNSIGNED_CHANGES: dict[str, Callable[[WebhookRequest], list[WebhookRequest]]] = {
    "query-forged": forged_queries,
    "body-added": forged_bodies,
    "body-added-and-method-flipped": lambda r: [flipped(c) for c in forged_bodies(r)],
    "method-flipped": lambda r: [flipped(r)],
    "method-flipped-and-query-forged": lambda r: forged_queries(flipped(r)),
    "content-type-changed": lambda r: [
        with_header(r, "content-type", value) for value in (FORM, JSON, "text/plain", "multipart/form-data", None)
    ],
    "unsigned-headers-added": lambda r: [
        with_header(r, name, value)
        for name, value in (
            ("x-http-method-override", "GET"),
            ("x-original-url", f"/?{FORGED_QUERY}"),
            ("x-forwarded-host", "evil.example"),
            ("user-agent", "curl/8.10"),
        )
    ],
}


class SignedProviderSecuritySuite:
    """Refusals every signing provider must make. Not collected itself: subclass it."""

    # The adapter under test (for timestamped schemes: built with a clock fixed at `now`).
    adapter: ClassVar[ProviderAdapter]
    # The secret the requests are signed with, and another well-formed one of the same provider.
    secret: ClassVar[str]
    other_secret: ClassVar[str]
    # A real receipt body (a fixture file), and the same body with a meaningful change (a status,
    # an id) that still reads as a receipt, so that only the signature can tell them apart.
    valid_body: ClassVar[bytes]
    tampered_body: ClassVar[bytes]
    # The lower-cased header carrying the signature, and a well-formed value that is not the
    # right signature (same shape and length as a real one).
    signature_header: ClassVar[str]
    bad_signature: ClassVar[str]

    def make_signed_request(self, secret: str, body: bytes, **kw: Any) -> WebhookRequest:
        """A request carrying `body`, signed with `secret` as the provider signs."""
        raise NotImplementedError

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """How the suite calls the adapter; override to pass e.g. `public_url`."""
        self.adapter.verify(request, secrets)

    def signed(self, **kw: Any) -> WebhookRequest:
        return self.make_signed_request(self.secret, self.valid_body, **kw)

    def signed_get(self) -> WebhookRequest | None:
        """A correctly signed receipt carried in a GET's query, for providers that send them."""
        return None

    def stored(self, request: WebhookRequest) -> tuple[list[ReceiptEvent], list[str]] | None:
        """What the request would store, its events and the raw payload kept with each; None
        when it is refused."""
        try:
            self.verify(request, [self.secret])
            events = self.adapter.parse(request)
        except (SignatureError, PayloadError):
            return None
        return events, [event.raw or request.raw_text() for event in events]

    def with_signature(self, request: WebhookRequest, value: str | None) -> WebhookRequest:
        """`request` with the signature header set to `value`, or removed when `value` is None."""
        headers = {name: v for name, v in request.headers.items() if name != self.signature_header}
        if value is not None:
            headers[self.signature_header] = value
        return replace(request, headers=headers)

    def test_correctly_signed_request_verifies_and_parses(self) -> None:
        request = self.signed()
        self.verify(request, [self.secret])
        assert self.adapter.parse(request)

    def test_missing_signature_is_refused(self) -> None:
        with pytest.raises(SignatureError):
            self.verify(self.with_signature(self.signed(), None), [self.secret])

    def test_empty_signature_is_refused(self) -> None:
        with pytest.raises(SignatureError):
            self.verify(self.with_signature(self.signed(), ""), [self.secret])

    def test_bad_signature_is_refused(self) -> None:
        with pytest.raises(SignatureError):
            self.verify(self.with_signature(self.signed(), self.bad_signature), [self.secret])

    def test_signature_made_with_another_secret_is_refused(self) -> None:
        request = self.make_signed_request(self.other_secret, self.valid_body)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    def test_body_changed_after_signing_is_refused(self) -> None:
        assert self.tampered_body != self.valid_body
        request = replace(self.signed(), body=self.tampered_body)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    def test_rotated_secrets_verify_when_the_right_one_is_second(self) -> None:
        self.verify(self.signed(), [self.other_secret, self.secret])

    def test_rotated_secrets_verify_when_the_right_one_is_first(self) -> None:
        self.verify(self.signed(), [self.secret, self.other_secret])

    def test_connection_without_secret_refuses_even_a_valid_signature(self) -> None:
        with pytest.raises(SignatureError):
            self.verify(self.signed(), [])

    def test_refusal_does_not_reveal_the_secret(self) -> None:
        request = self.make_signed_request(self.other_secret, self.valid_body)
        with pytest.raises(SignatureError) as refused:
            self.verify(request, [self.secret])
        assert self.secret not in str(refused.value)
        assert self.other_secret not in str(refused.value)

    def test_signature_header_is_not_kept_with_the_receipt(self) -> None:
        assert self.signature_header not in self.adapter.headers_to_keep(self.signed())

    @pytest.mark.parametrize("change", UNSIGNED_CHANGES)
    def test_unsigned_part_changed_is_refused_or_changes_nothing_stored(self, change: str) -> None:
        for original in (self.signed(), self.signed_get()):
            if original is None:
                continue
            expected = self.stored(original)
            assert expected is not None, "the unchanged request must verify and parse"
            for changed in UNSIGNED_CHANGES[change](original):
                assert self.stored(changed) in (None, expected), (changed.method, changed.url, changed.headers)


class TimestampedProviderSecuritySuite(SignedProviderSecuritySuite):
    """For schemes that sign a timestamp: adds the replay window, in both directions.

    `make_signed_request` must accept `timestamp=` (unix seconds; default `now`), and `adapter`
    must read its time from a clock fixed at `now`.
    """

    now: ClassVar[int]
    tolerance_seconds: ClassVar[int]
    # How far ahead of the clock a signed time may be, where it differs from how far behind.
    ahead_tolerance_seconds: ClassVar[int | None] = None
    # Signed times no clock reads: before the epoch, the epoch, year 33658, 64 bits, 401 digits.
    # A scheme that cannot write one (SNS's ISO time stops at year 9999) narrows the list.
    far_timestamps: ClassVar[tuple[int, ...]] = (-1, 0, 10**12, 10**19, 10**400)

    def test_timestamp_older_than_the_tolerance_is_refused(self) -> None:
        request = self.signed(timestamp=self.now - self.tolerance_seconds - 1)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    def ahead(self) -> int:
        return self.tolerance_seconds if self.ahead_tolerance_seconds is None else self.ahead_tolerance_seconds

    def test_timestamp_further_ahead_than_the_tolerance_is_refused(self) -> None:
        request = self.signed(timestamp=self.now + self.ahead() + 1)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    @pytest.mark.parametrize("direction", [-1, 1], ids=["past", "future"])
    def test_timestamp_within_the_tolerance_verifies(self, direction: int) -> None:
        within = self.tolerance_seconds if direction < 0 else self.ahead()
        self.verify(self.signed(timestamp=self.now + direction * (within - 1)), [self.secret])

    def test_signed_timestamp_beyond_any_clock_is_a_signature_refusal_not_a_crash(self) -> None:
        for timestamp in self.far_timestamps:
            with pytest.raises(SignatureError):
                self.verify(self.signed(timestamp=timestamp), [self.secret])
