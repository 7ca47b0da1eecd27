"""Generic receipts in the Standard Webhooks format, for gateways and in-house senders.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
Headers `webhook-id`, `webhook-timestamp`, `webhook-signature`; the signed content is
"{id}.{timestamp}.{body}", HMAC-SHA256 keyed with the base64-decoded secret (`whsec_` prefix
stripped). The body is ours to define, documented in docs/STANDARD_WEBHOOKS.md:

    {"type": "message.status", "timestamp": "2026-11-26T10:00:00Z",
     "data": {"message_id": "abc", "status": "delivered", "error_code": "", "timestamp": "..."}}

`data` may also be a list of such objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
    require_secrets,
)
from receipts.statuses import Status

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
EVENT_ID_MAX_LENGTH = 128  # Receipt.dedupe_key

# The generic format speaks our own vocabulary; the synonyms are what gateways commonly send.
STATUS_MAP: dict[str, Status] = {status.value: status for status in Status} | {
    "submitted": Status.ACCEPTED,
    "enroute": Status.SENT,
    "delivrd": Status.DELIVERED,
    "undeliv": Status.UNDELIVERED,
    "rejectd": Status.REJECTED,
}


def decode_secret(secret: str) -> bytes:
    """The signing key: base64 after the `whsec_` prefix, tolerating missing padding."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is base64, optionally prefixed with whsec_") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class StandardWebhooksAdapter(ProviderAdapter):
    kind = "standard-webhooks"
    label = "Standard Webhooks (generic JSON)"
    status_map = STATUS_MAP
    kept_headers = ("content-type", "user-agent", "webhook-id", "webhook-timestamp")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def validate_secret(self, secret: str) -> None:
        key = decode_secret(secret)
        if not 24 <= len(key) <= 64:
            raise ValueError("a Standard Webhooks secret decodes to 24 to 64 bytes")

    def generate_secret(self) -> str:
        return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        msg_id = request.header("webhook-id")
        raw_timestamp = request.header("webhook-timestamp")
        header = request.header("webhook-signature")
        if not (msg_id and raw_timestamp and header):
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
        try:
            timestamp = int(raw_timestamp)
        except ValueError:
            raise SignatureError("webhook-timestamp is not a unix time") from None
        # Both directions: an old timestamp is a replay, a future one a forged clock.
        if abs(self.clock() - timestamp) > TOLERANCE_SECONDS:
            raise SignatureError("webhook-timestamp is outside the 5 minute tolerance")
        given = [sig for sig in header.split(" ") if sig.startswith("v1,")]
        for secret in secrets:
            try:
                expected = sign(secret, msg_id, timestamp, request.body)
            except ValueError:
                continue  # a malformed stored secret must not hide a valid one beside it
            if any(constant_time_equal(expected, sig) for sig in given):
                return
        raise SignatureError("no webhook-signature matches")

    def parse(self, request: WebhookRequest) -> list[ReceiptEvent]:
        payload = request.json()
        if not isinstance(payload, dict):
            raise PayloadError("body must be a JSON object")
        data = payload.get("data")
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(item, dict) for item in items):
            raise PayloadError("`data` must be an object or a non-empty list of objects")
        msg_id = request.header("webhook-id")
        return [
            self._event(item, event_id_for(msg_id, i if isinstance(data, list) else None))
            for i, item in enumerate(items)
        ]

    def _event(self, item: dict[str, Any], event_id: str) -> ReceiptEvent:
        message_id = item.get("message_id")
        status = item.get("status")
        if not isinstance(message_id, str) or not message_id:
            raise PayloadError("`data.message_id` must be a non-empty string")
        if not isinstance(status, str) or not status:
            raise PayloadError("`data.status` must be a non-empty string")
        return ReceiptEvent(
            provider_message_id=message_id,
            provider_status=status,
            status=self.normalize_status(status),
            error_code=str(item.get("error_code") or ""),
            error_description=str(item.get("error_description") or "")[:255],
            provider_timestamp=parse_timestamp(item.get("timestamp")),
            event_id=event_id,
        )


def event_id_for(webhook_id: str, index: int | None) -> str:
    """The dedupe key of one event: the webhook id, plus `:<index>` for an item of a list.

    A key longer than the 128-character column is hashed: `ReceiptEvent.dedupe_key` would
    truncate it, giving `<long id>:1` and `<long id>:10` one key and dropping the second as a
    retry. The hash is as stable across retries as the id and distinct per event.
    """
    key = webhook_id if index is None else f"{webhook_id}:{index}"
    if len(key) <= EVENT_ID_MAX_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_timestamp(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PayloadError("`data.timestamp` must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError("`data.timestamp` must be an RFC 3339 string") from None
    if parsed.tzinfo is None:
        raise PayloadError("`data.timestamp` must carry a time zone")
    return parsed


adapter = StandardWebhooksAdapter()
