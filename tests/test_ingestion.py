"""Properties of the ingestion path that must hold on PostgreSQL under concurrency and any order."""

from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dlrconsole.queues import DECISIONS, queue_name
from receipts.models import Message, OutboxEvent, Receipt
from receipts.phones import parse_number
from receipts.services import MessageRegistration, message_register
from receipts.statuses import ReceiptOutcome, Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.webhooks import generic_body, generic_headers


def post(client: Client, connection, body: bytes, webhook_id: str | None = None):
    headers = generic_headers(connection, body, webhook_id=webhook_id)
    return client.post(
        f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )


def register(connection, provider_message_id: str) -> Message:
    message, _ = message_register(
        MessageRegistration(
            connection=connection, provider_message_id=provider_message_id, recipient=parse_number("+33612345678")
        )
    )
    return message


@pytest.mark.slow
def test_same_receipt_posted_50_times_concurrently_is_stored_and_decided_once(http_server, redis_client):
    """Each request runs in its own server thread with its own database connection."""
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body, webhook_id="msg_concurrent")
    url = f"{http_server}/hooks/{message.connection.slug}/"
    start = threading.Barrier(50)

    def send(_: int) -> int:
        start.wait(10)
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(send, range(50)))

    assert all(200 <= code < 300 for code in codes), codes
    assert Receipt.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    # The one change was handed to the real broker once, after commit.
    assert redis_client.llen(queue_name(DECISIONS)) == 1


@pytest.mark.slow
def test_different_receipts_racing_end_in_the_strongest_status(http_server):
    message = MessageFactory()
    url = f"{http_server}/hooks/{message.connection.slug}/"
    statuses = ["accepted", "sent", "expired", "delivered", "sent", "accepted"] * 5
    start = threading.Barrier(len(statuses))

    def send(status: str) -> int:
        body = generic_body(message.provider_message_id, status)
        headers = generic_headers(message.connection, body)
        start.wait(10)
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=len(statuses)) as pool:
        codes = list(pool.map(send, statuses))
    assert set(codes) == {200}
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert Receipt.objects.filter(outcome=ReceiptOutcome.APPLIED).count() == OutboxEvent.objects.count()


@pytest.mark.slow
def test_receipt_racing_its_registration_is_always_linked(http_server):
    """Registration and the first receipt at the same instant, many times over."""
    connection = ConnectionFactory()
    url = f"{http_server}/hooks/{connection.slug}/"
    ids = [f"race-{i}" for i in range(25)]

    def receipt(provider_message_id: str) -> int:
        body = generic_body(provider_message_id, "delivered")
        return requests.post(url, data=body, headers=generic_headers(connection, body), timeout=30).status_code

    def registration(provider_message_id: str) -> None:
        from django.db import connection as db

        try:
            register(connection, provider_message_id)
        finally:
            db.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(fn, i) for i in ids for fn in (receipt, registration)]
        for future in futures:
            future.result(timeout=60)
    assert not Receipt.objects.filter(message__isnull=True).exists()
    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}


# A realistic receipt sequence per message, and the status it must end in whatever the order.
SEQUENCES = [
    (["accepted", "sent", "delivered"], Status.DELIVERED),
    (["accepted", "sent", "undelivered"], Status.UNDELIVERED),
    (["accepted", "sent", "expired"], Status.EXPIRED),
    (["accepted", "sent", "expired", "delivered"], Status.DELIVERED),  # a late handset DLR
    (["accepted", "rejected"], Status.REJECTED),
    (["accepted", "failed"], Status.FAILED),
    (["accepted", "sent", "unknown"], Status.UNKNOWN),
    (["sent", "unknown", "undelivered"], Status.UNDELIVERED),
    (["accepted", "sent", "sent", "delivered", "delivered"], Status.DELIVERED),  # provider repeats
]


@pytest.mark.slow
@pytest.mark.django_db
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(SEQUENCES), data=st.data())
def test_every_arrival_order_ends_in_the_same_final_status(client, case, data):
    statuses, expected = case
    order = data.draw(st.permutations(statuses), label="order")
    # Registration may come at any point: before all receipts, between them, or after all.
    register_at = data.draw(st.integers(min_value=0, max_value=len(order)), label="register_at")
    connection = ConnectionFactory()
    provider_message_id = f"hyp-{uuid.uuid4().hex}"
    for index, status in enumerate(order):
        if index == register_at:
            register(connection, provider_message_id)
        assert post(client, connection, generic_body(provider_message_id, status)).status_code == 200
    if register_at == len(order):
        register(connection, provider_message_id)
    message = Message.objects.get(connection=connection, provider_message_id=provider_message_id)
    assert message.status == expected
    assert message.receipts.count() == len(order)
    # One outbox row per change the message went through, never one for a receipt it ignored.
    applied = message.receipts.filter(outcome=ReceiptOutcome.APPLIED).count()
    assert OutboxEvent.objects.filter(message=message).count() == applied


@pytest.mark.django_db
def test_parked_receipts_are_linked_and_applied_when_the_message_is_registered(client):
    connection = ConnectionFactory()
    for status in ("sent", "delivered"):
        post(client, connection, generic_body("early-bird", status))
    assert Receipt.objects.filter(outcome=ReceiptOutcome.PARKED).count() == 2

    message = register(connection, "early-bird")

    assert message.status == Status.DELIVERED
    assert set(message.receipts.values_list("outcome", flat=True)) == {ReceiptOutcome.APPLIED}
    assert list(OutboxEvent.objects.order_by("id").values_list("status", flat=True)) == ["sent", "delivered"]


@pytest.mark.django_db
def test_parked_receipts_stay_with_their_own_connection(client):
    first, second = ConnectionFactory(), ConnectionFactory()
    post(client, first, generic_body("shared-id", "delivered"))
    message = register(second, "shared-id")
    assert message.status == Status.QUEUED
    assert Receipt.objects.get().message is None


@pytest.mark.django_db
def test_batch_with_several_messages_applies_each(client):
    connection = ConnectionFactory()
    messages = [MessageFactory(connection=connection) for _ in range(3)]
    body = (
        b'{"type": "message.status", "data": ['
        + b",".join(
            f'{{"message_id": "{m.provider_message_id}", "status": "{s}"}}'.encode()
            for m, s in zip(messages, ["delivered", "undelivered", "sent"], strict=True)
        )
        + b"]}"
    )
    response = post(client, connection, body, webhook_id="msg_batch")
    assert response.json() == {"received": 3, "duplicates": 0, "applied": 3}
    assert [Message.objects.get(pk=m.pk).status for m in messages] == ["delivered", "undelivered", "sent"]
    again = post(client, connection, body, webhook_id="msg_batch")
    assert again.json() == {"received": 3, "duplicates": 3}


def test_sequences_cover_every_final_status():
    finals = {expected for _, expected in SEQUENCES}
    assert {Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED} <= finals
    assert all(len(set(itertools.permutations(s))) > 1 for s, _ in SEQUENCES)
