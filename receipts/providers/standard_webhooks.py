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

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dlrconsole.lib import standard_webhooks as signing
from dlrconsole.lib.standard_webhooks import TOLERANCE_SECONDS
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

EVENT_ID_MAX_LENGTH = 128  # Receipt.dedupe_key

# The generic format speaks our own vocabulary; the synonyms are what gateways commonly send.
STATUS_MAP: dict[str, Status] = {status.value: status for status in Status} | {
    "submitted": Status.ACCEPTED,
    "enroute": Status.SENT,
    "delivrd": Status.DELIVERED,
    "undeliv": Status.UNDELIVERED,
    "rejectd": Status.REJECTED,
}


class StandardWebhooksAdapter(ProviderAdapter):
    kind = "standard-webhooks"
    label = "Standard Webhooks (generic JSON)"
    # Generic gateways mostly relay the network's MAP codes from SMPP receipts; a gateway with
    # its own numbering is mapped with admin overrides (docs/STANDARD_WEBHOOKS.md).
    shared_code_tables = ("gsm",)
    status_map = STATUS_MAP
    kept_headers = ("content-type", "user-agent", "webhook-id", "webhook-timestamp")
    # `data` may list receipts (docs/STANDARD_WEBHOOKS.md): as many as Infobip's largest batch.
    max_events = 1000

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def validate_secret(self, secret: str) -> None:
        signing.validate_secret(secret)

    def generate_secret(self) -> str:
        return signing.generate_secret()

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
        timestamp = unix_seconds(raw_timestamp)
        if timestamp is None:
            raise SignatureError("webhook-timestamp is not a unix time")
        # Both directions: an old timestamp is a replay, a future one a forged clock.
        if abs(self.clock() - timestamp) > TOLERANCE_SECONDS:
            raise SignatureError("webhook-timestamp is outside the 5 minute tolerance")
        for secret in secrets:
            if signing.signature_matches(
                secret=secret, msg_id=msg_id, timestamp=timestamp, body=request.body, header=header
            ):
                return
        raise SignatureError("no webhook-signature matches")

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        payload, parts = request.json_parts("data")
        if not isinstance(payload, dict):
            raise PayloadError("body must be a JSON object")
        data = payload.get("data")
        msg_id = request.header("webhook-id")
        if isinstance(data, dict):
            return [self._event(data, event_id_for(msg_id, None))]
        if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
            raise PayloadError("`data` must be an object or a non-empty list of objects")
        if len(data) > self.max_events:
            raise PayloadError(f"`data` lists more than {self.max_events} receipts")
        # Each item of a list keeps its own part of the body, not the whole body again.
        assert parts is not None  # loads_json_parts gives the parts of a list
        items = enumerate(zip(data, parts, strict=True))
        return [self._event(item, event_id_for(msg_id, i), raw=raw) for i, (item, raw) in items]

    def _event(self, item: dict[str, Any], event_id: str, *, raw: str = "") -> ReceiptEvent:
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
            raw=raw,
            # Optional and informational (docs/STANDARD_WEBHOOKS.md): an unusable value is
            # dropped, never a reason to refuse the receipt.
            network=clean_network(item.get("network")) if isinstance(item.get("network"), str) else "",
            price=clean_price(item.get("price")) if isinstance(item.get("price"), str | int | float) else None,
            currency=clean_currency(item.get("currency")) if isinstance(item.get("currency"), str) else "",
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
    """RFC 3339 with a zone, or refused: the format is ours. Readable but implausible (year 1,
    the far future) it is dropped by ReceiptEvent, as every provider's is."""
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
