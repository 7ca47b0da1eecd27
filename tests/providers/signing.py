"""Building `WebhookRequest`s for adapter tests, signed the way each provider signs them.

The helpers sign with the adapters' own `signature()` / `sign()`, which is fine for positive
cases; published test vectors are asserted as literal strings in the tests themselves.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

from dlrconsole.lib import standard_webhooks as signing
from receipts.providers import twilio
from receipts.providers.base import WebhookRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FORM = "application/x-www-form-urlencoded"


def fixture(provider: str, name: str) -> bytes:
    """A stored payload byte for byte, less a final newline an editor may have added (the
    provider sends none, and in a form body it would become part of the last value)."""
    return (FIXTURES / provider / name).read_bytes().removesuffix(b"\n")


def form_fixture(provider: str, name: str) -> dict[str, str]:
    """A stored form body or query string as its fields, blank ones kept."""
    return dict(parse_qsl(fixture(provider, name).decode(), keep_blank_values=True))


def twilio_request(
    token: str,
    url: str,
    body: bytes = b"",
    *,
    signed_url: str | None = None,
    method: str = "POST",
    content_type: str = FORM,
    signature: str | None = None,
) -> WebhookRequest:
    """A request that arrived at `url` carrying `body`, with `X-Twilio-Signature` computed as
    Twilio does over `signed_url` (default: `url`) and, for a form POST, the body's parameters.
    Pass `signature` to send a given header value instead."""
    if signature is None:
        params = parse_qs(body.decode(), keep_blank_values=True) if method == "POST" and content_type == FORM else {}
        signature = twilio.signature(token, signed_url or url, params)
    return WebhookRequest(
        method=method,
        url=url,
        headers={"content-type": content_type, "user-agent": "TwilioProxy/1.1", "x-twilio-signature": signature},
        body=body,
    )


def standard_webhooks_request(
    secret: str,
    body: bytes,
    *,
    timestamp: int,
    msg_id: str = "msg_2pWq0B7i9sDNx4Lr8uYk1Hh3aZc",
    signature: str | None = None,
) -> WebhookRequest:
    """A Standard Webhooks delivery of `body`, signed with `secret` unless `signature` is given."""
    if signature is None:
        signature = signing.sign(secret, msg_id, timestamp, body)
    return WebhookRequest(
        method="POST",
        url="https://dlr.example/hooks/gateway/",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        },
        body=body,
    )
