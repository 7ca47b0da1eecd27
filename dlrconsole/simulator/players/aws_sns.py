"""Plays AWS End User Messaging SMS events delivered by an SNS topic to an HTTPS subscription:
an SNS `Notification` envelope whose `Message` is the SMS event, signed by SNS (SignatureVersion
2, SHA256withRSA) with the key of the certificate at `SigningCertURL`; the connection's token is
in the subscription URL's path.

Events: https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-messaging-events.html
Event types (providers.md §2.8, §3.7): https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-types.html
Envelope: https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html

The console fetches certificates from SNS hosts only, so this player signs with a key whose
certificate some host the console trusts serves: tests run a loopback certificate server and
widen DLR_SNS_CERT_HOST_PATTERN. Not in the demo, and not from the command line.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Sequence
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dlrconsole.simulator.base import (
    Delivery,
    Failure,
    OutgoingRequest,
    Player,
    SimulatorError,
    Step,
    rfc3339,
    token_url,
    uuid4,
)
from receipts.providers import sns_signature

TOPIC_ARN = "arn:aws:sns:eu-west-1:111122223333:sms-events"
NOT_IN_DEMO = "SNS signs with a certificate that only an SNS host serves"


def failure(event_type: str, description: str, *, early: bool = False) -> Failure:
    # AWS gives no error code: the adapter keys the catalog on the event type itself.
    return Failure(event_type, event_type, description, early)


class AwsSnsPlayer(Player):
    kind = "aws-sns"
    delivered = "TEXT_DELIVERED"
    not_in_demo = NOT_IN_DEMO
    expired = failure("TEXT_TTL_EXPIRED", "Message has expired: its time to live ran out")
    failures = {
        "absent_subscriber": failure("TEXT_UNREACHABLE", "The recipient's device is off or out of coverage"),
        "unknown_subscriber": failure("TEXT_INVALID", "The destination phone number is invalid", early=True),
        "handset_busy": failure("TEXT_UNREACHABLE", "The recipient's device is unreachable"),
        "memory_full": failure("TEXT_UNREACHABLE", "The recipient's device is unreachable"),
        "network_error": failure("TEXT_CARRIER_UNREACHABLE", "Temporary error on the carrier network"),
        "call_barred": failure("TEXT_CARRIER_BLOCKED", "The carrier blocked the message"),
        "blocked_spam": failure("TEXT_SPAM", "The carrier identified the message as spam"),
        "opted_out": failure("TEXT_BLOCKED", "The recipient blocks messages from this sender", early=True),
        "landline": failure("TEXT_INVALID", "The destination cannot receive SMS", early=True),
    }

    def message_id(self, rng: random.Random) -> str:
        return uuid4(rng)

    def in_flight(self, rng: random.Random) -> list[Step]:
        # TEXT_SUCCESSFUL with isFinal false: the carrier took it, its receipt is still to come.
        return [Step("TEXT_QUEUED", rng.uniform(0.1, 0.3)), Step("TEXT_SUCCESSFUL", rng.uniform(0.3, 1.0))]

    def request(self, delivery: Delivery) -> OutgoingRequest:
        (event,) = delivery.events
        signer = json.loads(delivery.secret)
        key = serialization.load_pem_private_key(signer["key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SimulatorError("the AWS SNS signing key must be an RSA key")
        final = event.provider_status not in {"TEXT_QUEUED", "TEXT_SUCCESSFUL"}
        envelope = {
            "Type": "Notification",
            # The same MessageId and Timestamp on a retry: SNS re-sends the same notification.
            "MessageId": delivery.delivery_id,
            "TopicArn": TOPIC_ARN,
            "Message": json.dumps(sms_event(delivery, event.provider_status, event.at, final=final)),
            "Timestamp": rfc3339(event.at),
            "SignatureVersion": "2",
            "SigningCertURL": signer["cert_url"],
            "UnsubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}",
        }
        envelope["Signature"] = sns_signature.sign(key, envelope)
        return OutgoingRequest(
            method="POST",
            url=token_url(delivery.webhook_url, signer["token"]),
            body=json.dumps(envelope, indent=2).encode(),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": delivery.delivery_id,
                "x-amz-sns-topic-arn": TOPIC_ARN,
                "User-Agent": "Amazon Simple Notification Service Agent",
            },
        )

    def signing_key(self, slug: str, secrets: Sequence[str], private_key: str) -> str:
        """`private_key` is `signer(cert_url, pem)`: the connection's token is added to it."""
        if not private_key:
            raise SimulatorError(f"connection {slug!r} is an AWS SNS connection: {NOT_IN_DEMO}; it is played in tests")
        return json.dumps({**json.loads(private_key), "token": secrets[0]})

    def forged_key(self) -> str:
        # A stranger's subscription: the URL token is wrong (the first check the console makes).
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return json.dumps({**json.loads(signer("https://sns.invalid/cert.pem", key)), "token": secrets.token_urlsafe()})

    def demo_keys(self) -> tuple[str, str]:
        raise SimulatorError(f"AWS SNS is not in the demo: {NOT_IN_DEMO}")


def signer(cert_url: str, key: rsa.RSAPrivateKey) -> str:
    """What `load_targets(private_keys={"aws-sns": ...})` takes: the certificate URL and its key."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps({"cert_url": cert_url, "key": pem.decode()})


def sms_event(delivery: Delivery, event_type: str, at: datetime, *, final: bool) -> dict[str, object]:
    plan = delivery.plan
    return {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": int(at.timestamp() * 1000),
        "isFinal": final,
        "originationPhoneNumber": "+12065550152",
        "destinationPhoneNumber": plan.recipient,
        "isoCountryCode": plan.country,
        "isInternationalSend": plan.country != "US",
        "messageId": plan.provider_message_id,
        "messageRequestTimestamp": int(plan.submitted_at.timestamp() * 1000),
        "messageEncoding": "GSM",
        "messageType": "TRANSACTIONAL",
        "messageStatus": event_type.removeprefix("TEXT_"),
        "messageStatusDescription": delivery.events[0].error_description,
        "context": {"flow": plan.flow},
        "totalMessageParts": 1,
        "totalMessagePrice": 0.00581,
        "totalCarrierFee": 0.0,
    }


player = AwsSnsPlayer()
