"""Sinch SMS delivery report callbacks: per-recipient reports and batch reports (full and
summary, shapes of Sinch's own SDK fixtures under tests/fixtures/sinch/), statuses and codes,
Basic/token authentication, and the endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import sinch
from receipts.providers.base import PayloadError, ReceiptEvent, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.batch_suite import MultiEventSuite
from tests.providers.extremes_suite import ExtremeInputSuite, dumps
from tests.providers.signing import fixture
from tests.providers.token_suite import BASIC_SECRET, TOKEN, TokenProviderSecuritySuite, basic

URL = "https://dlr.example/hooks/sinch-eu/"


def sinch_request(body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", url=URL, headers={"content-type": "application/json"}, body=body)


def payload(name: str) -> dict[str, Any]:
    return json.loads(fixture("sinch", name))


def parse(data: dict[str, Any]) -> list[ReceiptEvent]:
    return sinch.adapter.parse(sinch_request(json.dumps(data).encode()))


def parse_one(data: dict[str, Any]) -> ReceiptEvent:
    (event,) = parse(data)
    return event


class TestSinchTokens(TokenProviderSecuritySuite):
    adapter = sinch.adapter

    def make_request(self) -> WebhookRequest:
        return sinch_request(fixture("sinch", "recipient_delivered.json"))


# Per-recipient reports


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "recipient_dispatched.json",
            ReceiptEvent(
                provider_message_id="01JB1J1M5BM5XQ8Q0ZWBM44E14",
                provider_status="Dispatched",
                status=Status.SENT,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 2, 41, 148000, tzinfo=UTC),
                event_id=sinch.event_id(
                    "01JB1J1M5BM5XQ8Q0ZWBM44E14",
                    "+447700900123",
                    "Dispatched",
                    "",
                    datetime(2026, 11, 26, 10, 2, 41, 148000, tzinfo=UTC),
                ),
                permanent=None,
                raw="",
                extra={"recipient": "+447700900123", "client_reference": "otp-login-8841", "operator": None},
            ),
        ),
        (
            "recipient_delivered.json",
            ReceiptEvent(
                provider_message_id="01JB1J1M5BM5XQ8Q0ZWBM44E14",
                provider_status="Delivered",
                status=Status.DELIVERED,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 2, tzinfo=UTC),
                event_id=sinch.event_id(
                    "01JB1J1M5BM5XQ8Q0ZWBM44E14",
                    "+447700900123",
                    "Delivered",
                    "",
                    datetime(2026, 11, 26, 10, 2, tzinfo=UTC),
                ),
                permanent=None,
                raw="",
                extra={"recipient": "+447700900123", "client_reference": "otp-login-8841", "operator": "23410"},
                network="23410",
            ),
        ),
        (
            "recipient_failed.json",
            ReceiptEvent(
                provider_message_id="01JB1K7Q2ZT4W9N6D3XHC8RV5A",
                provider_status="Failed",
                status=Status.UNDELIVERED,
                error_code="402",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 5, 11, 500000, tzinfo=UTC),
                event_id=sinch.event_id(
                    "01JB1K7Q2ZT4W9N6D3XHC8RV5A",
                    "+447700900456",
                    "Failed",
                    "402",
                    datetime(2026, 11, 26, 10, 5, 11, 500000, tzinfo=UTC),
                ),
                permanent=None,
                raw="",
                extra={"recipient": "+447700900456", "client_reference": "otp-login-8842", "operator": None},
            ),
        ),
    ],
)
def test_recipient_report_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    assert sinch.adapter.parse(sinch_request(fixture("sinch", name))) == [expected]


def test_event_id_is_a_hash_of_batch_recipient_status_code_and_time() -> None:
    key = sinch.event_id("B1", "+447700900123", "Delivered", "", datetime(2026, 11, 26, 10, 2, tzinfo=UTC))
    assert key.startswith("sha256:")
    assert len(key) == len("sha256:") + 64
    # The recipient is compared without its `+`: Sinch writes it both ways.
    assert key == sinch.event_id("B1", "447700900123", "Delivered", "", datetime(2026, 11, 26, 10, 2, tzinfo=UTC))
    assert key != sinch.event_id("B1", "+447700900124", "Delivered", "", datetime(2026, 11, 26, 10, 2, tzinfo=UTC))


def test_two_recipients_of_one_batch_with_the_same_status_and_time_are_two_events() -> None:
    first = payload("recipient_delivered.json")
    second = {**first, "recipient": "+447700900999"}
    assert parse_one(first).dedupe_key() != parse_one(second).dedupe_key()
    assert parse_one(first).dedupe_key() == parse_one(dict(first)).dedupe_key()


def test_time_falls_back_on_at_without_operator_status_at_and_is_dropped_when_unreadable() -> None:
    data = payload("recipient_delivered.json")
    data.pop("operator_status_at")
    assert parse_one(data).provider_timestamp == datetime(2026, 11, 26, 10, 2, 42, 148000, tzinfo=UTC)
    assert parse_one({**data, "at": "yesterday"}).provider_timestamp is None
    assert parse_one({**data, "at": "2026-11-26T10:02:42"}).provider_timestamp == datetime(
        2026, 11, 26, 10, 2, 42, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("status", "normalized"),
    [
        ("Queued", Status.ACCEPTED),
        ("Dispatched", Status.SENT),
        ("Delivered", Status.DELIVERED),
        ("Failed", Status.UNDELIVERED),
        ("Deleted", Status.UNDELIVERED),
        ("Aborted", Status.REJECTED),
        ("Rejected", Status.REJECTED),
        ("Cancelled", Status.FAILED),
        ("Expired", Status.EXPIRED),
        ("Unknown", Status.UNKNOWN),
        ("DELIVERED", Status.DELIVERED),
        ("Teleported", Status.UNKNOWN),
    ],
)
def test_statuses_map_to_the_normalized_vocabulary(status: str, normalized: Status) -> None:
    event = parse_one({**payload("recipient_failed.json"), "status": status})
    assert (event.provider_status, event.status) == (status, normalized)


@pytest.mark.parametrize(
    ("code", "error_code"),
    [(0, ""), (400, ""), (401, ""), (402, "402"), (404, "404"), (413, "413"), ("408", "408"), (None, "")],
)
def test_code_is_the_error_code_unless_it_names_a_state(code: Any, error_code: str) -> None:
    assert parse_one({**payload("recipient_failed.json"), "code": code}).error_code == error_code


def test_mms_recipient_report_is_read_like_an_sms_one() -> None:
    data = payload("recipient_delivered.json")
    assert parse_one({**data, "type": "recipient_delivery_report_mms"}) == parse_one(data)


# Batch reports


def test_full_batch_report_gives_one_event_per_listed_recipient() -> None:
    data = payload("batch_full.json")
    events = parse(data)
    assert [
        (e.provider_message_id, e.provider_status, e.status, e.error_code, e.provider_timestamp) for e in events
    ] == [
        ("01JB1M3S8VY2P5K0E7FQJ6TW4C", "Delivered", Status.DELIVERED, "", None),
        ("01JB1M3S8VY2P5K0E7FQJ6TW4C", "Delivered", Status.DELIVERED, "", None),
        ("01JB1M3S8VY2P5K0E7FQJ6TW4C", "Expired", Status.EXPIRED, "406", None),
    ]
    assert [e.extra for e in events] == [
        {"recipient": r, "client_reference": "campaign-nov-26", "operator": None}
        for r in ("447700900111", "447700900222", "447700900333")
    ]
    assert [e.event_id for e in events] == [
        sinch.event_id("01JB1M3S8VY2P5K0E7FQJ6TW4C", "447700900111", "Delivered", "", None),
        sinch.event_id("01JB1M3S8VY2P5K0E7FQJ6TW4C", "447700900222", "Delivered", "", None),
        sinch.event_id("01JB1M3S8VY2P5K0E7FQJ6TW4C", "447700900333", "Expired", "406", None),
    ]
    # Each event keeps the report cut to its recipient; what all share is not repeated.
    assert json.loads(events[2].raw) == {
        "type": "delivery_report_sms",
        "batch_id": "01JB1M3S8VY2P5K0E7FQJ6TW4C",
        "statuses": [{"code": 406, "count": 1, "recipients": ["447700900333"], "status": "Expired"}],
    }
    assert all(e.permanent is None and e.error_description == "" for e in events)


def test_summary_batch_report_without_recipients_gives_no_event() -> None:
    assert parse(payload("batch_summary.json")) == []


def test_batch_report_listing_more_recipients_than_the_bound_is_refused() -> None:
    data = payload("batch_full.json")
    data["statuses"][0]["recipients"] = [f"4477009{i:05d}" for i in range(sinch.adapter.max_events + 1)]
    with pytest.raises(PayloadError, match="more than"):
        parse(data)


# Refusals


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "object"),
        ({**payload("recipient_delivered.json"), "type": "mo_text"}, "not a Sinch delivery report"),
        ({k: v for k, v in payload("recipient_delivered.json").items() if k != "type"}, "not a Sinch"),
        ({**payload("recipient_delivered.json"), "batch_id": ""}, "batch_id"),
        ({**payload("recipient_delivered.json"), "batch_id": 7}, "batch_id"),
        ({**payload("recipient_delivered.json"), "recipient": None}, "recipient"),
        ({**payload("recipient_delivered.json"), "status": ""}, "status"),
        ({**payload("recipient_delivered.json"), "code": 1.5}, "code"),
        ({**payload("recipient_delivered.json"), "code": True}, "code"),
        ({**payload("batch_full.json"), "statuses": None}, "statuses"),
        ({**payload("batch_full.json"), "statuses": [{"code": 0, "recipients": ["4477"]}]}, "status"),
        ({**payload("batch_full.json"), "statuses": [{"status": "Delivered", "recipients": "4477"}]}, "recipients"),
        ({**payload("batch_full.json"), "statuses": [{"status": "Delivered", "recipients": [""]}]}, "recipients"),
        ({**payload("recipient_delivered.json"), "batch_id": "B" * 129}, "provider_message_id"),
    ],
)
def test_malformed_report_is_refused(data: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse(data)


def test_code_sent_as_text_is_kept_verbatim() -> None:
    assert parse_one({**payload("recipient_failed.json"), "code": "E402"}).error_code == "E402"


def test_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(PayloadError, match="JSON"):
        sinch.adapter.parse(sinch_request(b"type=recipient_delivery_report_sms"))


def test_unpaired_surrogate_escape_in_a_stored_field_is_refused() -> None:
    report = json.loads(fixture("sinch", "recipient_delivered.json"))
    # json.dumps cannot write a lone surrogate escape: put it in as the provider's text would be.
    body = json.dumps({**report, "batch_id": "BATCH-ID"}).replace("BATCH-ID", "01JB\\ud83d").encode()
    with pytest.raises(PayloadError, match="not valid Unicode"):
        sinch.adapter.parse(sinch_request(body))


# Through the endpoint


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["path", "header", "basic"])
def test_report_posted_with_the_token_is_stored_and_moves_the_message(client, where: str) -> None:
    secret = BASIC_SECRET if where == "basic" else TOKEN
    connection = ConnectionFactory(provider="sinch", secrets=[secret])
    message = MessageFactory(connection=connection, provider_message_id="01JB1K7Q2ZT4W9N6D3XHC8RV5A")
    path = f"/hooks/{connection.slug}/{TOKEN}/" if where == "path" else f"/hooks/{connection.slug}/"
    headers = {"path": {}, "header": {"X-DLR-Token": TOKEN}, "basic": {"Authorization": basic(BASIC_SECRET)}}[where]
    body = fixture("sinch", "recipient_failed.json")
    response = client.post(path, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert response.json()["received"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider_message_id, receipt.provider_status, receipt.status, receipt.error_code) == (
        "01JB1K7Q2ZT4W9N6D3XHC8RV5A",
        "Failed",
        Status.UNDELIVERED,
        "402",
    )
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 5, 11, 500000, tzinfo=UTC)
    assert receipt.raw_body == body.decode()
    assert "authorization" not in receipt.headers
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "402")


@pytest.mark.django_db
def test_full_batch_report_stores_one_receipt_per_recipient_and_a_retry_none(client) -> None:
    connection = ConnectionFactory(provider="sinch", secrets=[TOKEN])
    url = f"/hooks/{connection.slug}/{TOKEN}/"
    body = fixture("sinch", "batch_full.json")
    first = client.post(url, data=body, content_type="application/json")
    retry = client.post(url, data=body, content_type="application/json")
    assert (first.status_code, first.json()["received"], first.json()["duplicates"]) == (200, 3, 0)
    assert (retry.status_code, retry.json()["received"], retry.json()["duplicates"]) == (200, 3, 3)
    assert Receipt.objects.count() == 3


@pytest.mark.django_db
def test_summary_batch_report_is_answered_200_with_nothing_stored(client) -> None:
    connection = ConnectionFactory(provider="sinch", secrets=[TOKEN])
    response = client.post(
        f"/hooks/{connection.slug}/{TOKEN}/",
        data=fixture("sinch", "batch_summary.json"),
        content_type="application/json",
    )
    assert (response.status_code, response.json()["received"]) == (200, 0)
    assert not Receipt.objects.exists()


class TestSinchExtremes(ExtremeInputSuite):
    provider = "sinch"
    secret = TOKEN
    message_id = "01JB1K7Q2ZT4W9N6D3XHC8RV5A"

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        data = payload("recipient_failed.json")
        data["batch_id"] = slots.get("message_id", data["batch_id"])
        data["status"] = slots.get("status", data["status"])
        data["code"] = "<<number>>" if "number" in slots else slots.get("error_code", data["code"])
        if "time" in slots:
            data["at"] = data["operator_status_at"] = slots["time"]
        body = dumps(data, number=slots.get("number", ""))
        return client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")


class TestSinchBatchBounds(MultiEventSuite):
    adapter = sinch.adapter
    secret = TOKEN

    def request(self, count: int, *, filler: int = 0) -> tuple[str, bytes, dict[str, str]]:
        # A full report of one batch: the client reference is shared by all its recipients.
        data = payload("batch_full.json")
        data["statuses"] = [
            {"code": 0, "count": count, "recipients": [f"4477009{i:05d}" for i in range(count)], "status": "Delivered"}
        ]
        data["client_reference"] = "campaign-" + "x" * filler
        return "{token}/", json.dumps(data).encode(), {"content-type": "application/json"}
