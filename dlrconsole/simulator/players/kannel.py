"""Plays Kannel: smsbox fetches the per-message `dlr-url` with GET, Kannel's escape codes filled
in (`type`=%d, `answer`=%A the SMSC's receipt text, `smsc`=%i, `smsc_id`=%F, `ts`=%T), the
connection's token in the path. The product chose the message id (a UUID) and put it in the URL.

dlr-url and escape codes: https://www.kannel.org/download/kannel-userguide-snapshot/userguide.html
Types: 1 delivered, 2 non-delivered, 4 queued on SMSC, 8 delivered to SMSC, 16 non-delivered to SMSC.
"""

from __future__ import annotations

import random
from urllib.parse import urlencode

from dlrconsole.simulator.base import Delivery, Event, Failure, OutgoingRequest, Player, Step, token_url, uuid4
from dlrconsole.simulator.players.smpp_text import MAP_FAILURES, receipt_text

# Kannel's provider status is "<type>/<stat>" when the answer is an SMPP receipt.
TYPE_FOR_STAT = {"DELIVRD": "1", "UNDELIV": "2", "REJECTD": "2", "EXPIRED": "2"}


class KannelPlayer(Player):
    kind = "kannel"
    delivered = "1/DELIVRD"
    expired = Failure("2/EXPIRED", "")
    failures = {
        reason: Failure(f"{TYPE_FOR_STAT[f.status]}/{f.status}", f.code, f.description, f.early)
        for reason, f in MAP_FAILURES.items()
    }

    def message_id(self, rng: random.Random) -> str:
        return uuid4(rng)

    def in_flight(self, rng: random.Random) -> list[Step]:
        # Type 8, "delivered to SMSC", when the dlr-mask asks for it (31 is the usual mask).
        return [Step("8", rng.uniform(0.2, 0.8))]

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        dlr_type, _, stat = event.provider_status.partition("/")
        smsc_id = f"{int(plan.provider_message_id[:8], 16):010d}"
        query = {"id": plan.provider_message_id, "type": dlr_type, "smsc": "smsc-main", "smsc_id": smsc_id}
        if stat:
            receipt = Event(stat, event.at, event.offset, event.error_code)
            query["answer"] = receipt_text(smsc_id, plan.submitted_at, receipt)
        else:
            query["answer"] = "ACK/"
        query["ts"] = str(int(event.at.timestamp()))
        return OutgoingRequest(
            method="GET",
            url=f"{token_url(delivery.webhook_url, delivery.secret)}?{urlencode(query)}",
            body=b"",
            headers={"User-Agent": "Kannel/1.4.5"},
        )


player = KannelPlayer()
