"""Plays Twilio: x-www-form-urlencoded status callbacks, one status per request, signed with
`X-Twilio-Signature` over the URL Twilio calls (the connection's `public_url` when set).

Statuses: https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
Error codes (providers.md §3.1): https://www.twilio.com/docs/api/errors
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC
from urllib.parse import urlencode

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, Step
from receipts.providers import twilio


class TwilioPlayer(Player):
    kind = "twilio"
    delivered = "delivered"
    # Twilio reports an ended validity period as `failed` 30036, not as a status of its own.
    expired = Failure("failed", "30036", "Validity Period Expired")
    failures = {
        "absent_subscriber": Failure("undelivered", "30003", "Unreachable destination handset"),
        "unknown_subscriber": Failure("undelivered", "30005", "Unknown destination handset"),
        # Twilio folds busy and full handsets into "unreachable" or "unknown error".
        "handset_busy": Failure("undelivered", "30003", "Unreachable destination handset"),
        "memory_full": Failure("undelivered", "30008", "Unknown error"),
        "network_error": Failure("undelivered", "30017", "Carrier network congestion"),
        "call_barred": Failure("undelivered", "30004", "Message blocked"),
        "blocked_spam": Failure("undelivered", "30007", "Message filtered"),
        # A number that sent STOP is refused by Twilio itself, before any carrier.
        "opted_out": Failure("failed", "21610", "Attempt to send to unsubscribed recipient", early=True),
        "landline": Failure("undelivered", "30006", "Landline or unreachable carrier"),
    }

    def message_id(self, rng: random.Random) -> str:
        return f"SM{rng.getrandbits(128):032x}"  # a Message SID: SM + 32 hex digits

    def in_flight(self, rng: random.Random) -> list[Step]:
        # Callbacks for queued/accepted are optional; many accounts see `sent` first.
        return rng.choice(
            [
                [Step("sent", rng.uniform(0.3, 1.2))],
                [Step("accepted", rng.uniform(0.1, 0.3)), Step("sent", rng.uniform(0.2, 0.8))],
                [Step("queued", rng.uniform(0.1, 0.3)), Step("sent", rng.uniform(0.2, 0.8))],
            ]
        )

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events  # Twilio posts one status per callback
        plan = delivery.plan
        form = {
            "AccountSid": "AC" + hashlib.md5(plan.target.slug.encode(), usedforsecurity=False).hexdigest(),
            "ApiVersion": "2010-04-01",
            "From": "+15017122661",
            "To": plan.recipient,
            "MessageSid": plan.provider_message_id,
            "SmsSid": plan.provider_message_id,
            "MessageStatus": event.provider_status,
            "SmsStatus": event.provider_status,
        }
        if event.error_code:
            form["ErrorCode"] = event.error_code
        if event.provider_status in {"delivered", "undelivered"}:
            form["RawDlrDoneDate"] = event.at.astimezone(UTC).strftime("%y%m%d%H%M")
        signed_url = plan.target.public_url or delivery.webhook_url
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio.signature(delivery.secret, signed_url, {k: [v] for k, v in form.items()}),
                "I-Twilio-Idempotency-Token": delivery.delivery_id,
                "User-Agent": "TwilioProxy/1.1",
            },
        )


player = TwilioPlayer()
