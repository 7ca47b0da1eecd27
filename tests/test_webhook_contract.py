"""The webhook's HTTP answers are a contract with providers; each case pinned here."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import Client

from receipts.models import OutboxEvent, Receipt
from receipts.statuses import ReceiptOutcome, Status
from tests.factories import ConnectionFactory, MessageFactory, TwilioConnectionFactory
from tests.webhooks import generic_body, generic_headers, twilio_form, twilio_signed

pytestmark = pytest.mark.django_db


def post_generic(client: Client, connection, body: bytes, **header_kw) -> object:
    headers = generic_headers(connection, body, **header_kw)
    content_type = headers.pop("content-type")
    return client.post(f"/hooks/{connection.slug}/", data=body, content_type=content_type, headers=headers)


def nothing_stored() -> bool:
    return not Receipt.objects.exists() and not OutboxEvent.objects.exists()


def test_new_receipt_is_stored_applied_and_recorded_for_rules(client):
    message = MessageFactory()
    response = post_generic(client, message.connection, generic_body(message.provider_message_id, "delivered"))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "duplicates": 0, "applied": 1}
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.first_receipt_at is not None
    assert message.final_at is not None
    receipt = Receipt.objects.get()
    assert (receipt.message, receipt.status, receipt.outcome) == (message, Status.DELIVERED, ReceiptOutcome.APPLIED)
    assert OutboxEvent.objects.get().status == Status.DELIVERED


def test_duplicate_receipt_is_stored_once_and_answered_200(client):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    first = post_generic(client, message.connection, body, webhook_id="msg_same")
    again = post_generic(client, message.connection, body, webhook_id="msg_same")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"received": 1, "duplicates": 1}
    assert Receipt.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


def test_late_receipt_is_kept_but_does_not_move_the_message_back(client):
    message = MessageFactory()
    post_generic(client, message.connection, generic_body(message.provider_message_id, "delivered"))
    response = post_generic(client, message.connection, generic_body(message.provider_message_id, "sent"))
    assert response.status_code == 200
    assert response.json()["late"] == 1
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert Receipt.objects.filter(status=Status.SENT, outcome=ReceiptOutcome.LATE).exists()
    assert OutboxEvent.objects.count() == 1


def test_weaker_second_final_is_kept_as_conflict(client):
    message = MessageFactory()
    post_generic(client, message.connection, generic_body(message.provider_message_id, "undelivered", error_code="1"))
    response = post_generic(client, message.connection, generic_body(message.provider_message_id, "expired"))
    assert response.json()["conflict"] == 1
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "1")


def test_delivered_after_expired_replaces_the_final_and_clears_the_error(client):
    message = MessageFactory()
    post_generic(client, message.connection, generic_body(message.provider_message_id, "expired", error_code="27"))
    post_generic(client, message.connection, generic_body(message.provider_message_id, "delivered"))
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_class) == (Status.DELIVERED, "", "")
    assert list(OutboxEvent.objects.order_by("id").values_list("status", flat=True)) == ["expired", "delivered"]


def test_receipt_for_unknown_message_is_parked_and_answered_200(client):
    connection = ConnectionFactory()
    response = post_generic(client, connection, generic_body("not-registered-yet", "delivered"))
    assert response.status_code == 200
    assert response.json()["parked"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.message, receipt.outcome) == (None, ReceiptOutcome.PARKED)
    assert not OutboxEvent.objects.exists()


def test_unmapped_status_is_kept_as_unknown_and_answered_200(client):
    message = MessageFactory()
    response = post_generic(client, message.connection, generic_body(message.provider_message_id, "SOMETHING_NEW"))
    assert response.status_code == 200
    receipt = Receipt.objects.get()
    assert (receipt.provider_status, receipt.status) == ("SOMETHING_NEW", Status.UNKNOWN)
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN


def test_missing_signature_is_401_and_nothing_is_stored(client):
    message = MessageFactory()
    response = client.post(
        f"/hooks/{message.connection.slug}/",
        data=generic_body(message.provider_message_id, "delivered"),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert "missing" in response.json()["error"]
    assert nothing_stored()


def test_wrong_secret_is_401_and_nothing_is_stored(client):
    message = MessageFactory()
    other = ConnectionFactory(secrets=["whsec_" + "QUFB" * 10])
    body = generic_body(message.provider_message_id, "delivered")
    response = post_generic(client, message.connection, body, secret=other.secrets[0])
    assert response.status_code == 401
    assert nothing_stored()


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp_is_401_and_nothing_is_stored(client, skew):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    response = post_generic(client, message.connection, body, timestamp=int(time.time()) + skew)
    assert response.status_code == 401
    assert "tolerance" in response.json()["error"]
    assert nothing_stored()


def test_bad_twilio_signature_is_401_and_nothing_is_stored(client):
    connection = TwilioConnectionFactory()
    body, headers = twilio_signed(connection, f"http://testserver/hooks/{connection.slug}/", twilio_form("SM1", "sent"))
    headers["x-twilio-signature"] = "AAAA" + headers["x-twilio-signature"][4:]
    response = client.post(
        f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 401
    assert nothing_stored()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "message.status"}', "`data`"),
        (b'{"data": {"status": "delivered"}}', "message_id"),
        (b'{"data": {"message_id": "m1", "status": "delivered", "timestamp": "yesterday"}}', "RFC 3339"),
        (b'{"data": {"message_id": "' + b"x" * 129 + b'", "status": "delivered"}}', "longer than 128"),
        (b'{"data": {"message_id": "m\\u0000", "status": "delivered"}}', "NUL"),
        (b'{"data": {"message_id": "m\\ud800", "status": "delivered"}}', "not valid Unicode"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_malformed_body_is_400_with_the_reason_and_nothing_is_stored(client, body, reason):
    connection = ConnectionFactory()
    response = post_generic(client, connection, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert nothing_stored()


def test_malformed_batch_stores_nothing_even_if_some_items_are_fine(client):
    message = MessageFactory()
    body = (
        b'{"data": [{"message_id": "' + message.provider_message_id.encode() + b'", "status": "delivered"},'
        b' {"status": "delivered"}]}'
    )
    assert post_generic(client, message.connection, body).status_code == 400
    assert nothing_stored()


def test_unknown_slug_is_404(client):
    assert client.post("/hooks/no-such-connection/", data=b"{}", content_type="application/json").status_code == 404


def test_disabled_connection_is_404_and_nothing_is_stored(client):
    message = MessageFactory(connection=ConnectionFactory(enabled=False))
    response = post_generic(client, message.connection, generic_body(message.provider_message_id, "delivered"))
    assert response.status_code == 404
    assert nothing_stored()


def test_oversized_body_is_413_and_nothing_is_stored(client, settings):
    settings.DLR_WEBHOOK_MAX_BYTES = 1024
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered", error_description="x" * 2000)
    response = post_generic(client, message.connection, body)
    assert response.status_code == 413
    assert nothing_stored()


def test_body_at_the_size_limit_is_accepted(client, settings):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    settings.DLR_WEBHOOK_MAX_BYTES = len(body)
    assert post_generic(client, message.connection, body).status_code == 200


def test_other_methods_are_405(client):
    connection = ConnectionFactory()
    assert client.put(f"/hooks/{connection.slug}/", data=b"{}").status_code == 405


def test_database_unable_to_store_is_503_and_nothing_is_stored(client):
    """A receipts table locked by another session past our lock timeout: we could not store."""
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("LOCK TABLE receipts_receipt IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with connections["default"].cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        response = post_generic(client, message.connection, body)
    finally:
        release.set()
        holder.join(10)
    assert response.status_code == 503
    assert nothing_stored()
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_nul_in_a_kept_header_is_400_not_a_storage_failure(client):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body)
    headers["user-agent"] = "agent\x00with-nul"
    response = client.post(
        f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 400
    assert nothing_stored()


def test_the_contract_is_documented_in_the_api_schema(admin_client):
    schema = admin_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/hooks/{slug}/", "/hooks/{slug}/{token}/"):
        for method in ("get", "post"):
            operation = schema["paths"][path][method]
            assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "413", "429", "503"}
            assert operation.get("security", []) in ([], [{}])  # the provider's signature, no API credentials
    stored = schema["components"]["schemas"]["WebhookStored"]["properties"]
    assert {"received", "duplicates", "applied", "parked", "late", "same", "conflict"} <= set(stored)


def test_the_answer_is_json_whatever_the_provider_accepts_and_only_get_and_post_are_taken(client):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body)
    content_type = headers.pop("content-type")
    response = client.post(
        f"/hooks/{message.connection.slug}/", data=body, content_type=content_type, headers=headers,
        HTTP_ACCEPT="text/html",
    )  # fmt: skip
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    assert client.options(f"/hooks/{message.connection.slug}/").status_code == 405
    assert client.put(f"/hooks/{message.connection.slug}/").status_code == 405


@pytest.mark.parametrize("prepared", [True, False])
def test_a_receipt_is_stored_alike_with_or_without_prepared_statements(client, settings, prepared):
    settings.DLR_DB_PREPARED_STATEMENTS = prepared  # off behind a pooler that cannot keep them
    message = MessageFactory()
    for status in ("sent", "delivered", "delivered"):
        post_generic(client, message.connection, generic_body(message.provider_message_id, status))
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(Receipt.objects.order_by("id").values_list("outcome", flat=True)) == ["applied", "applied", "same"]
    assert OutboxEvent.objects.count() == 2
