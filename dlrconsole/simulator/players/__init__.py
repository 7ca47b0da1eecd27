"""The player registry: provider kind → the module that plays it (each defines `player`).

A provider without a player here cannot be simulated; `manage.py simulate` says so.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlrconsole.simulator.base import Player

PLAYER_MODULES: dict[str, str] = {
    "twilio": "twilio",
    "vonage": "vonage",
    "infobip": "infobip",
    "sinch": "sinch",
    "plivo": "plivo",
    "telnyx": "telnyx",
    "messagebird": "messagebird",
    "aws-sns": "aws_sns",
    "smpp-text": "smpp_text",
    "kannel": "kannel",
    "standard-webhooks": "standard_webhooks",
}


def player_kinds() -> list[str]:
    return list(PLAYER_MODULES)


@cache
def get_player(kind: str) -> Player:
    try:
        module_name = PLAYER_MODULES[kind]
    except KeyError:
        raise LookupError(f"no simulator player for provider {kind!r}") from None
    player: Player = import_module(f"dlrconsole.simulator.players.{module_name}").player
    return player
