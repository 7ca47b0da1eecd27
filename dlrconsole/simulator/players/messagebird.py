"""Plays MessageBird's SMS API: status reports as a GET whose query carries the fields, signed
with a `MessageBird-Signature-JWT` bound to the URL called (`url_hash`), valid one minute.

Reports: https://developers.messagebird.com/api/sms-messaging/#handle-a-status-report
Signature: https://developers.messagebird.com/api/#verifying-http-requests
`statusErrorCode` carries the GSM MAP error (providers.md §2.7, §3.4).
"""

from __future__ import annotations

import random
from datetime import UTC
from urllib.parse import urlencode

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, Step, uuid4
from receipts.providers import messagebird


class MessageBirdPlayer(Player):
    kind = "messagebird"
    delivered = "delivered"
    expired = Failure("expired", "", "expired")
    failures = {
        "absent_subscriber": Failure("delivery_failed", "27", "absent subscriber"),
        "unknown_subscriber": Failure("delivery_failed", "1", "unknown subscriber"),
        "handset_busy": Failure("delivery_failed", "31", "subscriber busy"),
        "memory_full": Failure("delivery_failed", "33", "message waiting list full"),
        "network_error": Failure("delivery_failed", "34", "system failure"),
        "call_barred": Failure("delivery_failed", "13", "call barred", early=True),
        # No MAP code for a carrier's content block or an opt-out: only the reason text.
        "blocked_spam": Failure("delivery_failed", "", "carrier rejected", early=True),
        "opted_out": Failure("delivery_failed", "", "recipient opted out", early=True),
        "landline": Failure("delivery_failed", "11", "teleservice not provisioned"),
    }
    REASONS = {
        "scheduled": "pending",
        "sent": "pending DLR",
        "buffered": "pending DLR",
        "delivered": "successfully delivered",
    }

    def message_id(self, rng: random.Random) -> str:
        return f"{rng.getrandbits(128):032x}"

    def in_flight(self, rng: random.Random) -> list[Step]:
        steps = [Step("sent", rng.uniform(0.3, 1.0))]
        return [*steps, Step("buffered", rng.uniform(0.5, 1.5))] if rng.random() < 0.1 else steps

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        fields = {
            "id": plan.provider_message_id,
            "reference": plan.client_reference,
            "recipient": plan.recipient.lstrip("+"),
            "status": event.provider_status,
            "statusReason": event.error_description or self.REASONS.get(event.provider_status, ""),
            "statusDatetime": event.at.astimezone(UTC).isoformat(timespec="seconds"),
        }
        if event.error_code:
            fields["statusErrorCode"] = event.error_code
        url = f"{delivery.webhook_url}?{urlencode(fields)}"
        # The JWT covers the URL MessageBird calls: the public URL behind a proxy.
        public = plan.target.public_url
        signed = f"{public.partition('?')[0]}?{urlencode(fields)}" if public else url
        token = messagebird.sign(delivery.secret, signed, b"", now=int(delivery.now), jti=uuid4_str(delivery))
        return OutgoingRequest(
            method="GET", url=url, body=b"", headers={"MessageBird-Signature-JWT": token, "User-Agent": "MessageBird"}
        )


def uuid4_str(delivery: Delivery) -> str:
    """A fresh jti per attempt: MessageBird mints one per request."""
    return uuid4(random.Random(f"{delivery.delivery_id}:{delivery.attempt}:{delivery.now}"))  # noqa: S311


player = MessageBirdPlayer()
