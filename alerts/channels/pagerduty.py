"""PagerDuty Events API v2: `trigger` when an alert fires, `resolve` when it resolves, the same
dedup_key for both so PagerDuty closes the incident it opened."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alerts.channels.base import Channel, Notice, post_json, validate_https_url

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


class PagerDutyChannel(Channel):
    kind = "pagerduty"
    label = "PagerDuty (Events API v2)"
    secret_keys = ("routing_key",)
    fields = (
        ("routing_key", "Integration (routing) key"),
        ("url", "Events API URL (EU accounts: events.eu.pagerduty.com)"),
    )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        key = config.get("routing_key")
        if not isinstance(key, str) or not ROUTING_KEY.match(key):
            raise ValueError("routing_key: the integration key, 32 letters and digits")
        if config.get("url"):
            validate_https_url(config)

    def send(self, notice: Notice) -> int | None:
        action = "resolve" if notice.event == "resolved" else "trigger"
        payload: dict[str, Any] = {
            "routing_key": self.config["routing_key"],
            "event_action": action,
            "dedup_key": notice.dedup_key,
        }
        if action == "trigger":
            payload["payload"] = {
                "summary": f"{notice.title}: {notice.summary}"[:1024],
                "source": "dlr-console",
                "severity": notice.severity,  # critical | warning | info: PagerDuty's words too
                "timestamp": notice.at,
            }
            payload["links"] = [{"href": notice.url, "text": "Open in DLR Console"}]
        return post_json(self.config.get("url") or EVENTS_URL, payload)
