"""Twilio Programmable Messaging send API.

Docs: https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json, form fields To, From (or
MessagingServiceSid), Body, StatusCallback; HTTP Basic auth with the Account SID and Auth Token.
The Messages API documents no idempotency header (`I-Twilio-Idempotency-Token` is only sent *by*
Twilio on its webhooks), so deduplication of a retried send rests on our own attempt records.
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

DEFAULT_BASE_URL = "https://api.twilio.com"


class TwilioSender(Sender):
    kind = "twilio"
    label = "Twilio Messages API"
    secret_keys: ClassVar[tuple[str, ...]] = ("auth_token",)
    setting_fields: ClassVar[tuple[str, ...]] = (
        "account_sid",
        "base_url",
        "messaging_service_sid",
        "connect_timeout",
        "read_timeout",
    )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require(config, "account_sid", "auth_token")
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
        sid = self.config["account_sid"]
        base_url = str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        form = {"To": to, "Body": body}
        # A Messaging Service picks the sender itself; an explicit From wins when both are known.
        service = options.get("messaging_service_sid") or self.config.get("messaging_service_sid")
        if sender_id:
            form["From"] = sender_id
        elif service:
            form["MessagingServiceSid"] = str(service)
        if status_callback_url:
            form["StatusCallback"] = status_callback_url
        reply = http_call(
            "POST",
            f"{base_url}/2010-04-01/Accounts/{sid}/Messages.json",
            secrets=self.secrets,
            timeout=self.timeout,
            data=form,
            auth=(sid, self.config["auth_token"]),
        )
        # Errors carry a numeric `code` (https://www.twilio.com/docs/api/errors), e.g. 21211.
        raise_for_http(reply, scrub(field(reply.json, "code"), self.secrets))
        message_sid = reply.json.get("sid") if isinstance(reply.json, dict) else None
        if not message_sid:
            raise SendError("Twilio answered 2xx without a message sid", permanent=False)
        return SendResult(str(message_sid), summary(reply.status_code, f"sid {scrub(message_sid, ())}"), reply.duration)
