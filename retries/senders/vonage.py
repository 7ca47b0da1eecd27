"""Vonage (Nexmo) SMS API send.

Docs: https://developer.vonage.com/en/api/sms and https://developer.vonage.com/api-errors/sms
POST {base_url}/sms/json with api_key, api_secret, from, to, text, callback, client-ref. Vonage
answers 200 even for a refused message: each entry of `messages[]` has its own `status` code.
Its `error-text` is never kept: the status code and our reading of it say the same.
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
)

DEFAULT_BASE_URL = "https://rest.nexmo.com"

# Status code → (permanent?, what it means), from the SMS API error table (api-errors/sms): the
# meaning shown is ours, never Vonage's `error-text`. Unlisted codes are treated as permanent: an
# unknown refusal repeated blindly would only burn attempts.
STATUSES: dict[str, tuple[bool, str]] = {
    "1": (False, "throttled"),  # faster than the account limit; slow down and retry
    "2": (True, "missing parameters"),
    "3": (True, "invalid parameters"),
    "4": (True, "invalid credentials"),
    "5": (False, "internal error"),  # in Vonage's platform
    "6": (True, "invalid message"),  # e.g. unrecognised number prefix
    "7": (True, "number barred"),
    "8": (True, "partner account barred"),  # suspended
    "9": (True, "partner quota violation"),  # no credit: needs a top-up by a human, not a retry loop
    "10": (False, "too many existing binds"),  # back off and retry (the docs' resolution)
    "11": (True, "account not enabled for HTTP"),
    "12": (True, "message too long"),
    "14": (True, "invalid signature"),
    "15": (True, "invalid sender address"),  # unregistered sender ID
    "22": (True, "invalid network code"),
    "23": (True, "invalid callback URL"),
    "29": (True, "non-whitelisted destination"),  # trial account
    "32": (True, "signature and API secret disallowed"),
    "33": (True, "number de-activated"),
}


class VonageSender(Sender):
    kind = "vonage"
    label = "Vonage SMS API"
    secret_keys: ClassVar[tuple[str, ...]] = ("api_secret",)
    setting_fields: ClassVar[tuple[str, ...]] = ("api_key", "base_url", "from", "connect_timeout", "read_timeout")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require(config, "api_key", "api_secret")
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
        base_url = str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        form = {
            "api_key": self.config["api_key"],
            "api_secret": self.config["api_secret"],
            "from": sender_id or str(self.config.get("from") or ""),
            "to": to.removeprefix("+"),  # Vonage wants E.164 without the leading +
            "text": body,
            # No idempotency parameter exists; client-ref ties the receipt back to our attempt.
            "client-ref": idempotency_key[:100],
        }
        if status_callback_url:
            form["callback"] = status_callback_url
        reply = http_call("POST", f"{base_url}/sms/json", secrets=self.secrets, timeout=self.timeout, data=form)
        raise_for_http(reply)
        return self._result(reply.json, reply.duration)

    def _result(self, payload: Any, duration: float) -> SendResult:
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not messages or not isinstance(messages[0], dict):
            raise SendError("Vonage answered without a messages list", permanent=False)
        first = messages[0]
        status = str(first.get("status", ""))
        if status != "0":
            permanent, meaning = STATUSES.get(status, (True, "unknown status"))
            raise SendError(f"Vonage status {scrub(status, self.secrets)} ({meaning})", permanent=permanent)
        message_id = str(first.get("message-id") or "")
        if not message_id:
            raise SendError("Vonage status 0 without a message-id", permanent=False)
        return SendResult(message_id, f"status 0: message-id {scrub(message_id, self.secrets)}", duration)
