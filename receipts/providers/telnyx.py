"""Telnyx messaging webhooks (API v2): `message.sent` and `message.finalized`.

Docs: https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks
Callback schema: https://developers.telnyx.com/api-reference/callbacks/delivery-update
Signature: Ed25519 over "{telnyx-timestamp}|{raw body}", verified with the account's public key
from Mission Control (telnyx-python `src/telnyx/lib/webhook_verification.py`, 300 s tolerance).
A connection's secrets are those base64 public keys: Telnyx holds the private key, so there is
nothing for us to generate.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    clean_currency,
    clean_network,
    clean_price,
    require_secrets,
    unix_seconds,
)
from receipts.statuses import Status

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECONDS = 300
# The outbound delivery events; others (message.received is an inbound SMS) carry no receipt.
RECEIPT_EVENTS = frozenset({"message.sent", "message.finalized"})


def decode_key(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Telnyx public key is base64") from None
    if len(raw) != 32:
        raise ValueError("a Telnyx public key decodes to 32 bytes (Ed25519)")
    return raw


def sign(private_key: str, timestamp: int | str, body: bytes) -> str:
    """The telnyx-signature-ed25519 header for `body`, signed with a base64 32-byte Ed25519 seed.

    Only Telnyx signs in production; this is for tests and the simulator.
    """
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True))
    return base64.b64encode(key.sign(f"{timestamp}|".encode() + body)).decode()


def public_key_for(private_key: str) -> str:
    """The base64 public key (what a connection holds) of a base64 Ed25519 seed."""
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key, validate=True))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def signature_matches(public_key: str, timestamp: str, body: bytes, signature: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(decode_key(public_key))
        key.verify(signature, f"{timestamp}|".encode() + body)
    except (ValueError, InvalidSignature):
        # A malformed stored key must not hide a valid one beside it.
        return False
    return True


# https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks (to[].status)
STATUS_MAP: dict[str, Status] = {
    "queued": Status.ACCEPTED,
    "sending": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "delivery_failed": Status.UNDELIVERED,
    "sending_failed": Status.FAILED,
    "expired": Status.EXPIRED,
    # Final: the carrier gave no receipt, so Telnyx itself does not know.
    "delivery_unconfirmed": Status.UNKNOWN,
}


class TelnyxAdapter(ProviderAdapter):
    kind = "telnyx"
    label = "Telnyx"
    status_map = STATUS_MAP
    kept_headers = ("content-type", "user-agent", TIMESTAMP_HEADER)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def validate_secret(self, secret: str) -> None:
        decode_key(secret)

    def generate_secret(self) -> str:
        raise ValueError("Telnyx gives the public key: copy it from Mission Control (Keys & Credentials)")

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        header = request.header(SIGNATURE_HEADER)
        raw_timestamp = request.header(TIMESTAMP_HEADER)
        if not (header and raw_timestamp):
            raise SignatureError("missing telnyx-signature-ed25519 or telnyx-timestamp header")
        timestamp = unix_seconds(raw_timestamp)
        if timestamp is None:
            raise SignatureError("telnyx-timestamp is not a unix time")
        # Both directions: an old timestamp is a replay, a future one a forged clock.
        if abs(self.clock() - timestamp) > TOLERANCE_SECONDS:
            raise SignatureError("telnyx-timestamp is outside the 5 minute tolerance")
        try:
            signature = base64.b64decode(header, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("telnyx-signature-ed25519 is not base64") from None
        if len(signature) != 64:
            raise SignatureError("telnyx-signature-ed25519 is not an Ed25519 signature")
        # The timestamp is signed as the header's text, exactly as sent.
        if not any(signature_matches(key, raw_timestamp, request.body, signature) for key in secrets):
            raise SignatureError("telnyx-signature-ed25519 does not match")

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        envelope = request.json()
        data = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(data, dict):
            raise PayloadError("body must be a JSON object with a `data` object")
        event_type = data.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise PayloadError("`data.event_type` must be a non-empty string")
        if event_type not in RECEIPT_EVENTS:
            return []  # acknowledged with 200 so Telnyx does not retry, nothing stored
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise PayloadError("`data.payload` must be an object")
        message_id = payload.get("id")
        if not isinstance(message_id, str) or not message_id:
            raise PayloadError("`data.payload.id` must be a non-empty string")
        provider_status = recipient_status(payload.get("to"))
        code, description = first_error(payload.get("errors"))
        event_id = data.get("id")
        cost = payload.get("cost")
        if not isinstance(cost, dict):
            cost = {}
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=self.normalize_status(provider_status),
                error_code=code,
                error_description=description[:255],
                provider_timestamp=parse_timestamp(data.get("occurred_at")),
                event_id=event_id if isinstance(event_id, str) else "",
                # The first recipient's carrier, as its status stands for the message.
                network=clean_network(payload["to"][0].get("carrier")),
                price=clean_price(cost.get("amount")),
                currency=clean_currency(cost.get("currency")),
            )
        ]


def recipient_status(recipients: object) -> str:
    """The status of the first recipient.

    A message is known by its id alone, which Telnyx gives one per send: an SMS has exactly one
    `to`; only a group MMS has several, under the same id. Events per recipient would share
    the message and the event id (so the dedupe key) and could not be told apart, so the first
    recipient stands for the message; the raw body keeps the others.
    """
    if not isinstance(recipients, list) or not recipients or not isinstance(recipients[0], dict):
        raise PayloadError("`data.payload.to` must be a non-empty list of recipients")
    status = recipients[0].get("status")
    if not isinstance(status, str) or not status:
        raise PayloadError("`data.payload.to[0].status` must be a non-empty string")
    return status


def first_error(errors: object) -> tuple[str, str]:
    """The first error's code (as a string, verbatim) and its detail, else its title."""
    if errors is None:
        return "", ""
    if not isinstance(errors, list):
        raise PayloadError("`data.payload.errors` must be a list")
    if not errors or not isinstance(errors[0], dict):
        return "", ""
    code, title, detail = (errors[0].get(name) for name in ("code", "title", "detail"))
    description = detail if isinstance(detail, str) and detail else title if isinstance(title, str) else ""
    return ("" if code is None else str(code)), description


def parse_timestamp(value: object) -> datetime | None:
    """`occurred_at`, ISO 8601 with a zone; an unreadable one is dropped (the raw body keeps
    it) rather than refusing the receipt: the event id already identifies the event."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


adapter = TelnyxAdapter()
