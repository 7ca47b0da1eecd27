"""Infobip SMS send (advanced text).

Docs: https://www.infobip.com/docs/api/channels/sms/sms-messaging/outbound-sms/send-sms-message
POST {base_url}/sms/2/text/advanced, `Authorization: App <api key>`, body
{"messages": [{"destinations": [{"to", "messageId"}], "from", "text", "notifyUrl"}]}.
The client may set `messageId`; we use the idempotency key so a retried send is recognised by
Infobip and its receipts carry our id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from retries.senders.base import (
    Sender,
    SendError,
    SendResult,
    field,
    http_call,
    raise_for_http,
    require,
    require_http_url,
    scrub,
    summary,
)

# Infobip status groups: https://www.infobip.com/docs/essentials/response-status-and-error-codes
# 1 PENDING and 3 DELIVERED mean accepted; 5 REJECTED is a refusal of this message (permanent).
ACCEPTED_GROUPS = {"PENDING", "DELIVERED"}


class InfobipSender(Sender):
    kind = "infobip"
    deduplicates = True  # by the destination's messageId
    label = "Infobip SMS API"
    secret_keys: ClassVar[tuple[str, ...]] = ("api_key",)
    setting_fields: ClassVar[tuple[str, ...]] = ("base_url", "from", "connect_timeout", "read_timeout")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        # Infobip gives every account its own base URL (xxxxx.api.infobip.com): no default.
        require(config, "base_url", "api_key")
        require_http_url(config, "base_url")

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
        message: dict[str, Any] = {
            "destinations": [{"to": to.removeprefix("+"), "messageId": idempotency_key}],
            "from": sender_id or str(self.config.get("from") or ""),
            "text": body,
        }
        if status_callback_url:
            message["notifyUrl"] = status_callback_url
        reply = http_call(
            "POST",
            f"{str(self.config['base_url']).rstrip('/')}/sms/2/text/advanced",
            secrets=self.secrets,
            timeout=self.timeout,
            json={"messages": [message]},
            headers={"Authorization": f"App {self.config['api_key']}", "Accept": "application/json"},
        )
        # Errors name themselves in requestError.serviceException.messageId (e.g. UNAUTHORIZED).
        raise_for_http(reply, scrub(field(reply.json, "requestError", "serviceException", "messageId"), self.secrets))
        messages = reply.json.get("messages") if isinstance(reply.json, dict) else None
        if not messages or not isinstance(messages[0], dict):
            raise SendError("Infobip answered without a messages list", permanent=False)
        first = messages[0]
        group = scrub(field(first, "status", "groupName"), self.secrets)
        if group not in ACCEPTED_GROUPS:
            name = scrub(field(first, "status", "name"), self.secrets)
            raise SendError(f"Infobip status {group} {name}".strip(), permanent=True)
        message_id = str(first.get("messageId") or idempotency_key)
        shown = f"{group} {scrub(message_id, self.secrets)}"
        return SendResult(message_id, summary(reply.status_code, shown), reply.duration)
