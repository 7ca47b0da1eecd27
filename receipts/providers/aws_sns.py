"""AWS End User Messaging SMS events, delivered by an Amazon SNS topic to an HTTPS subscription.

Events: https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-messaging-events.html
SNS envelope: https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
Signature: receipts/providers/sns_signature.py.

Authentication takes three checks, in this order (cheapest first):

1. The connection's secret is a token in the subscription URL, `/hooks/<slug>/<token>/`
   (or any other place `TokenAuthenticated` accepts). SNS signatures prove a message comes
   from SNS, not from *your* AWS account: anyone can create a topic and subscribe any URL,
   and SNS signs their messages too. The token keeps the URL unguessable, and refuses
   strangers before we parse anything or fetch a certificate. SNS itself needs no secret.
2. `options = {"topic_arns": ["arn:aws:sns:…"]}`, recommended: when set, any other topic is
   refused, as AWS advises, and no other topic's subscription is ever confirmed.
3. The SNS signature, and the envelope `Timestamp` within TOLERANCE_SECONDS. AWS's guide does
   not ask for a timestamp check; we add one to bound replays. It is safe because SNS keeps a
   retry's original Timestamp but stops retrying HTTP/S deliveries within 3,600 s (a hard limit,
   https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html).

Turn raw message delivery off on the subscription: a raw message carries no signature.
A SubscriptionConfirmation is answered 200 and confirmed off the request path by
receipts.tasks.confirm_sns_subscription.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from receipts.providers import sns_signature
from receipts.providers.base import (
    ControlMessage,
    PayloadError,
    ReceiptEvent,
    SignatureError,
    TokenAuthenticated,
    WebhookRequest,
    clean_network,
    clean_price,
    loads_json,
    parse_unix_time,
)
from receipts.statuses import FAILURE_STATUSES, Status

CONFIRM_TASK = "receipts.tasks.confirm_sns_subscription"
# SNS's retry window (3,600 s) plus delivery latency and clock skew.
TOLERANCE_SECONDS = 3600 + 300
MIN_TOKEN_LENGTH = 16
TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:[\w.-]{1,256}")
# Headers SNS sets to envelope fields the signature covers
# (https://docs.aws.amazon.com/sns/latest/dg/http-header.html). They are kept with the receipt,
# so one that disagrees with the signed field is a forgery beside a genuine message.
# AWS prices End User Messaging in US dollars; the event's totalMessagePrice names no currency.
CURRENCY = "USD"
HEADER_FIELDS = {
    "x-amz-sns-message-type": "Type",
    "x-amz-sns-message-id": "MessageId",
    "x-amz-sns-topic-arn": "TopicArn",
}

# https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-types.html
STATUS_MAP: dict[str, Status] = {
    "text_queued": Status.ACCEPTED,
    "text_pending": Status.ACCEPTED,
    # Accepted by the recipient's carrier; some countries send it instead of TEXT_DELIVERED,
    # and then with isFinal true (see `event_status`).
    "text_successful": Status.SENT,
    "text_delivered": Status.DELIVERED,
    "text_ttl_expired": Status.EXPIRED,
    # Device off or a temporary carrier network error: a carrier's negative outcome.
    "text_unreachable": Status.UNDELIVERED,
    "text_carrier_unreachable": Status.UNDELIVERED,
    "text_blocked": Status.REJECTED,
    "text_carrier_blocked": Status.REJECTED,
    "text_spam": Status.REJECTED,
    "text_protect_blocked": Status.REJECTED,
    "text_invalid": Status.REJECTED,
    "text_invalid_message": Status.REJECTED,
    # AWS's own "no final event after 72 hours", or a cause it does not know.
    "text_unknown": Status.UNKNOWN,
}


class AwsSnsAdapter(TokenAuthenticated):
    kind = "aws-sns"
    label = "AWS End User Messaging SMS (via SNS)"
    status_map = STATUS_MAP
    kept_headers = (
        "content-type",
        "user-agent",
        "x-amz-sns-message-type",
        "x-amz-sns-message-id",
        "x-amz-sns-topic-arn",
        "x-amz-sns-subscription-arn",
    )

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def validate_secret(self, secret: str) -> None:
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the URL token must be at least {MIN_TOKEN_LENGTH} characters")

    def validate_options(self, options: Mapping[str, Any]) -> None:
        if set(options) - {"topic_arns"}:
            raise ValueError("AWS SNS connections take only `topic_arns`")
        arns = options.get("topic_arns", [])
        if not isinstance(arns, list) or not all(isinstance(a, str) and TOPIC_ARN.fullmatch(a) for a in arns):
            raise ValueError("`topic_arns` must be a list of SNS topic ARNs (arn:aws:sns:region:account:name)")

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().verify(request, secrets, public_url=public_url, options=options)
        envelope = read_envelope(request)
        for header, name in HEADER_FIELDS.items():
            if request.header(header) and request.header(header) != envelope.get(name):
                raise SignatureError(f"the {header} header disagrees with the signed {name}")
        allowed = (options or {}).get("topic_arns")
        if allowed and envelope.get("TopicArn") not in allowed:
            raise SignatureError(f"TopicArn {str(envelope.get('TopicArn'))[:300]} is not one this connection accepts")
        sent_at = parse_timestamp(envelope.get("Timestamp"))
        # Both directions: an old Timestamp is a replay, a future one a forged clock.
        if abs(self.clock() - sent_at.timestamp()) > TOLERANCE_SECONDS:
            raise SignatureError("Timestamp is outside the tolerance: a replayed SNS message")
        sns_signature.verify(envelope)

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        envelope = read_envelope(request)
        kind = envelope["Type"]
        if kind == "SubscriptionConfirmation":
            raise ControlMessage("subscription confirmation", task=CONFIRM_TASK, args=(envelope.get("SubscribeURL"),))
        if kind == "UnsubscribeConfirmation":
            raise ControlMessage("unsubscribe confirmation")
        event = read_event(envelope.get("Message"))
        event_type = event.get("eventType")
        if not isinstance(event_type, str) or not event_type:
            raise PayloadError("Message has no eventType")
        if not event_type.startswith("TEXT_"):
            # A configuration set's destination may also carry voice, MMS and registration
            # events ("ALL"); they are not SMS receipts.
            raise ControlMessage(f"{event_type[:64]} event ignored: not an SMS event")
        message_id = event.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise PayloadError("Message has no messageId")
        status = self.event_status(event_type, event.get("isFinal"))
        description = event.get("messageStatusDescription")
        return [
            ReceiptEvent(
                provider_message_id=message_id,
                provider_status=event_type,
                status=status,
                # AWS gives no error code: the event type is the reason the catalog keys on.
                error_code=event_type if status in FAILURE_STATUSES else "",
                error_description=description[:255] if isinstance(description, str) else "",
                # eventTimestamp: milliseconds since the epoch. An unreadable one is dropped, not
                # refused: SNS takes a 4xx as delivered, so a refusal would lose the receipt.
                provider_timestamp=parse_unix_time(event.get("eventTimestamp"), per_second=1000),
                # A retried delivery keeps its MessageId: the dedupe key.
                event_id=envelope["MessageId"],
                network=event_network(event),
                price=clean_price(event.get("totalMessagePrice")),
                currency=CURRENCY,
            )
        ]

    def event_status(self, event_type: str, is_final: object) -> Status:
        status = self.normalize_status(event_type)
        # Where TEXT_SUCCESSFUL stands for delivery, AWS marks it final; trust isFinal.
        if status is Status.SENT and is_final is True:
            return Status.DELIVERED
        return status


def event_network(event: dict[str, Any]) -> str:
    """`mcc` and `mnc` of the destination's carrier as one code ("310" + "800"), "" unless both
    are digits."""
    mcc, mnc = (str(event.get(name) or "").strip() for name in ("mcc", "mnc"))
    if not (mcc.isascii() and mcc.isdigit() and mnc.isascii() and mnc.isdigit()):
        return ""
    return clean_network(mcc + mnc)


def read_envelope(request: WebhookRequest) -> dict[str, Any]:
    envelope = request.json()
    if not isinstance(envelope, dict):
        raise PayloadError("body is not an SNS message (a JSON object)")
    if "Type" not in envelope and "eventType" in envelope:
        raise SignatureError("raw message delivery is on: turn it off so SNS signs its messages")
    if envelope.get("Type") not in sns_signature.SIGNED_FIELDS:
        raise PayloadError("Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation")
    if not isinstance(envelope.get("MessageId"), str) or not envelope["MessageId"]:
        raise PayloadError("MessageId is missing")
    return envelope


def read_event(message: object) -> dict[str, Any]:
    if not isinstance(message, str):
        raise PayloadError("Message is missing")
    event = loads_json(message, what="Message")
    if not isinstance(event, dict):
        raise PayloadError("Message is not an End User Messaging event (a JSON object)")
    return event


def parse_timestamp(value: object) -> datetime:
    """The envelope's signed Timestamp, e.g. 2012-05-02T00:54:06.655Z."""
    if not isinstance(value, str):
        raise SignatureError("Timestamp is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SignatureError("Timestamp is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise SignatureError("Timestamp carries no time zone")
    return parsed


adapter = AwsSnsAdapter()
