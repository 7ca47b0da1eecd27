"""Plivo message status callbacks (the `url` given when sending a message).

Docs: https://www.plivo.com/docs/messaging/api/message/message-status-callbacks
Signature V3: https://www.plivo.com/docs/voice/xml/request/validation ("url (message callback)"
is among the signed URLs); algorithm as in plivo-python `plivo/utils/signature_v3.py`.

V3 signs a nonce but no timestamp, so a captured callback can be replayed. That is harmless
here without a nonce store: a replay carries the same message id, status, error code and
stage time, gets the same dedupe key and is stored once (receipts are idempotent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from receipts.providers.base import (
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    SignatureError,
    WebhookRequest,
    clean_network,
    clean_price,
    constant_time_equal,
    require_secrets,
    url_as_called,
)
from receipts.statuses import Status

# X-Plivo-Signature-V3 is made with the (sub)account's token, -Ma-V3 with the main account's:
# whichever token the connection holds, one of the two matches.
SIGNATURE_HEADERS = ("x-plivo-signature-v3", "x-plivo-signature-ma-v3")
NONCE_HEADER = "x-plivo-signature-v3-nonce"
NO_ERROR = "000"  # Plivo's error code for "no error", sent with every non-failed status
# Plivo charges in US dollars (its pricing and balance pages); the callback names no currency.
CURRENCY = "USD"
# The callback's stage times, latest first: the first one present is when this status happened.
STAGE_TIMES = ("DeliveryReportTime", "SentTime", "QueuedTime", "MessageTime")


def _sorted_query(params: Mapping[str, Sequence[str]]) -> str:
    return "&".join(f"{key}={value}" for key in sorted(params) for value in sorted(params[key]))


def _sorted_params(params: Mapping[str, Sequence[str]]) -> str:
    return "".join(f"{key}{value}" for key in sorted(params) for value in sorted(params[key]))


def signed_base_url(url: str, method: str, params: Mapping[str, Sequence[str]]) -> str:
    """The string V3 signs, less the nonce: scheme://host/path, then the sorted query.

    GET: the URL's query and the parameters, merged and sorted as `k=v&…`. POST: the URL's
    sorted query, a "." when both are present, then the sorted parameters as `kv…` without
    separators (so a POST to a URL without query gives `base?kv…`).
    """
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = parse_qs(parts.query, keep_blank_values=True)
    if method.upper() == "GET":
        # The URL's own query wins over a parameter of the same name, as in plivo-python.
        merged = _sorted_query({**params, **query})
        return f"{base}?{merged}" if merged else base
    url_query = _sorted_query(query)
    if not params:
        return f"{base}?{url_query}" if url_query else base
    separator = "." if url_query else ""
    return f"{base}?{url_query}{separator}{_sorted_params(params)}"


def signature_v3(auth_token: str, url: str, nonce: str, *, method: str, params: Mapping[str, Sequence[str]]) -> str:
    """X-Plivo-Signature-V3: base64(HMAC-SHA256(auth token, signed base URL + "." + nonce))."""
    message = f"{signed_base_url(url, method, params)}.{nonce}"
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()).decode()


# https://www.plivo.com/docs/messaging/api/message/message-status-callbacks (Status values);
# `rejected` is listed in the older callback docs and in Plivo's "what happens to my SMS" guide.
STATUS_MAP: dict[str, Status] = {
    "queued": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    # WhatsApp read receipts imply delivery.
    "read": Status.DELIVERED,
    # A carrier's negative receipt; RapidPro's courier maps it to `sent`, which hides it.
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "rejected": Status.REJECTED,
}


class PlivoAdapter(ProviderAdapter):
    kind = "plivo"
    label = "Plivo"
    status_map = STATUS_MAP

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        nonce = request.header(NONCE_HEADER)
        # Either header may hold a comma-separated list (several active tokens): match any.
        given = [sig.strip() for name in SIGNATURE_HEADERS for sig in request.header(name).split(",") if sig.strip()]
        if not (nonce and given):
            raise SignatureError("missing X-Plivo-Signature-V3 or X-Plivo-Signature-V3-Nonce header")
        method = request.method.upper()
        if method != "POST" and request.body:
            # V3 signs a GET's URL and query only: a body beside them is nobody's word.
            raise SignatureError("a GET callback is signed over its URL only: its body is not signed")
        # GET callbacks carry the parameters in the URL's query, which the URL already brings.
        params = request.form() if method == "POST" else {}
        url = url_as_called(request, public_url)
        for token in secrets:
            expected = signature_v3(token, url, nonce, method=method, params=params)
            if any(constant_time_equal(expected, sig) for sig in given):
                return
        raise SignatureError("X-Plivo-Signature-V3 does not match")

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        source = request.form() if request.method.upper() == "POST" else request.query()
        fields = {name: values[0] for name, values in source.items() if values}
        message_id = fields.get("MessageUUID", "")
        provider_status = fields.get("Status", "")
        if not message_id:
            raise PayloadError("MessageUUID is missing")
        if not provider_status:
            raise PayloadError("Status is missing")
        error_code = fields.get("ErrorCode", "")
        # MessageUUID, never ParentMessageUUID: Plivo documents the latter as "same as the
        # MessageUUID, reserved for future use, and should be ignored for now", and gives a long
        # message one MessageUUID whose `Units` count its parts (the send API returns that id).
        # Keying on the parent would gain nothing today and would silently re-key messages if
        # Plivo ever gave it another meaning.
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=provider_status,
                status=self.normalize_status(provider_status),
                error_code="" if error_code == NO_ERROR else error_code,
                provider_timestamp=stage_time(fields),
                network=network(fields),
                # TotalAmount is the message's charge (TotalRate, per unit, times Units).
                price=clean_price(fields.get("TotalAmount")),
                currency=CURRENCY,
            )
        ]


def network(fields: Mapping[str, str]) -> str:
    """MCC and MNC of the recipient's network as one code ("208" + "01" = "20801"), "" unless
    both are digits."""
    mcc, mnc = fields.get("MCC", "").strip(), fields.get("MNC", "").strip()
    if not (mcc.isascii() and mcc.isdigit() and mnc.isascii() and mnc.isdigit()):
        return ""
    return clean_network(mcc + mnc)


def stage_time(fields: Mapping[str, str]) -> datetime | None:
    """The latest stage time present, "YYYY-mm-dd HH:MM:SS.SSSSSS".

    The docs give no zone; a naive value is read as UTC [U: not confirmed by the docs]. An
    unreadable value is skipped (the raw body keeps it) rather than refusing the receipt.
    """
    for name in STAGE_TIMES:
        try:
            parsed = datetime.fromisoformat(fields.get(name, "").strip())
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


adapter = PlivoAdapter()
