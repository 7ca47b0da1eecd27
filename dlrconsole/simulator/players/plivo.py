"""Plays Plivo: form-encoded status callbacks to the message's `url`, one status per request,
signed with `X-Plivo-Signature-V3` over the URL, the sorted parameters and a fresh nonce.

Callbacks: https://www.plivo.com/docs/messaging/api/message/message-status-callbacks
Error codes (the ones the catalog knows, providers.md §3 and receipts/data/error_codes.csv):
https://www.plivo.com/docs/messaging/troubleshooting/error-codes
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from urllib.parse import urlencode

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, Step
from receipts.providers import plivo


class PlivoPlayer(Player):
    kind = "plivo"
    delivered = "delivered"
    # Plivo has no `expired` status: a message the carrier gave up on is `undelivered`.
    expired = Failure("undelivered", "20", "Network error")
    failures = {
        # Plivo's codes are coarse: every reachability problem is a "network error" (20).
        "absent_subscriber": Failure("undelivered", "20", "Network error"),
        "unknown_subscriber": Failure("undelivered", "50", "Invalid destination number"),
        "handset_busy": Failure("undelivered", "20", "Network error"),
        "memory_full": Failure("undelivered", "20", "Network error"),
        "network_error": Failure("undelivered", "20", "Network error"),
        "call_barred": Failure("undelivered", "20", "Network error"),
        # Carrier spam filters answer after `sent`; Plivo has no opt-out code of its own and
        # reports a carrier's opt-out block the same way.
        "blocked_spam": Failure("undelivered", "30", "Spam detected"),
        "opted_out": Failure("undelivered", "30", "Spam detected"),
        # Refused before any carrier: queued, then failed (support.plivo.com, "Why did my outbound
        # SMS delivery fail").
        "landline": Failure("failed", "50", "Invalid destination number", early=True),
    }

    def message_id(self, rng: random.Random) -> str:
        # Plivo's MessageUUIDs are time-based UUIDs (version 1).
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-11{h[14:16]}-{h[16:20]}-{h[20:]}"

    def delivery_id(self, rng: random.Random) -> str:
        return str(rng.randrange(10**19, 10**20))  # the V3 nonce: a long random number

    def in_flight(self, rng: random.Random) -> list[Step]:
        return [Step("queued", rng.uniform(0.1, 0.3)), Step("sent", rng.uniform(0.3, 1.0))]

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        form = {
            "MessageUUID": plan.provider_message_id,
            "ParentMessageUUID": plan.provider_message_id,
            "From": "+14155550100",
            "To": plan.recipient,
            "Type": "sms",
            "Units": "1",
            "Status": event.provider_status,
            # Plivo sends "000" with every status that is not a failure.
            "ErrorCode": event.error_code or plivo.NO_ERROR,
            "MessageTime": _plivo_time(plan.submitted_at),
        }
        stage = {"queued": "QueuedTime", "sent": "SentTime"}.get(event.provider_status, "DeliveryReportTime")
        form[stage] = _plivo_time(event.at)
        params = {name: [value] for name, value in form.items()}
        # The nonce doubles as the delivery id: a retry repeats the same signed request.
        nonce = delivery.delivery_id
        signed_url = plan.target.public_url or delivery.webhook_url
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Plivo-Signature-V3": plivo.signature_v3(
                    delivery.secret, signed_url, nonce, method="POST", params=params
                ),
                plivo.NONCE_HEADER: nonce,
                "User-Agent": "PlivoHTTP/1.0",
            },
        )


def _plivo_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


player = PlivoPlayer()
