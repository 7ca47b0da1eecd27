"""Microsoft Teams: a Workflows ("Post to a channel when a webhook request is received") URL or
a legacy incoming webhook. Both take a message whose attachment is an Adaptive Card."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels.base import Channel, Notice, post_json, validate_https_url

STYLES = {"critical": "attention", "warning": "warning", "info": "accent"}


class TeamsChannel(Channel):
    kind = "teams"
    label = "Microsoft Teams (workflow or incoming webhook)"
    secret_keys = ("url",)  # the URL carries its signature
    fields = (("url", "Workflow or incoming webhook URL"),)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        validate_https_url(config)

    def send(self, notice: Notice) -> int | None:
        style = "good" if notice.event == "resolved" else STYLES.get(notice.severity, "default")
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": notice.headline, "weight": "Bolder", "wrap": True, "color": style},
                {"type": "TextBlock", "text": notice.summary, "wrap": True},
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "Open in DLR Console", "url": notice.url}],
        }
        payload = {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
        return post_json(self.config["url"], payload)
