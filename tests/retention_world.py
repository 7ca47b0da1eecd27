"""A message's whole life, as retention and erasure find it: registered, a real Infobip report
through the adapter and the ingestion flow (the raw payload carries the number), the default
rules' decisions and attempts, the product feed's events and deliveries, a per-message alert."""

from __future__ import annotations

import json
from datetime import datetime

import time_machine

from alerts.services import alert_raise_for_decision
from receipts.ingestion import ingest
from receipts.models import Connection, Message, OutboxEvent
from receipts.outbox import outbox_process_batch
from receipts.phones import parse_number
from receipts.providers import infobip
from receipts.providers.base import WebhookRequest
from receipts.services import MessageRegistration, message_register
from retries.models import Decision
from tests.providers.signing import fixture

URL = "https://dlr.example/hooks/infobip-eu/"
NUMBER = "+41793026727"  # the fixtures' own recipient


def infobip_report(provider_id: str, *, name: str = "undelivered_unknown_subscriber.json", to: str = NUMBER) -> None:
    """Post the fixture's report for `provider_id` through the adapter and ingestion."""
    payload = json.loads(fixture("infobip", name))
    for result in payload["results"]:
        result["messageId"], result["to"] = provider_id, to.lstrip("+")
        # Infobip's temporary absence (error 27) rather than the fixture's unknown number: the
        # default rules retry it, so the message gets attempts and feed events too.
        result["error"].update(id=27, name="EC_ABSENT_SUBSCRIBER", permanent=False)
    body = json.dumps(payload).encode()
    request = WebhookRequest(method="POST", url=URL, headers={"content-type": "application/json"}, body=body)
    connection = Connection.objects.get(slug="infobip-eu")
    ingest(connection=connection, request=request, events=infobip.InfobipAdapter().parse(request), headers={})


def message_life(provider_id: str, *, at: datetime, number: str = NUMBER, registered: bool = True) -> Message | None:
    """At `at`: a message registered (or not: its receipt stays parked), failed by a report,
    decided on by the rules (with a per-message alert for the first decision)."""
    with time_machine.travel(at, tick=False):
        message = None
        if registered:
            message, _ = message_register(
                MessageRegistration(
                    connection=Connection.objects.get(slug="infobip-eu"),
                    provider_message_id=provider_id,
                    recipient=parse_number(number),
                    flow="login-otp",
                    body="Your code is 123456",
                )
            )
        infobip_report(provider_id, to=number)
        if message is None:
            return None
        outbox_process_batch(list(OutboxEvent.objects.filter(message=message).values_list("pk", flat=True)))
        decision = Decision.objects.filter(message=message).order_by("pk").first()
        if decision is not None:
            alert_raise_for_decision(decision=decision, now=at)
        message.refresh_from_db()
        return message
