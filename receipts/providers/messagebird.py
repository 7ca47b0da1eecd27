"""MessageBird (Bird legacy SMS API) status reports.

Docs: https://developers.messagebird.com/api/sms-messaging/ ("Handle a status report") and
https://support.messagebird.com/hc/en-us/articles/360001869258 (reports are GET requests).
Signature: the reference validator, https://github.com/messagebird/go-rest-api/tree/master/signature_jwt
(its `testdata/reference.json` is kept as our test fixture).

Reports arrive as a GET whose query carries the fields (`id`, `reference`, `recipient`,
`status`, `statusReason`, `statusDatetime`, `statusErrorCode`, ...). Each request is signed by
a `MessageBird-Signature-JWT` header: an HMAC JWT keyed with the account's signing key whose
claims bind it to the URL called (`url_hash`) and the body (`payload_hash`), valid one minute.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import jwt
from jwt.types import Options

from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    clean_price,
    constant_time_equal,
    require_secrets,
    url_as_called,
)
from receipts.statuses import Status

ALGORITHMS = ["HS256", "HS384", "HS512"]  # the reference validator allows HMAC only
# PyJWT checks the signature only; the claims are checked below, against our clock and rules.
SIGNATURE_ONLY: Options = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}
MAX_SKEW_SECONDS = 1  # the reference validator's `maxSkew`
# MessageBird mints a token per request, valid one minute; we bound its age ourselves rather
# than trust `exp` alone, so a token issued (`nbf`, else `iat`) longer ago is refused whatever
# its `exp` says.
MAX_TOKEN_AGE_SECONDS = 300
ISSUER = "MessageBird"

# https://developers.messagebird.com/api/sms-messaging/ (status values of a message's recipients)
STATUS_MAP: dict[str, Status] = {
    "scheduled": Status.ACCEPTED,
    "sent": Status.SENT,
    # buffered: the carrier holds it (handset off); a final report follows.
    "buffered": Status.SENT,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "delivery_failed": Status.UNDELIVERED,
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(
    signing_key: str,
    url: str,
    body: bytes,
    *,
    now: int,
    jti: str,
    lifetime: int = 60,
    algorithm: str = "HS256",
) -> str:
    """A `MessageBird-Signature-JWT` value as MessageBird builds it (for tests and the simulator)."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "nbf": now,
        "exp": now + lifetime,
        "jti": jti,
        "url_hash": sha256_hex(url.encode()),
    }
    if body:
        claims["payload_hash"] = sha256_hex(body)
    return jwt.encode(claims, signing_key, algorithm=algorithm)


def check_claims(claims: Mapping[str, Any], *, url: str, body: bytes, now: float) -> None:
    """The reference validator's rules (`claims.go`), each failure with its own reason."""
    received = int(now)  # whole seconds, as the validator compares them
    if claims.get("iss") != ISSUER:
        raise SignatureError("signature claim iss has wrong value")
    nbf, exp = claims.get("nbf", 0), claims.get("exp", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (nbf, exp)):
        raise SignatureError("signature claims nbf and exp must be unix times")
    if received < nbf - MAX_SKEW_SECONDS:
        raise SignatureError("signature claim nbf is in the future")
    if received > exp + MAX_SKEW_SECONDS:
        raise SignatureError("signature claim exp is in the past")
    issued = claims.get("nbf", claims.get("iat"))
    if not isinstance(issued, int) or isinstance(issued, bool) or received - issued > MAX_TOKEN_AGE_SECONDS:
        raise SignatureError(f"signature was issued more than {MAX_TOKEN_AGE_SECONDS} seconds ago")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise SignatureError("signature claim jti is empty or missing")
    if not _hash_matches(claims.get("url_hash"), url.encode()):
        raise SignatureError("signature claim url_hash is invalid")
    given = claims.get("payload_hash")
    if given in (None, "") and body:
        raise SignatureError("signature claim payload_hash is not set but payload is present")
    if given not in (None, "") and not body:
        raise SignatureError("signature claim payload_hash is set but actual payload is missing")
    if body and not _hash_matches(given, body):
        raise SignatureError("signature claim payload_hash is invalid")


def _hash_matches(claimed: object, data: bytes) -> bool:
    return isinstance(claimed, str) and constant_time_equal(sha256_hex(data), claimed)


class MessageBirdAdapter(ProviderAdapter):
    kind = "messagebird"
    label = "MessageBird (Bird) SMS"
    shared_code_tables = ("gsm",)
    status_map = STATUS_MAP

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        token = request.header("messagebird-signature-jwt").strip()
        if not token:
            raise SignatureError("missing MessageBird-Signature-JWT header")
        for secret in secrets:
            try:
                claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options=SIGNATURE_ONLY)
            except jwt.PyJWTError:
                continue  # not this key (or not a JWT at all): try the next one
            check_claims(claims, url=url_as_called(request, public_url), body=request.body, now=self.clock())
            return
        raise SignatureError("MessageBird-Signature-JWT is not signed with this connection's signing key")

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        fields = report_fields(request)
        message_id = fields.get("id", "")
        provider_status = fields.get("status", "")
        if not message_id:
            raise PayloadError("id is missing")
        if not provider_status:
            raise PayloadError("status is missing")
        # No event id: the JWT's `jti` is minted per request and lives one minute, so a retried
        # report carries a new one. The fallback key (id, status, error code, statusDatetime)
        # is what stays the same across retries.
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=self.normalize_status(provider_status),
                error_code=fields.get("statusErrorCode", "").strip(),
                error_description=fields.get("statusReason", "")[:255],
                provider_timestamp=parse_status_datetime(fields.get("statusDatetime", "")),
                # Reports carry the carrier's MCC/MNC and the price with its currency
                # (`mccmnc`, `price[amount]`, `price[currency]`) when MessageBird knows them;
                # values we cannot keep are dropped by the event, the raw report keeps them.
                network=fields.get("mccmnc", ""),
                price=clean_price(fields.get("price[amount]")),
                currency=fields.get("price[currency]", ""),
            )
        ]


def report_fields(request: WebhookRequest) -> dict[str, str]:
    """The query's fields (first value of each). MessageBird documents GET only; a POSTed form
    is read the same way, its body being covered by `payload_hash`. Both are signed: the query
    through `url_hash`, a body through `payload_hash`, which must be there iff a body is."""
    source = request.form() if request.method == "POST" and request.body else request.query()
    return {name: values[0] for name, values in source.items() if values}


def parse_status_datetime(value: str) -> datetime | None:
    """RFC 3339 with an offset; a value without one, or malformed, is dropped (the raw report
    keeps it) rather than refusing the receipt."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


adapter = MessageBirdAdapter()
