"""Vonage signed webhooks: the `Authorization: Bearer` JWT of the Messages and Voice APIs.

Docs: https://developer.vonage.com/en/messages/concepts/signed-webhooks
HS256 with the account's signature secret; claims `iat`, `jti`, `iss` ("Vonage"), `api_key`,
`application_id` and `payload_hash`, the hex SHA-256 of the body. Messages API webhooks are
POSTed JSON and Vonage's sample token carries the hash. The token covers its claims and the
body only through `payload_hash`, so we take a token only with a body it hashes, and only
while its `iat` is recent: Vonage calls the payload check optional and documents no lifetime,
and without both a token would authenticate any receipt for ever.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from jwt.types import Options

from receipts.providers.base import SignatureError, constant_time_equal

# The Messages API retries a callback for 24 hours
# (https://api.support.vonage.com/hc/en-us/articles/360028543292) and does not say a retry gets
# a new token, so a token may be as old as the retry period, plus an hour (a replayed genuine
# receipt is a duplicate and is dropped); one issued further ahead of our clock than ordinary
# skew is a wrong clock.
MAX_AGE_SECONDS = 25 * 3600
AHEAD_SECONDS = 300
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


def claims(token: str, secrets: Sequence[str]) -> Mapping[str, Any]:
    """The claims of a token signed (HS256) with one of `secrets`; the claims are not checked."""
    for secret in secrets:
        try:
            decoded: Mapping[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], options=SIGNATURE_ONLY)
        except jwt.PyJWTError:
            continue  # not this secret (or not a JWT at all): try the next one
        return decoded
    raise SignatureError("bearer token is not signed with this connection's signature secret")


def check_claims(claims: Mapping[str, Any], body: bytes, *, now: float) -> None:
    """`iat` within MAX_AGE_SECONDS (Vonage documents no lifetime; `exp`/`nbf` are honoured
    when present), and `payload_hash` binding the token to this body: without it the token
    would authenticate any body for as long as it is accepted."""
    issued = claim_time(claims, "iat")
    if issued is None:
        raise SignatureError("bearer token has no iat: its age cannot be checked")
    if now - issued > MAX_AGE_SECONDS:
        raise SignatureError("bearer token was issued more than 25 hours ago")
    if issued - now > AHEAD_SECONDS:
        raise SignatureError("bearer token is issued in the future")
    expires, not_before = claim_time(claims, "exp"), claim_time(claims, "nbf")
    if expires is not None and now > expires:
        raise SignatureError("bearer token has expired")
    if not_before is not None and now < not_before:
        raise SignatureError("bearer token is not valid yet")
    payload_hash = claims.get("payload_hash")
    if not isinstance(payload_hash, str) or not payload_hash:
        raise SignatureError("bearer token has no payload_hash: it binds no body")
    if not constant_time_equal(hashlib.sha256(body).hexdigest(), payload_hash.lower()):
        raise SignatureError("bearer token payload_hash does not match the body")


def claim_time(claims: Mapping[str, Any], name: str) -> float | None:
    """A time claim as a finite number (JSON in a JWT may carry NaN, which compares false with
    everything and so would never expire), None when absent."""
    if name not in claims:
        return None
    value = claims[name]
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer of hundreds of digits
        number = math.nan
    if not math.isfinite(number):
        raise SignatureError(f"bearer token claim {name} is not a time")
    return number
