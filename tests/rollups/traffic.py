"""Traffic for the dashboards' tests, made through the real flow: messages registered as the
product registers them, receipts ingested as a webhook hands them over, the missing-receipt
sweep, then a rollup pass. The clock is frozen at NOW by the callers' `clock` fixture."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from receipts.ingestion import ingest
from receipts.models import Connection, Message
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.rollups import maintain
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from receipts.sweeps import sweep_missing_receipts
from tests.factories import TwilioConnectionFactory

# Any fixed instant: every row of these tests is stamped by the frozen clock.
NOW = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)
ABSENT = "30003"  # Twilio: absent_subscriber (temporary)
UNKNOWN = "30005"  # Twilio: unknown_subscriber (permanent)


def register(
    connection: Connection, provider_id: str, *, at: datetime, number: str = "+33612345678", flow: str = "login-otp"
) -> Message:
    message, _ = message_register(
        MessageRegistration(
            connection=connection, provider_message_id=provider_id, recipient=parse_number(number), flow=flow,
            submitted_at=at,
        )
    )  # fmt: skip
    return message


def receive(connection: Connection, provider_id: str, status: Status, **fields: Any) -> None:
    """A receipt through the ingestion flow, as any adapter hands it over."""
    event = ReceiptEvent(
        provider_message_id=provider_id, provider_status=status.value, status=status,
        event_id=f"{provider_id}:{status}", **fields,
    )  # fmt: skip
    request = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")
    ingest(connection=connection, request=request, events=[event], headers={})


@dataclass(frozen=True)
class Routes:
    eu: Connection
    us: Connection


def route_traffic(now: datetime = NOW) -> Routes:
    """In the last hour: eight messages. On eu-route to France (network 20801): delivered after
    4 s and 10 s (0.05 EUR each), absent subscriber, unknown subscriber, expired then delivered
    after 40 s (a late delivery replacing a failure), sent and then missing its receipt. On
    us-route to Britain, flow `marketing`: delivered after 5 s (0.01 USD), rejected as an unknown
    subscriber. In the hour before: one delivered on eu-route. Submission times count back from
    `now`; receipts arrive at the clock's time."""
    eu = TwilioConnectionFactory(slug="eu-route")
    us = TwilioConnectionFactory(slug="us-route")
    fr = {"network": "20801"}
    for provider_id, seconds, number in (("a", 4, "+33612345671"), ("b", 10, "+33612345672")):
        register(eu, provider_id, at=now - timedelta(seconds=seconds), number=number)
        receive(eu, provider_id, Status.DELIVERED, price=Decimal("0.05"), currency="EUR", **fr)
    register(eu, "c", at=now - timedelta(seconds=20), number="+33612345673")
    receive(eu, "c", Status.UNDELIVERED, error_code=ABSENT, **fr)
    register(eu, "d", at=now - timedelta(seconds=30), number="+33612345674")
    receive(eu, "d", Status.UNDELIVERED, error_code=UNKNOWN, **fr)
    register(eu, "e", at=now - timedelta(seconds=40), number="+33612345675")
    receive(eu, "e", Status.EXPIRED, **fr)
    maintain.roll_up()  # the failure is counted first, then replaced
    receive(eu, "e", Status.DELIVERED, **fr)
    register(eu, "f", at=now - timedelta(seconds=50), number="+33612345676")
    receive(eu, "f", Status.SENT, **fr)
    register(us, "h", at=now - timedelta(seconds=5), number="+447400123401", flow="marketing")
    receive(us, "h", Status.DELIVERED, price=Decimal("0.01"), currency="USD")
    register(us, "i", at=now - timedelta(seconds=15), number="+447400123402", flow="marketing")
    receive(us, "i", Status.REJECTED, error_code=UNKNOWN)
    register(eu, "j", at=now - timedelta(minutes=90), number="+33612345677")
    receive(eu, "j", Status.DELIVERED, **fr)
    # Past the receipt time limit, `f` alone is still pending: it is reported missing.
    sweep_missing_receipts(now=now + timedelta(hours=7))
    while maintain.roll_up(now=now):
        pass
    return Routes(eu, us)
