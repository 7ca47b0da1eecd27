"""Standard Webhooks signing, for receipts we verify and for the webhooks we send (the product
feed, the signed-webhook fallback channel).

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
Headers `webhook-id`, `webhook-timestamp`, `webhook-signature`; the signed content is
"{id}.{timestamp}.{body}", HMAC-SHA256 keyed with the base64-decoded secret (`whsec_` prefix
stripped); the signature header holds space-separated "v1,<base64>" entries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
# How far a signed timestamp may be from our clock, either way: older is a replay, newer a
# forged clock (the spec's recommendation).
TOLERANCE_SECONDS = 5 * 60
KEY_BYTES = (24, 64)


def decode_secret(secret: str) -> bytes:
    """The signing key: base64 after the `whsec_` prefix, tolerating missing padding."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is base64, optionally prefixed with whsec_") from None


def validate_secret(secret: str, *, prefixed: bool = False) -> None:
    """Raise ValueError unless `secret` is usable: a key of 24 to 64 bytes. Secrets we hand out
    (`prefixed`) also carry the `whsec_` prefix, so nobody mistakes them for another kind."""
    if prefixed and not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    low, high = KEY_BYTES
    if not low <= len(decode_secret(secret)) <= high:
        raise ValueError(f"a Standard Webhooks secret decodes to {low} to {high} bytes")


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of a signed JSON POST."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def signature_matches(*, secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether any "v1," entry of the signature header is this secret's signature. A malformed
    secret matches nothing (it must not hide a valid one beside it)."""
    try:
        expected = sign(secret, msg_id, timestamp, body).encode()
    except ValueError:
        return False
    given = [entry.encode() for entry in header.split(" ") if entry.startswith("v1,")]
    return any(hmac.compare_digest(expected, entry) for entry in given)
