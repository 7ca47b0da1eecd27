"""Plays Sinch SMS (XMS): `recipient_delivery_report_sms` JSON callbacks, one per status of the
one-recipient batch the product sent (`delivery_report: per_recipient`), authenticated with the
Basic credentials Sinch's account manager set up (the connection's secret is `user:password`).

Reports: https://developers.sinch.com/docs/sms/api-reference/sms/tag/Delivery-reports/
Codes (providers.md §3.5, sinch-sdk-java `DeliveryReceiptStatusCode`).
"""

from __future__ import annotations

import base64
import json
import random
import secrets

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, Step, rfc3339

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SinchPlayer(Player):
    kind = "sinch"
    delivered = "Delivered"
    expired = Failure("Expired", "406", "Internal expiry")
    failures = {
        # 404 "temporary delivery failure" is all Sinch says of a phone that is off, busy or full.
        "absent_subscriber": Failure("Failed", "404", "Temporary delivery failure"),
        "unknown_subscriber": Failure("Failed", "402", "Message unroutable"),
        "handset_busy": Failure("Failed", "404", "Temporary delivery failure"),
        "memory_full": Failure("Failed", "404", "Temporary delivery failure"),
        "network_error": Failure("Failed", "403", "Internal error"),
        "call_barred": Failure("Rejected", "408", "Internal reject", early=True),
        "blocked_spam": Failure("Rejected", "408", "Internal reject", early=True),
        "opted_out": Failure("Rejected", "408", "Internal reject", early=True),
        "landline": Failure("Failed", "402", "Message unroutable"),
    }
    STATE_CODES = {"Queued": 400, "Dispatched": 401, "Delivered": 0}

    def message_id(self, rng: random.Random) -> str:
        return "01" + "".join(rng.choice(CROCKFORD) for _ in range(24))  # a batch id is a ULID

    def in_flight(self, rng: random.Random) -> list[Step]:
        # Sinch may skip Dispatched when the final status comes first (its docs say so).
        steps = [Step("Queued", rng.uniform(0.1, 0.3))]
        return [*steps, Step("Dispatched", rng.uniform(0.2, 0.8))] if rng.random() < 0.8 else steps

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        code = int(event.error_code) if event.error_code else self.STATE_CODES.get(event.provider_status, 0)
        report = {
            "type": "recipient_delivery_report_sms",
            "batch_id": plan.provider_message_id,
            "recipient": plan.recipient,
            "code": code,
            "status": event.provider_status,
            "at": rfc3339(event.at),
            "client_reference": plan.client_reference,
        }
        if event.provider_status not in self.STATE_CODES or event.provider_status == "Delivered":
            # The operator's own time, to the minute, comes with its final answer only.
            report["operator_status_at"] = rfc3339(event.at.replace(second=0, microsecond=0))
        credentials = base64.b64encode(delivery.secret.encode()).decode()
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=json.dumps(report).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        )

    def forged_key(self) -> str:
        return f"sinch:{secrets.token_urlsafe(24)}"

    def demo_keys(self) -> tuple[str, str]:
        secret = self.forged_key()
        return secret, secret


player = SinchPlayer()
