"""Plays Vonage's SMS API: delivery receipts as a GET query (the dashboard's default method),
signed with a `sig` parameter by the method the connection's `options["signature_method"]`
names (md5hash by default), or for `jwt` a POSTed JSON body with a signed-webhook bearer token.

Receipts: https://developer.vonage.com/messaging/sms/guides/delivery-receipts
Signing: https://developer.vonage.com/getting-started/concepts/signing-messages
err-code values (providers.md §3.2): https://developer.vonage.com/messaging/sms/guides/delivery-receipts#dlr-error-codes
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC
from urllib.parse import urlencode

import jwt

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, Step
from receipts.providers import vonage


class VonagePlayer(Player):
    kind = "vonage"
    delivered = "delivered"
    # Vonage sends err-code 0 with an expiry: the validity period ran out, no network error.
    expired = Failure("expired", "0", "")
    failures = {
        "absent_subscriber": Failure("failed", "2", "Absent Subscriber - Temporary"),
        "unknown_subscriber": Failure("failed", "3", "Absent Subscriber - Permanent"),
        "handset_busy": Failure("failed", "7", "Handset Busy"),
        "memory_full": Failure("failed", "12", "Destination Unreachable"),
        "network_error": Failure("failed", "8", "Network Error"),
        "call_barred": Failure("rejected", "4", "Call Barred by User", early=True),
        "blocked_spam": Failure("rejected", "6", "Anti-Spam Rejection", early=True),
        "opted_out": Failure("rejected", "53", "Consent Filter", early=True),
        "landline": Failure("failed", "9", "Illegal Number"),
    }

    def message_id(self, rng: random.Random) -> str:
        return f"{rng.getrandbits(64):016X}"  # e.g. 0C0000002EEBDA56

    def delivery_id(self, rng: random.Random) -> str:
        return f"{rng.getrandbits(64):016x}"  # the `nonce` of a signed receipt

    def in_flight(self, rng: random.Random) -> list[Step]:
        # `buffered`: the carrier holds it for a while (handset off), then reports the outcome.
        steps = [Step("accepted", rng.uniform(0.2, 0.8))]
        return [*steps, Step("buffered", rng.uniform(0.5, 1.5))] if rng.random() < 0.1 else steps

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        fields = {
            "msisdn": plan.recipient.lstrip("+"),
            "to": "DLRConsole",
            "network-code": "20801",
            "messageId": plan.provider_message_id,
            "price": "0.03330000",
            "status": event.provider_status,
            "scts": event.at.astimezone(UTC).strftime("%y%m%d%H%M"),
            "err-code": event.error_code or "0",
            "api-key": "a1b2c3d4",
            "message-timestamp": event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "client-ref": plan.client_reference,
        }
        method = plan.target.options.get("signature_method", vonage.DEFAULT_SIGNATURE_METHOD)
        if method == "jwt":
            return self._jwt_request(delivery, fields)
        # A retry is signed afresh: new timestamp, same nonce (it identifies the delivery).
        fields |= {"timestamp": str(int(delivery.now)), "nonce": delivery.delivery_id}
        fields["sig"] = vonage.signature(delivery.secret, fields, method)
        return OutgoingRequest(
            method="GET",
            url=f"{delivery.webhook_url}?{urlencode(fields)}",
            body=b"",
            headers={"User-Agent": "Vonage-DLR"},
        )

    def _jwt_request(self, delivery: Delivery, fields: dict[str, str]) -> OutgoingRequest:
        body = json.dumps(fields).encode()
        now = int(delivery.now)
        claims = {
            "iat": now,
            "jti": f"{delivery.delivery_id}-{delivery.attempt}",
            "api_key": fields["api-key"],
            "payload_hash": hashlib.sha256(body).hexdigest(),
        }
        token = jwt.encode(claims, delivery.secret, algorithm="HS256")
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )


player = VonagePlayer()
