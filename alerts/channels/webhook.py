"""A generic webhook signed as Standard Webhooks specify (dlrconsole.lib.standard_webhooks, the
signing the product feed uses): the receiver checks `webhook-signature` with the shared secret."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from alerts.channels.base import Channel, Notice, post_json, validate_https_url
from dlrconsole.lib import standard_webhooks


class SignedWebhookChannel(Channel):
    kind = "webhook"
    label = "Signed webhook (Standard Webhooks)"
    secret_keys = ("secret",)
    fields = (("url", "URL"), ("secret", "Signing secret (whsec_…)"))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        validate_https_url(config)
        secret = config.get("secret")
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret: the signing secret, whsec_ followed by base64")
        try:
            standard_webhooks.validate_secret(secret, prefixed=True)
        except ValueError as exc:
            raise ValueError(f"secret: {exc}") from None

    def send(self, notice: Notice) -> int | None:
        body = json.dumps(
            {
                "type": f"alert.{notice.event}",
                "timestamp": notice.at,
                "data": {**asdict(notice), "dedup_key": notice.dedup_key},
            },
            separators=(",", ":"),
        ).encode()
        headers = standard_webhooks.signed_headers(
            secret=self.config["secret"], msg_id=f"msg_{uuid.uuid4().hex}", timestamp=int(time.time()), body=body
        )
        return post_json(self.config["url"], None, headers=headers, body=body)
