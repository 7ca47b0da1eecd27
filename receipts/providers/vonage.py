"""Vonage (Nexmo) SMS API delivery receipts.

Docs: https://developer.vonage.com/messaging/sms/guides/delivery-receipts
Signature: https://developer.vonage.com/getting-started/concepts/signing-messages

The account chooses how receipts arrive (GET query, POST form or POST JSON) and how they are
signed; the connection's `options["signature_method"]` says which signature to expect:
`md5hash` (Vonage's default), `md5`, `sha1`, `sha256`, `sha512` (a `sig` parameter among the
fields) or `jwt` (the signed-webhook `Authorization: Bearer` token Vonage's Messages and Voice
APIs use, for receipts relayed that way). Vonage signs receipts only
once its support has enabled it for the account; until then every receipt is refused (401).

Only signed material is read. `sig` covers the fields it is among, wherever they are (a GET's
query, a POST's body). The JWT covers its claims, and the body only through `payload_hash`
(receipts/providers/vonage_jwt.py): a `jwt` connection takes a POST whose body the token's
`payload_hash` matches, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from receipts.providers import vonage_jwt
from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    clean_network,
    clean_price,
    constant_time_equal,
    require_secrets,
    unix_seconds,
)
from receipts.statuses import Status

# Vonage retries an unacknowledged receipt for up to 72 hours and does not document re-signing a
# retry with a fresh timestamp, so a 5-minute window (Vonage's Java SDK) could refuse, and lose,
# every retry. A replayed genuine receipt is harmless here (it is a duplicate and is dropped), so
# the window only has to bound how old a signed request may be: the retry period plus an hour.
TOLERANCE_SECONDS = 73 * 3600
HMAC_DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
SIGNATURE_METHODS = ("md5hash", *HMAC_DIGESTS, "jwt")
DEFAULT_SIGNATURE_METHOD = "md5hash"  # the dashboard's default

# https://developer.vonage.com/messaging/sms/guides/delivery-receipts (DLR status values)
STATUS_MAP: dict[str, Status] = {
    # Intermediate: the carrier has the message (buffered: the handset is off); a final follows.
    "accepted": Status.SENT,
    "buffered": Status.SENT,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "failed": Status.UNDELIVERED,
    "rejected": Status.REJECTED,
    "unknown": Status.UNKNOWN,
}
# A receipt's `price` names no currency: Vonage accounts are charged in euros (its account balance
# API and dashboard give the balance in EUR; the Messages API's SMS callbacks say EUR).
CURRENCY = "EUR"
# On these statuses `err-code` 0 means "no error", not a code to classify.
NO_ERROR_STATUSES = frozenset({"delivered", "accepted", "buffered"})


def canonical(params: Mapping[str, str], *, skip_blank: bool = False) -> str:
    """`&key=value` for every field but `sig`, sorted by key, with `&` and `=` in values as `_`.

    Vonage's Java SDK leaves out blank values, its Python and Node SDKs keep them; `skip_blank`
    builds the former.
    """
    return "".join(
        f"&{key}={value.replace('&', '_').replace('=', '_')}"
        for key, value in sorted(params.items())
        if key != "sig" and not (skip_blank and not value.strip())
    )


def signature(secret: str, params: Mapping[str, str], method: str = DEFAULT_SIGNATURE_METHOD) -> str:
    """The `sig` value, lower-case hex: md5(canonical + secret) for `md5hash`, else an HMAC."""
    return _digest(secret, canonical(params), method)


def _digest(secret: str, text: str, method: str) -> str:
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()  # noqa: S324 - Vonage's scheme
    return hmac.new(secret.encode(), text.encode(), HMAC_DIGESTS[method]).hexdigest()


class VonageAdapter(ProviderAdapter):
    kind = "vonage"
    label = "Vonage (Nexmo) SMS API"
    status_map = STATUS_MAP

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def validate_options(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - {"signature_method"}
        if unknown:
            raise ValueError(f"unknown Vonage options: {', '.join(sorted(unknown))}")
        if options.get("signature_method", DEFAULT_SIGNATURE_METHOD) not in SIGNATURE_METHODS:
            raise ValueError(f"signature_method must be one of {', '.join(SIGNATURE_METHODS)}")

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        method = (options or {}).get("signature_method", DEFAULT_SIGNATURE_METHOD)
        if not isinstance(method, str) or method not in SIGNATURE_METHODS:
            raise SignatureError("connection has an unknown Vonage signature_method")
        if method == "jwt":
            self._verify_jwt(request, secrets)
        else:
            self._verify_sig(request, secrets, method)

    def _verify_sig(self, request: WebhookRequest, secrets: Sequence[str], method: str) -> None:
        if request.method != "POST" and request.body:
            raise SignatureError("a GET receipt is signed in its query: its body is not signed")
        params = receipt_fields(request)
        given = params.get("sig", "").lower()
        if not given:
            raise SignatureError("missing sig parameter")
        timestamp = unix_seconds(params.get("timestamp", ""))
        if timestamp is None:
            raise SignatureError("missing or malformed timestamp parameter")
        # Vonage's Java SDK refuses a timestamp more than 5 minutes from now, either way. Its docs
        # do not say whether a retried receipt is signed afresh; the 401s would show if not.
        if abs(self.clock() - timestamp) > TOLERANCE_SECONDS:
            raise SignatureError("timestamp is outside the 73 hour tolerance")
        texts = {canonical(params), canonical(params, skip_blank=True)}
        for secret in secrets:
            if any(constant_time_equal(_digest(secret, text, method), given) for text in texts):
                return
        raise SignatureError("sig does not match")

    def _verify_jwt(self, request: WebhookRequest, secrets: Sequence[str]) -> None:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SignatureError("missing Authorization: Bearer token")
        if request.method != "POST" or not request.body:
            # receipt_fields would read the query, which the token does not cover.
            raise SignatureError("a bearer token signs a POST body only: this request has none")
        claims = vonage_jwt.claims(token.strip(), secrets)
        vonage_jwt.check_claims(claims, request.body, now=self.clock())

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        fields = receipt_fields(request)
        message_id = fields.get("messageId", "")
        provider_status = fields.get("status", "")
        if not message_id:
            raise PayloadError("messageId is missing")
        if not provider_status:
            raise PayloadError("status is missing")
        error_code = fields.get("err-code", "").strip()
        if error_code == "0" and provider_status.strip().lower() in NO_ERROR_STATUSES:
            error_code = ""
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=self.normalize_status(provider_status),
                error_code=error_code,
                provider_timestamp=parse_scts(fields.get("scts", ""))
                or parse_message_timestamp(fields.get("message-timestamp", "")),
                # network-code: the MCCMNC of the carrier the number is registered with.
                network=clean_network(fields.get("network-code")),
                price=clean_price(fields.get("price")),
                currency=CURRENCY,
            )
        ]


def receipt_fields(request: WebhookRequest) -> dict[str, str]:
    """The receipt's fields, wherever the account's setting put them (first value of each).

    A POST's query is ignored: Vonage calls sending both "unsupported", and only one of them can
    be what was signed.
    """
    if request.method == "POST" and request.body:
        if request.header("content-type").startswith("application/json"):
            return json_fields(request)
        source = request.form()
    else:
        source = request.query()
    return {name: values[0] for name, values in source.items() if values}


def json_fields(request: WebhookRequest) -> dict[str, str]:
    data = request.json()
    if not isinstance(data, dict):
        raise PayloadError("JSON body must be an object")
    # Vonage sends strings; anything else is signed and stored as its JSON text.
    return {
        str(key): "" if value is None else value if isinstance(value, str) else json.dumps(value)
        for key, value in data.items()
    }


def parse_scts(value: str) -> datetime | None:
    """scts: when the carrier's receipt reached Vonage, YYMMDDHHMM (UTC); some carriers add SS."""
    formats = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S"}
    if not value.isdigit() or len(value) not in formats:
        return None
    try:
        return datetime.strptime(value, formats[len(value)]).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_message_timestamp(value: str) -> datetime | None:
    """message-timestamp: when Vonage pushed the receipt, "YYYY-MM-DD HH:MM:SS" in UTC."""
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


adapter = VonageAdapter()
