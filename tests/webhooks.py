"""Building signed webhook requests the way providers send them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from dlrconsole.lib import standard_webhooks as signing
from receipts.models import Connection
from receipts.providers import twilio


def generic_body(message_id: str, status: str, **fields: Any) -> bytes:
    return json.dumps(
        {"type": "message.status", "data": {"message_id": message_id, "status": status, **fields}}
    ).encode()


def generic_headers(
    connection: Connection,
    body: bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signing.sign(secret or connection.secrets[0], msg_id, ts, body),
    }


def twilio_form(message_id: str, status: str, **fields: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "From": "+15017122661",
        "To": "+15558675310",
        "MessageSid": message_id,
        "SmsSid": message_id,
        "MessageStatus": status,
        "SmsStatus": status,
        **fields,
    }


def twilio_signed(connection: Connection, url: str, form: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    body = urlencode(form).encode()
    params = {k: [v] for k, v in form.items()}
    return body, {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.signature(connection.secrets[0], url, params),
    }


def post_status(client: Any, message: Any, status: str, *, provider_message_id: str = "", **fields: Any) -> Any:
    """POST a signed Standard Webhooks status for `message` (or another id on its connection)
    to the console's webhook through a Django test client."""
    body = generic_body(provider_message_id or message.provider_message_id, status, **fields)
    headers = generic_headers(message.connection, body)
    return client.post(
        f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
