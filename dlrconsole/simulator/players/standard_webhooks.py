"""Plays a generic gateway speaking Standard Webhooks: our JSON body (docs/STANDARD_WEBHOOKS.md)
with `webhook-id` / `webhook-timestamp` / `webhook-signature`, sometimes two events in one
request (the list form). Gateways pass the network's GSM MAP error codes through
(providers.md §3.4), and a quarter of them the SMPP receipt words (DELIVRD, UNDELIV, ...).
"""

from __future__ import annotations

import json
import random

from dlrconsole.lib import standard_webhooks as signing
from dlrconsole.simulator.base import USER_AGENT, Delivery, Failure, OutgoingRequest, Player, Step, rfc3339


class StandardWebhooksPlayer(Player):
    kind = "standard-webhooks"
    delivered = "delivered"
    batches = True
    expired = Failure("expired", "", "Validity period expired")
    failures = {
        "absent_subscriber": Failure("undelivered", "27", "Absent subscriber"),
        "unknown_subscriber": Failure("undelivered", "1", "Unknown subscriber"),
        "handset_busy": Failure("undelivered", "31", "Subscriber busy for MT-SMS"),
        "memory_full": Failure("undelivered", "33", "Message waiting list full"),
        "network_error": Failure("undelivered", "34", "System failure"),
        "call_barred": Failure("rejected", "13", "Call barred", early=True),
        # MAP has no code for a content block: the gateway says so in words.
        "blocked_spam": Failure("rejected", "", "Blocked as spam by the operator", early=True),
        "opted_out": Failure("rejected", "", "Recipient opted out", early=True),
        "landline": Failure("undelivered", "11", "Teleservice not provisioned"),
    }
    SMPP_WORDS = {
        "accepted": "submitted",
        "sent": "enroute",
        "delivered": "DELIVRD",
        "undelivered": "UNDELIV",
        "rejected": "REJECTD",
    }

    def message_id(self, rng: random.Random) -> str:
        return f"gw-{rng.getrandbits(96):024x}"

    def delivery_id(self, rng: random.Random) -> str:
        return f"msg_{rng.getrandbits(128):032x}"

    def in_flight(self, rng: random.Random) -> list[Step]:
        return [Step("accepted", rng.uniform(0.1, 0.3)), Step("sent", rng.uniform(0.2, 1.0))]

    def steps(self, rng: random.Random, fate: str) -> list[Step]:
        steps = super().steps(rng, fate)
        if rng.random() < 0.25:  # this gateway passes the SMPP DLR words through
            steps = [Step(self.SMPP_WORDS.get(s.status, s.status), s.delay, s.error_code, s.description) for s in steps]
        return steps

    def request(self, delivery: Delivery) -> OutgoingRequest:
        items: list[dict[str, str]] = []
        for event in delivery.events:
            item = {
                "message_id": delivery.plan.provider_message_id,
                "status": event.provider_status,
                "timestamp": rfc3339(event.at),
            }
            if event.error_code:
                item["error_code"] = event.error_code
            if event.error_description:
                item["error_description"] = event.error_description
            items.append(item)
        data: object = items if len(items) > 1 else items[0]
        # Deterministic from the delivery: a retry re-sends the very same body under the same id.
        body = json.dumps(
            {"type": "message.status", "timestamp": rfc3339(delivery.events[0].at), "data": data}
        ).encode()
        timestamp = int(delivery.now)  # a retry is signed afresh, with the time of that attempt
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "webhook-id": delivery.delivery_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.sign(delivery.secret, delivery.delivery_id, timestamp, body),
                "User-Agent": USER_AGENT,
            },
        )


player = StandardWebhooksPlayer()
