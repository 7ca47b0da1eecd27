"""Twilio Programmable Messaging status callbacks.

Docs: https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
Signature: https://www.twilio.com/docs/usage/security#validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    constant_time_equal,
    require_secrets,
    url_as_called,
)
from receipts.statuses import Status

DEFAULT_PORTS = {"https": 443, "http": 80}


def signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 over the URL then each sorted name + value, base64.

    Repeated parameters contribute each distinct value once, in sorted order, as Twilio's
    own validators do.
    """
    parts = [url]
    for name in sorted(params):
        for value in sorted(set(params[name])):
            parts.append(name + value)
    digest = hmac.new(auth_token.encode(), "".join(parts).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """Twilio may sign the URL with or without the default port; accept both spellings.

    The host is kept as written: Twilio's validators edit the netloc text and do not lower-case
    it. A URL whose port cannot be read (a Host header `example.com:99999`) gets no variants, so
    it fails verification with a SignatureError instead of raising ValueError.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return [url]
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = hostport[: hostport.index("]") + 1] if hostport.startswith("[") else hostport.partition(":")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}")) if port else url
    without_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}"))
    return [url] + [u for u in (with_port, without_port) if u != url]


# https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
STATUS_MAP: dict[str, Status] = {
    "queued": Status.ACCEPTED,
    "accepted": Status.ACCEPTED,
    "scheduled": Status.ACCEPTED,
    "sending": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    # `read` is reported by channels with read receipts (WhatsApp, RCS): it implies delivery.
    "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
    # `partially_delivered` is not mapped: some segments arrived, others did not, and Twilio
    # does not say which; it is kept as `unknown` with the raw status on the timeline.
}


class TwilioAdapter(ProviderAdapter):
    kind = "twilio"
    label = "Twilio"
    status_map = STATUS_MAP
    kept_headers = ("content-type", "user-agent", "i-twilio-idempotency-token", "x-home-region")

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        given = request.header("x-twilio-signature")
        if not given:
            raise SignatureError("missing X-Twilio-Signature header")
        if request.method != "POST" and request.body:
            # Twilio signs a GET callback's URL alone: a body beside it is nobody's word.
            raise SignatureError("a GET callback is signed over its URL only: its body is not signed")
        url = url_as_called(request, public_url)
        query = request.query()
        if "bodySHA256" in query:
            # JSON bodies: the URL carries the body's hash and no parameters are signed.
            body_hash = hashlib.sha256(request.body).hexdigest()
            if not constant_time_equal(body_hash, query["bodySHA256"][0]):
                raise SignatureError("bodySHA256 does not match the body")
            params: dict[str, list[str]] = {}
        else:
            params = request.form() if request.method == "POST" else {}
        for token in secrets:
            for candidate in url_variants(url):
                if constant_time_equal(signature(token, candidate, params), given):
                    return
        raise SignatureError("X-Twilio-Signature does not match")

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        fields = self._fields(request)
        message_id = fields.get("MessageSid") or fields.get("SmsSid") or ""
        provider_status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
        if not message_id:
            raise PayloadError("MessageSid is missing")
        if not provider_status:
            raise PayloadError("MessageStatus is missing")
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=self.normalize_status(provider_status),
                error_code=fields.get("ErrorCode", ""),
                error_description=fields.get("ErrorMessage", "")[:255],
                provider_timestamp=parse_dlr_done_date(fields.get("RawDlrDoneDate", "")),
            )
        ]

    def _fields(self, request: WebhookRequest) -> dict[str, str]:
        """The fields from exactly what `verify` checked: a JSON body only when the URL commits
        to its hash (bodySHA256), a POST's form, else the URL's query. The Content-Type header
        is not signed, so it chooses nothing."""
        if "bodySHA256" in request.query():
            data = request.json()
            if not isinstance(data, dict):
                raise PayloadError("JSON body must be an object")
            return {str(k): "" if v is None else str(v) for k, v in data.items()}
        source = request.form() if request.method == "POST" else request.query()
        return {name: values[0] for name, values in source.items() if values}


def parse_dlr_done_date(value: str) -> datetime | None:
    """RawDlrDoneDate is the carrier's YYMMDDhhmm passed through without a zone; read as UTC.

    A malformed value is dropped (the raw body keeps it) rather than refusing the receipt.
    """
    if len(value) != 10 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


adapter = TwilioAdapter()
