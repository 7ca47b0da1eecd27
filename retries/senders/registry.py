"""Sender kinds by slug; admin forms validate a config through `validate_config`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retries.senders.base import Sender, validate_timeouts
from retries.senders.email import EmailSender
from retries.senders.generic_http import GenericHttpSender
from retries.senders.generic_webhook import GenericWebhookSender
from retries.senders.infobip import InfobipSender
from retries.senders.twilio import TwilioSender
from retries.senders.vonage import VonageSender

SENDERS: dict[str, type[Sender]] = {
    cls.kind: cls
    for cls in (TwilioSender, VonageSender, InfobipSender, GenericHttpSender, EmailSender, GenericWebhookSender)
}


def sender_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in SENDERS.items()]


def validate_config(kind: str, config: Mapping[str, Any]) -> None:
    if kind not in SENDERS:
        raise ValueError(f"unknown sender kind {kind!r}; expected one of {', '.join(SENDERS)}")
    SENDERS[kind].validate_config(config)
    validate_timeouts(config)


def get_sender(kind: str, config: Mapping[str, Any]) -> Sender:
    validate_config(kind, config)
    return SENDERS[kind](config)
