"""A generic HTTP JSON send API, for gateways and in-house senders.

POST {url} with {"to", "body", "sender_id", "options", "status_callback_url"}, an optional
`Authorization: Bearer <token>` and an `Idempotency-Key` header (the IETF draft's name) so a
gateway that honours it deduplicates our retries. The reply's message id is read from
`id_field` (default "id"); nothing else of the reply is kept (no error field is documented).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from retries.senders.base import (
    Sender,
    SendError,
    SendResult,
    http_call,
    raise_for_http,
    require,
    require_http_url,
    scrub,
    summary,
)


class GenericHttpSender(Sender):
    kind = "generic-http"
    deduplicates = True  # by the Idempotency-Key header
    label = "Generic HTTP JSON API"
    secret_keys: ClassVar[tuple[str, ...]] = ("token",)
    setting_fields: ClassVar[tuple[str, ...]] = ("url", "id_field", "connect_timeout", "read_timeout")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require(config, "url")
        require_http_url(config, "url")

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
        headers = {"Idempotency-Key": idempotency_key, "Accept": "application/json"}
        if self.config.get("token"):
            headers["Authorization"] = f"Bearer {self.config['token']}"
        payload = {
            "to": to,
            "body": body,
            "sender_id": sender_id,
            "options": dict(options),
            "status_callback_url": status_callback_url,
        }
        reply = http_call(
            "POST", str(self.config["url"]), secrets=self.secrets, timeout=self.timeout, json=payload, headers=headers
        )
        raise_for_http(reply)
        id_field = str(self.config.get("id_field") or "id")
        message_id = reply.json.get(id_field) if isinstance(reply.json, dict) else None
        if not message_id:
            raise SendError(f"the reply has no {id_field!r} field", permanent=False)
        shown = f"{scrub(id_field, ())} {scrub(message_id, self.secrets)}"
        return SendResult(str(message_id), summary(reply.status_code, shown), reply.duration)
