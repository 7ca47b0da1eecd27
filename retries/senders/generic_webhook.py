"""Fallback channel: a JSON POST signed with Standard Webhooks headers.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
The idempotency key is the `webhook-id`, which the spec tells receivers to deduplicate on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from dlrconsole.lib.standard_webhooks import signed_headers, validate_secret
from retries.senders.base import Sender, SendResult, http_call, raise_for_http, require, require_http_url, summary

EVENT_TYPE = "message.fallback"


class GenericWebhookSender(Sender):
    kind = "generic-webhook"
    deduplicates = True  # by the webhook-id header, Standard Webhooks' idempotency key
    label = "Signed webhook (Standard Webhooks)"
    secret_keys: ClassVar[tuple[str, ...]] = ("secret",)
    setting_fields: ClassVar[tuple[str, ...]] = ("url", "connect_timeout", "read_timeout")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require(config, "url", "secret")
        require_http_url(config, "url")
        validate_secret(str(config["secret"]), prefixed=True)

    def send(
        self,
        *,
        to: str,
        body: str,
        sender_id: str,
        options: Mapping[str, Any],
        idempotency_key: str,
        status_callback_url: str = "",
    ) -> SendResult:
        timestamp = int(time.time())
        payload = {
            "type": EVENT_TYPE,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
            "data": {"to": to, "body": body, "sender_id": sender_id, "options": dict(options)},
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        headers = signed_headers(
            secret=str(self.config["secret"]), msg_id=idempotency_key, timestamp=timestamp, body=raw
        )
        reply = http_call(
            "POST", str(self.config["url"]), secrets=self.secrets, timeout=self.timeout, data=raw, headers=headers
        )
        raise_for_http(reply)
        # The receiver has no id of its own to give back: the webhook-id is the delivery's id.
        return SendResult(idempotency_key, summary(reply.status_code), reply.duration)
