"""Plays Telnyx: API v2 JSON webhooks `message.sent` then `message.finalized`, each with its
own event id (`data.id`), signed with Ed25519 over "{telnyx-timestamp}|{body}".

Webhooks: https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks
Error codes (providers.md §3.6): https://developers.telnyx.com/docs/messaging/messages/error-codes/index

The connection stores Telnyx's public key; only the private key can sign, so the simulator needs
it (`--telnyx-private-key`, a base64 32-byte seed). The demo makes a key pair of its own.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dlrconsole.simulator.base import Delivery, Failure, OutgoingRequest, Player, SimulatorError, Step, uuid4
from receipts.providers import telnyx


class TelnyxPlayer(Player):
    kind = "telnyx"
    delivered = "delivered"
    expired = Failure("expired", "40005", "Message expired")
    failures = {
        "absent_subscriber": Failure("delivery_failed", "40006", "Recipient unavailable"),
        # Telnyx has no finer code for these: the carrier answered "undeliverable".
        "unknown_subscriber": Failure("delivery_failed", "40008", "Undeliverable"),
        "handset_busy": Failure("delivery_failed", "40006", "Recipient unavailable"),
        "memory_full": Failure("delivery_failed", "40006", "Recipient unavailable"),
        "network_error": Failure("delivery_failed", "40004", "Rejected by destination"),
        "call_barred": Failure("delivery_failed", "40004", "Rejected by destination"),
        "blocked_spam": Failure("delivery_failed", "40003", "Blocked as spam - permanent"),
        # Telnyx refuses a number that replied STOP itself, before any carrier.
        "opted_out": Failure("sending_failed", "40300", "Blocked due to STOP message", early=True),
        "landline": Failure("delivery_failed", "40001", "Not routable"),
    }

    def message_id(self, rng: random.Random) -> str:
        return uuid4(rng)

    def in_flight(self, rng: random.Random) -> list[Step]:
        # Telnyx posts no webhook for `queued`; `message.sent` is the first.
        return [Step("sent", rng.uniform(0.3, 1.2))]

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        plan = delivery.plan
        final = event.provider_status != "sent"
        errors = []
        if event.error_code:
            errors = [{"code": event.error_code, "title": event.error_description, "detail": event.error_description}]
        payload = {
            "record_type": "message",
            "direction": "outbound",
            "id": plan.provider_message_id,
            "type": "SMS",
            "from": {"phone_number": "+18445550001", "carrier": "TELNYX LLC", "line_type": "VoIP"},
            "to": [{"phone_number": plan.recipient, "status": event.provider_status, "line_type": "Wireless"}],
            "parts": 1,
            "tags": [plan.flow],
            "received_at": _iso(plan.submitted_at),
            "sent_at": _iso(plan.events[0].at),
            "completed_at": _iso(event.at) if final else None,
            "valid_until": _iso(plan.submitted_at + timedelta(hours=1)),
            "errors": errors,
        }
        body = json.dumps(
            {
                "data": {
                    "event_type": "message.finalized" if final else "message.sent",
                    "id": delivery.delivery_id,
                    "occurred_at": _iso(event.at),
                    "payload": payload,
                    "record_type": "event",
                },
                # A retry is the same event (same data.id), numbered.
                "meta": {"attempt": delivery.attempt, "delivered_to": delivery.webhook_url},
            }
        ).encode()
        timestamp = int(delivery.now)
        return OutgoingRequest(
            method="POST",
            url=delivery.webhook_url,
            body=body,
            headers={
                "Content-Type": "application/json",
                telnyx.TIMESTAMP_HEADER: str(timestamp),
                telnyx.SIGNATURE_HEADER: telnyx.sign(delivery.secret, timestamp, body),
                "User-Agent": "telnyx-webhooks",
            },
        )

    def signing_key(self, slug: str, secrets: Sequence[str], private_key: str) -> str:
        if not private_key:
            raise SimulatorError(
                f"connection {slug!r} is a Telnyx connection: it holds Telnyx's public key, and only the private "
                "key signs; pass --telnyx-private-key (a base64 32-byte Ed25519 seed whose public key is a secret "
                "of the connection)"
            )
        try:
            public = public_key(private_key)
        except ValueError:
            raise SimulatorError("--telnyx-private-key must be a base64 32-byte Ed25519 seed") from None
        if public not in {secret.strip() for secret in secrets}:
            raise SimulatorError(f"the Telnyx private key does not match any public key of connection {slug!r}")
        return private_key

    def forged_key(self) -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    def demo_keys(self) -> tuple[str, str]:
        private = self.forged_key()
        return public_key(private), private


def public_key(private_key: str) -> str:
    """The base64 public key of a base64 Ed25519 seed, as Mission Control shows it."""
    key = Ed25519PrivateKey.from_private_bytes(telnyx.decode_key(private_key))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


player = TelnyxPlayer()
