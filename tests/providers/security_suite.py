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
  headers kept with the receipt.

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

from dataclasses import replace
from typing import Any, ClassVar

import pytest

from receipts.providers.base import ProviderAdapter, SignatureError, WebhookRequest


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


class TimestampedProviderSecuritySuite(SignedProviderSecuritySuite):
    """For schemes that sign a timestamp: adds the replay window, in both directions.

    `make_signed_request` must accept `timestamp=` (unix seconds; default `now`), and `adapter`
    must read its time from a clock fixed at `now`.
    """

    now: ClassVar[int]
    tolerance_seconds: ClassVar[int]
    # Signed times no clock reads: before the epoch, the epoch, year 33658, 64 bits, 401 digits.
    # A scheme that cannot write one (SNS's ISO time stops at year 9999) narrows the list.
    far_timestamps: ClassVar[tuple[int, ...]] = (-1, 0, 10**12, 10**19, 10**400)

    def test_timestamp_older_than_the_tolerance_is_refused(self) -> None:
        request = self.signed(timestamp=self.now - self.tolerance_seconds - 1)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    def test_timestamp_further_ahead_than_the_tolerance_is_refused(self) -> None:
        request = self.signed(timestamp=self.now + self.tolerance_seconds + 1)
        with pytest.raises(SignatureError):
            self.verify(request, [self.secret])

    @pytest.mark.parametrize("direction", [-1, 1], ids=["past", "future"])
    def test_timestamp_within_the_tolerance_verifies(self, direction: int) -> None:
        self.verify(self.signed(timestamp=self.now + direction * (self.tolerance_seconds - 1)), [self.secret])

    def test_signed_timestamp_beyond_any_clock_is_a_signature_refusal_not_a_crash(self) -> None:
        for timestamp in self.far_timestamps:
            with pytest.raises(SignatureError):
                self.verify(self.signed(timestamp=timestamp), [self.secret])
