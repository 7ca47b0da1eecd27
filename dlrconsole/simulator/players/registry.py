"""The player registry, built from the player classes and keyed by the provider kinds of
receipts/providers/registry.py. A provider without a player cannot be simulated;
`manage.py simulate` says so."""

from __future__ import annotations

from dlrconsole.simulator.base import Player
from dlrconsole.simulator.players import (
    aws_sns,
    infobip,
    kannel,
    messagebird,
    plivo,
    sinch,
    smpp_text,
    standard_webhooks,
    telnyx,
    twilio,
    vonage,
)

PLAYERS: dict[str, Player] = {
    module.player.kind: module.player
    for module in (
        twilio, vonage, infobip, sinch, plivo, telnyx, messagebird, aws_sns, smpp_text, kannel, standard_webhooks,
    )
}  # fmt: skip


def player_kinds() -> list[str]:
    return list(PLAYERS)


def get_player(kind: str) -> Player:
    try:
        return PLAYERS[kind]
    except KeyError:
        raise LookupError(f"no simulator player for provider {kind!r}") from None
