"""Amazon SNS message signatures: the string to sign, the signing certificate and its cache.

Docs: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
The signature covers some envelope fields, in a fixed order, each written `Key\\nValue\\n`:
SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, base64 in `Signature`. The public key
is in the X.509 certificate at `SigningCertURL`, which we fetch only from an SNS host over
HTTPS (settings.DLR_SNS_CERT_HOST_PATTERN / DLR_SNS_CERT_URL_SCHEMES): the certificate is
authentic because TLS proved the host is Amazon's, as in AWS's own SDK validators.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from dlrconsole.lib import outbound
from receipts.providers.base import SignatureError, TemporaryError

# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html (step 5)
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL_FIELDS = frozenset({"Subject"})
# SHA1 is weak, but version 1 is still SNS's default for a topic: refusing it refuses AWS.
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

FETCH_TIMEOUT_SECONDS = 3
MAX_CERT_BYTES = 64 * 1024
MAX_CACHED_CERTS = 32

_cache: dict[str, x509.Certificate] = {}
_cache_lock = threading.Lock()


class CertificateUnavailable(TemporaryError):
    """The signing certificate could not be fetched: our problem, not the sender's. SNS
    retries only on 5xx and timeouts (a 4xx counts as delivered), so this answers 503."""


def is_sns_url(url: str) -> bool:
    """True for an https URL on an SNS host, the only place certificates and subscription
    confirmations are fetched from. The pattern must match the whole netloc, so user info
    (`sns…@evil.example`), explicit ports and look-alike suffixes are refused."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return False  # URL parsers disagree on stripped characters; refuse rather than guess
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    pattern = settings.DLR_SNS_CERT_HOST_PATTERN
    return parts.scheme in settings.DLR_SNS_CERT_URL_SCHEMES and bool(re.fullmatch(pattern, parts.netloc.lower()))


def string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    fields = SIGNED_FIELDS.get(str(envelope.get("Type")))
    if fields is None:
        raise SignatureError("unknown SNS message Type: nothing to verify")
    parts = []
    for name in fields:
        value = envelope.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            raise SignatureError(f"{name} is missing: the SNS signature cannot be verified")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def sign(private_key: rsa.RSAPrivateKey, envelope: Mapping[str, Any]) -> str:
    """The `Signature` SNS puts on `envelope`, per its SignatureVersion (tests, simulator)."""
    algorithm = HASHES[str(envelope.get("SignatureVersion"))]
    signature = private_key.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm())
    return base64.b64encode(signature).decode()


def verify(envelope: Mapping[str, Any]) -> None:
    """Raise SignatureError unless `envelope` carries a valid SNS signature."""
    given = envelope.get("Signature")
    if not isinstance(given, str) or not given:
        raise SignatureError("missing Signature")
    algorithm = HASHES.get(str(envelope.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureError("SignatureVersion must be 1 or 2")
    signed = string_to_sign(envelope)
    try:
        signature = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("Signature is not base64") from None
    url = envelope.get("SigningCertURL")
    if not isinstance(url, str) or not is_sns_url(url):
        raise SignatureError("SigningCertURL is not an https URL on an Amazon SNS host")
    public_key = signing_certificate(url).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("the signing certificate does not hold an RSA key")
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureError("SNS Signature does not match") from None


def signing_certificate(url: str) -> x509.Certificate:
    """The certificate at `url`, fetched once per process: SNS signs with few certificates, so
    the hot path never waits on AWS after the first message. Call only with an SNS URL."""
    cached = _cache.get(url)
    if cached is not None:
        return cached
    certificate = _fetch(url)
    with _cache_lock:
        if len(_cache) >= MAX_CACHED_CERTS:
            del _cache[next(iter(_cache))]  # the oldest: a bound, not an LRU, is all we need
        _cache[url] = certificate
    return certificate


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _fetch(url: str) -> x509.Certificate:
    try:
        # Through the outbound guard: no redirects (one could lead off the SNS host we checked),
        # never an internal address, the reply bounded.
        reply = outbound.call(
            "GET", url, timeout=(FETCH_TIMEOUT_SECONDS, FETCH_TIMEOUT_SECONDS), max_bytes=MAX_CERT_BYTES
        )
    except requests.RequestException:
        raise CertificateUnavailable("signing certificate could not be fetched") from None
    if reply.status_code != 200:
        raise CertificateUnavailable(f"signing certificate answered HTTP {reply.status_code}")
    if reply.truncated:
        raise SignatureError("signing certificate is too large")
    pem = reply.content
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SignatureError("SigningCertURL does not hold a PEM certificate") from None
