"""Alert channels by kind, built from their classes; model choices come from here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels.base import Channel
from alerts.channels.email import EmailChannel
from alerts.channels.pagerduty import PagerDutyChannel
from alerts.channels.slack import SlackChannel
from alerts.channels.teams import TeamsChannel
from alerts.channels.webhook import SignedWebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    cls.kind: cls for cls in (EmailChannel, SlackChannel, TeamsChannel, SignedWebhookChannel, PagerDutyChannel)
}


def channel_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in CHANNELS.items()]


def channel_class(kind: str) -> type[Channel]:
    if kind not in CHANNELS:
        raise ValueError(f"unknown channel kind {kind!r}; expected one of {', '.join(CHANNELS)}")
    return CHANNELS[kind]


def channel_secret_keys(kind: str) -> tuple[str, ...]:
    return CHANNELS[kind].secret_keys if kind in CHANNELS else ()


def validate_channel_config(kind: str, config: object) -> None:
    if not isinstance(config, Mapping):
        raise ValueError("the configuration is a set of named values")
    channel_class(kind).validate_config(config)


def get_channel(kind: str, config: Mapping[str, Any]) -> Channel:
    return channel_class(kind)(config)
