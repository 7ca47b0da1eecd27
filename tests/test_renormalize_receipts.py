"""`renormalize_receipts`: stored receipts read again through the current adapters and catalog.

A receipt "stored under an old mapping" is one ingested through the real webhook whose
normalized columns, and its message's, are then set back to what the previous mapping wrote
(Infobip SIGNALS_BLOCKED was `unknown`; a Kannel NACK kept no error code): exactly the rows an
older release left in the database.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from receipts.ingestion import ingest
from receipts.models import Connection, Message, OutboxEvent, Receipt, RollupPending
from receipts.providers.base import WebhookRequest
from receipts.providers.registry import get_adapter
from receipts.renormalize import receipts_renormalize
from receipts.statuses import Status
from retries.models import Attempt, Decision
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.signing import fixture
from tests.providers.token_suite import TOKEN

pytestmark = pytest.mark.django_db

SIGNALS_BLOCKED_ID = "4089136245390354563001"
THROTTLED_ID = "5b1e9c7a-0f2d-4e63-a8b4-7c9d1e2f3a40"
# What the previous mappings wrote for these receipts and their messages.
OLD_INFOBIP = {"status": Status.UNKNOWN, "reason": "unknown", "error_class": "unknown", "catalog_class": "unknown"}
OLD_KANNEL = {"error_code": "", "reason": "unknown", "error_class": "unknown", "catalog_class": "unknown"}


def run(*args: str) -> str:
    out = StringIO()
    call_command("renormalize_receipts", *args, stdout=out)
    return out.getvalue()


def post_infobip(client: Client, connection: Connection, name: str) -> None:
    response = client.post(
        f"/hooks/{connection.slug}/{TOKEN}/", data=fixture("infobip", name), content_type="application/json"
    )
    assert response.status_code == 200


def stored_under_old_mapping(receipt_id: str, old: dict[str, Any]) -> Message:
    """Set the receipt and its message back to what the previous mapping wrote."""
    receipt = Receipt.objects.get(provider_message_id=receipt_id)
    Receipt.objects.filter(pk=receipt.pk).update(**old)
    Message.objects.filter(pk=receipt.message_id).update(final_at=None, **old)
    return Message.objects.get(pk=receipt.message_id)


@pytest.fixture
def infobip_old(client: Client) -> Message:
    connection = ConnectionFactory(provider="infobip", slug="infobip-eu", secrets=[TOKEN])
    MessageFactory(connection=connection, provider_message_id=SIGNALS_BLOCKED_ID)
    post_infobip(client, connection, "rejected_signals_blocked.json")
    return stored_under_old_mapping(SIGNALS_BLOCKED_ID, OLD_INFOBIP)


@pytest.fixture
def kannel_old(client: Client) -> Message:
    connection = ConnectionFactory(provider="kannel", slug="kannel-eu", secrets=[TOKEN])
    MessageFactory(connection=connection, provider_message_id=THROTTLED_ID)
    response = client.get(f"/hooks/{connection.slug}/{TOKEN}/?{fixture('kannel', 'smsc_nack_throttled.txt').decode()}")
    assert response.status_code == 200
    return stored_under_old_mapping(THROTTLED_ID, OLD_KANNEL)


def side_effects() -> tuple[int, int, int]:
    return OutboxEvent.objects.count(), Decision.objects.count(), Attempt.objects.count()


def test_dry_run_shows_the_change_per_connection_and_writes_nothing(infobip_old: Message, kannel_old: Message):
    receipts_before = list(Receipt.objects.order_by("pk").values())
    messages_before = list(Message.objects.order_by("pk").values())
    output = run()
    assert "infobip-eu: 1 receipts read, 1 changed, 1 messages changed, 0 unreadable" in output
    assert "  status unknown -> rejected: 1" in output
    assert "kannel-eu: 1 receipts read, 1 changed, 1 messages changed, 0 unreadable" in output
    assert "  reason unknown -> throttled: 1" in output
    assert "  error_class unknown -> temporary: 1" in output
    assert "(infobip-eu, SIGNALS_BLOCKED): status unknown -> rejected\n" in output
    assert "Would restate 2 receipts and 2 messages. Nothing was written" in output
    assert list(Receipt.objects.order_by("pk").values()) == receipts_before
    assert list(Message.objects.order_by("pk").values()) == messages_before


def test_apply_restates_receipts_and_messages_without_deciding_again(infobip_old: Message, kannel_old: Message):
    effects = side_effects()
    before = timezone.now()
    output = run("--apply")
    assert "Restated 2 receipts and 2 messages." in output
    receipt = Receipt.objects.get(provider_message_id=SIGNALS_BLOCKED_ID)
    # Rejected without an error code: the catalog cannot say why, as before.
    assert (receipt.status, receipt.reason, receipt.error_class) == (Status.REJECTED, "unknown", "unknown")
    message = Message.objects.get(pk=infobip_old.pk)
    assert (message.status, message.reason, message.error_class, message.error_code) == (
        Status.REJECTED,
        "unknown",
        "unknown",
        "",
    )
    # Final now: when the provider says it happened, never later than its receipt arrived.
    assert message.final_at == min(receipt.provider_timestamp, receipt.received_at)
    assert message.status_changed_at >= before
    nack = Receipt.objects.get(provider_message_id=THROTTLED_ID)
    assert (nack.error_code, nack.reason, nack.error_class, nack.catalog_class) == (
        "0x00000058",
        "throttled",
        "temporary",
        "temporary",
    )
    throttled = Message.objects.get(pk=kannel_old.pk)
    assert (throttled.status, throttled.error_code, throttled.reason, throttled.error_class) == (
        Status.REJECTED,
        "0x00000058",
        "throttled",
        "temporary",
    )
    assert side_effects() == effects


def test_network_and_price_of_receipts_stored_before_they_were_kept_are_filled_in(client: Client):
    connection = ConnectionFactory(provider="infobip", slug="infobip-eu", secrets=[TOKEN])
    message = MessageFactory(connection=connection, provider_message_id="4089136245390354561003")
    post_infobip(client, connection, "delivered.json")
    Receipt.objects.update(network="", price=None, currency="")
    Message.objects.update(network="", cost=None, currency="")
    RollupPending.objects.all().delete()
    output = run()
    assert "infobip-eu: 1 receipts read, 1 changed, 1 messages changed, 0 unreadable" in output
    assert "  network read anew: 1, price read anew: 1" in output
    assert (Message.objects.get().network, Receipt.objects.get().price) == ("", None)
    effects = side_effects()
    run("--apply")
    receipt = Receipt.objects.get()
    assert (receipt.status, receipt.network, receipt.price, receipt.currency) == (
        Status.DELIVERED,
        "22801",
        Decimal("0.010000"),
        "EUR",
    )
    message.refresh_from_db()
    assert (message.status, message.network, message.cost, message.currency) == (
        Status.DELIVERED,
        "22801",
        Decimal("0.010000"),
        "EUR",
    )
    # The rollups recount the restated message at their next pass; no rule runs again.
    assert list(RollupPending.objects.values_list("message_id", flat=True)) == [message.pk]
    assert side_effects() == effects


def test_a_message_no_receipt_prices_keeps_its_price_list_cost(kannel_old: Message):
    Message.objects.filter(pk=kannel_old.pk).update(cost=Decimal("0.050000"), currency="EUR")
    run("--apply")
    message = Message.objects.get(pk=kannel_old.pk)
    assert (message.reason, message.cost, message.currency) == ("throttled", Decimal("0.050000"), "EUR")


def test_a_second_run_finds_nothing_to_change(infobip_old: Message, kannel_old: Message):
    run("--apply")
    receipts = list(Receipt.objects.order_by("pk").values())
    messages = list(Message.objects.order_by("pk").values())
    assert "Restated 0 receipts and 0 messages." in run("--apply")
    assert "Would restate 0 receipts and 0 messages." in run()
    assert list(Receipt.objects.order_by("pk").values()) == receipts
    assert list(Message.objects.order_by("pk").values()) == messages


def test_service_returns_the_changed_message_ids_for_rollup_maintenance(infobip_old: Message, kannel_old: Message):
    assert sorted(receipts_renormalize(apply=False).changed_message_ids) == sorted([infobip_old.pk, kannel_old.pk])
    assert sorted(receipts_renormalize(apply=True, batch=1).changed_message_ids) == sorted(
        [infobip_old.pk, kannel_old.pk]
    )
    assert receipts_renormalize(apply=True).changed_message_ids == []


def test_a_higher_ranked_receipt_keeps_the_message_where_ingestion_left_it(client: Client, infobip_old: Message):
    # A later DELIVERED_TO_HANDSET for the same message: delivered outranks the restated rejected.
    connection = infobip_old.connection
    body = fixture("infobip", "delivered.json").decode().replace("4089136245390354561003", SIGNALS_BLOCKED_ID)
    client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")
    assert Message.objects.get(pk=infobip_old.pk).status == Status.DELIVERED
    output = run("--apply")
    assert "infobip-eu: 2 receipts read, 1 changed, 0 messages changed" in output
    assert Receipt.objects.get(provider_status="SIGNALS_BLOCKED").status == Status.REJECTED
    message = Message.objects.get(pk=infobip_old.pk)
    assert (message.status, message.reason) == (Status.DELIVERED, "")


def test_a_dry_run_in_small_batches_counts_each_message_once(client: Client, infobip_old: Message):
    # A second receipt of the same message, also stored under the old mapping, in another batch.
    connection = infobip_old.connection
    body = fixture("infobip", "rejected_signals_blocked.json").decode().replace("12:00:00.310", "12:00:01.310")
    client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")
    Receipt.objects.update(**OLD_INFOBIP)
    Message.objects.update(final_at=None, **OLD_INFOBIP)
    output = run("--batch", "1")
    assert "infobip-eu: 2 receipts read, 2 changed, 1 messages changed" in output
    assert "Would restate 2 receipts and 1 messages." in output
    assert "Restated 2 receipts and 1 messages." in run("--apply", "--batch", "1")


def test_connection_and_since_select_the_receipts_read(infobip_old: Message, kannel_old: Message):
    output = run("--apply", "--connection", "kannel-eu", "--batch", "1")
    assert "kannel-eu: 1 receipts read, 1 changed" in output
    assert "infobip-eu" not in output
    assert Receipt.objects.get(provider_message_id=SIGNALS_BLOCKED_ID).status == Status.UNKNOWN
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert "Would restate 0 receipts and 0 messages." in run("--since", tomorrow)
    assert "infobip-eu: 1 receipts read, 1 changed" in run("--since", (timezone.now() - timedelta(hours=1)).isoformat())


def test_a_receipt_whose_body_no_longer_parses_is_counted_and_left_alone(infobip_old: Message):
    Receipt.objects.update(raw_body="not json")
    output = run("--apply")
    assert "infobip-eu: 1 receipts read, 0 changed, 0 messages changed, 1 unreadable" in output
    assert Receipt.objects.get().status == Status.UNKNOWN


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--since", "yesterday"), "--since"),
        (("--since", "2026-13-45"), "--since"),
        (("--connection", "no-such-connection"), "no connection"),
        (("--batch", "0"), "--batch"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(args: tuple[str, ...], reason: str):
    with pytest.raises(CommandError, match=reason):
        run(*args)


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# (provider, fixture, how the provider sends it): every receipt fixture of every provider.
STORED_CASES = [
    *[("aws-sns", f"aws_sns/notification_{name}.json", "POST", "text/plain; charset=UTF-8") for name in (
        "carrier_unreachable", "delivered", "queued", "spam", "successful", "successful_not_final",
        "ttl_expired", "unknown",
    )],
    *[("infobip", f"infobip/{name}.json", "POST", JSON) for name in (
        "batch", "delivered", "undelivered_unknown_subscriber", "rejected_signals_blocked", "group_only_undeliverable",
    )],
    *[("kannel", f"kannel/{name}.txt", "GET", "") for name in (
        "delivered", "expired", "smsc_ack", "smsc_nack", "smsc_nack_throttled",
    )],
    *[("messagebird", f"messagebird/{name}.txt", "GET", "") for name in ("delivered", "delivery_failed", "sent")],
    *[("plivo", f"plivo/{name}.txt", "POST", FORM) for name in (
        "delivered", "delivered_other_parent", "failed_40", "queued", "sent", "undelivered_30",
    )],
    *[("sinch", f"sinch/{name}.json", "POST", JSON) for name in (
        "batch_full", "recipient_delivered", "recipient_dispatched", "recipient_failed",
    )],
    ("smpp-text", "smpp_text/delivered.txt", "POST", "text/plain"),
    ("smpp-text", "smpp_text/delivered_form.txt", "POST", FORM),
    ("smpp-text", "smpp_text/undelivered.txt", "POST", "text/plain"),
    *[("standard-webhooks", f"standard_webhooks/{name}.json", "POST", JSON) for name in (
        "batch", "delivered", "delivered_network_price", "undelivered_error",
    )],
    *[("telnyx", f"telnyx/{name}.json", "POST", JSON) for name in (
        "message_finalized_delivered", "message_finalized_delivery_failed", "message_finalized_sending_failed",
        "message_sent",
    )],
    *[("twilio", f"twilio/{name}.txt", "POST", FORM) for name in ("delivered", "failed", "sent", "undelivered_30003")],
    *[("vonage", f"vonage/{name}.txt", "POST", FORM) for name in (
        "accepted", "delivered", "failed_absent_subscriber",
    )],
    ("vonage", "vonage/rejected.json", "POST", JSON),
    ("vonage", "vonage/delivered.txt", "GET", ""),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "path", "method", "content_type"), STORED_CASES)
def test_every_providers_stored_receipts_read_back_unchanged(
    provider: str, path: str, method: str, content_type: str
) -> None:
    # Stored exactly as the webhook stores them (ingest, after verification), then read again.
    folder, name = path.split("/")
    body = fixture(folder, name)
    headers = {
        "user-agent": "provider",
        "webhook-id": "msg_2Kx9tRb7",
        **({"content-type": content_type} if content_type else {}),
    }
    url = "https://dlr.example/hooks/conn/"
    request = WebhookRequest(
        method=method,
        url=f"{url}?{body.decode()}" if method == "GET" else url,
        headers=headers,
        body=b"" if method == "GET" else body,
    )
    adapter = get_adapter(provider)
    connection = ConnectionFactory(provider=provider, slug=f"{provider}-stored")
    events = adapter.parse(request)
    assert events
    ingest(connection=connection, request=request, events=events, headers=adapter.headers_to_keep(request))
    report = receipts_renormalize(apply=False)
    tally = report.connections[connection.slug]
    assert (tally.examined, tally.unreadable, tally.receipts_changed) == (Receipt.objects.count(), 0, 0)
