"""A Slack incoming webhook, or any chat that takes Slack's payload (Mattermost, Rocket.Chat,
Discord's /slack endpoint): `text` plus one attachment coloured by severity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels.base import Channel, Notice, post_json, validate_https_url

COLOURS = {"critical": "#d1242f", "warning": "#bf8700", "info": "#0969da"}
RESOLVED_COLOUR = "#1a7f37"


class SlackChannel(Channel):
    kind = "slack"
    label = "Slack-compatible incoming webhook"
    secret_keys = ("url",)  # the URL is the credential
    fields = (("url", "Incoming webhook URL"),)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        validate_https_url(config)

    def send(self, notice: Notice) -> int | None:
        colour = RESOLVED_COLOUR if notice.event == "resolved" else COLOURS.get(notice.severity, "#6e7781")
        payload = {
            "text": notice.headline,
            "attachments": [{"color": colour, "title": notice.title, "title_link": notice.url, "text": notice.summary}],
        }
        return post_json(self.config["url"], payload)
