"""Plays an SMPP-to-HTTP gateway relaying the SMSC's receipt text as the body of a POST
(`text/plain`), authenticated with the connection's token in an `X-DLR-Token` header.

Receipt format (SMPP 3.4 Appendix B, providers.md §2.9):
https://developer.8x8.com/connect/docs/smpp-delivery-receipts
Errors are GSM MAP codes in `err:` (providers.md §3.4), three digits as SMSCs write them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from dlrconsole.simulator.base import Delivery, Event, Failure, OutgoingRequest, Player, Step

# What each simulated fate looks like in a receipt: stat and MAP error.
MAP_FAILURES = {
    "absent_subscriber": Failure("UNDELIV", "027"),
    "unknown_subscriber": Failure("UNDELIV", "001"),
    "handset_busy": Failure("UNDELIV", "031"),
    "memory_full": Failure("UNDELIV", "033"),
    "network_error": Failure("UNDELIV", "034"),
    "call_barred": Failure("REJECTD", "013", early=True),
    # MAP has no content or opt-out code; SMSCs answer "rejected" with err:000 or a vendor code.
    "blocked_spam": Failure("REJECTD", "", early=True),
    "opted_out": Failure("REJECTD", "", early=True),
    "landline": Failure("UNDELIV", "011"),
}


class SmppTextPlayer(Player):
    kind = "smpp-text"
    delivered = "DELIVRD"
    expired = Failure("EXPIRED", "")
    failures = MAP_FAILURES

    def message_id(self, rng: random.Random) -> str:
        # SMSC ids: ten decimal digits in the specification, hex in many SMSCs.
        return str(rng.randrange(10**9, 10**10)) if rng.random() < 0.5 else f"{rng.getrandbits(40):010X}"

    def in_flight(self, rng: random.Random) -> list[Step]:
        # Most SMSCs send only the final receipt; some report ENROUTE or ACCEPTD first.
        return [Step(rng.choice(["ENROUTE", "ACCEPTD"]), rng.uniform(0.3, 1.0))] if rng.random() < 0.3 else []

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=receipt_text(delivery.plan.provider_message_id, delivery.plan.submitted_at, event).encode(),
            headers={"Content-Type": "text/plain", "X-DLR-Token": delivery.secret},
        )


def receipt_text(message_id: str, submitted_at: datetime, event: Event) -> str:
    delivered = event.provider_status == "DELIVRD"
    err = event.error_code or "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{'001' if delivered else '000'} submit date:{_smpp_date(submitted_at)} "
        f"done date:{_smpp_date(event.at)} stat:{event.provider_status} err:{err} text:Your code is 4829"
    )


def _smpp_date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%y%m%d%H%M")


player = SmppTextPlayer()
