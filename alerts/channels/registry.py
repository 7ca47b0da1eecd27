"""Alert channels by kind, built from their classes; model choices come from here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels.base import Channel
from alerts.channels.email import EmailChannel

CHANNELS: dict[str, type[Channel]] = {cls.kind: cls for cls in (EmailChannel,)}


def channel_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in CHANNELS.items()]


def get_channel(kind: str, config: Mapping[str, Any]) -> Channel:
    if kind not in CHANNELS:
        raise ValueError(f"unknown channel kind {kind!r}; expected one of {', '.join(CHANNELS)}")
    return CHANNELS[kind](config)
