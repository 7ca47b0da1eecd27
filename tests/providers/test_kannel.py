"""Kannel dlr-url callbacks: the query we ask Kannel to fill in, the DLR types, the SMPP receipt
in %A, the token, and the endpoint (Kannel calls with GET)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import kannel
from receipts.providers.base import PayloadError, ReceiptEvent, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite, fill
from tests.providers.signing import fixture, form_fixture
from tests.providers.token_suite import TOKEN, TokenProviderSecuritySuite

URL = "https://dlr.example/hooks/kannel-eu/"


def kannel_request(query: bytes | str, *, method: str = "GET") -> WebhookRequest:
    query = query.decode() if isinstance(query, bytes) else query
    return WebhookRequest(method=method, url=f"{URL}?{query}", headers={"user-agent": "Kannel/1.4.5"}, body=b"")


def edit_query(query: bytes, *, drop: tuple[str, ...] = (), **changes: str) -> str:
    fields = [(k, v) for k, v in parse_qsl(query.decode(), keep_blank_values=True) if k not in drop]
    fields = [(k, changes.pop(k, v)) for k, v in fields]
    return urlencode(fields + list(changes.items()))


def parse_one(query: bytes | str) -> ReceiptEvent:
    (event,) = kannel.adapter.parse(kannel_request(query))
    return event


class TestKannelTokens(TokenProviderSecuritySuite):
    adapter = kannel.adapter

    def make_request(self) -> WebhookRequest:
        return kannel_request(fixture("kannel", "delivered.txt"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "delivered.txt",
            ReceiptEvent(
                provider_message_id="3f9c0a52-1d7e-4b8a-9e61-2c4d5b7a8f10",
                provider_status="1/DELIVRD",
                status=Status.DELIVERED,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 1, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"stat": "DELIVRD", "smsc": "smpp-eu1", "smsc_id": "0123456789"},
            ),
        ),
        (
            "expired.txt",
            ReceiptEvent(
                provider_message_id="8b2e4f60-5a9c-4d13-b7e0-9f1a3c6d2e84",
                provider_status="2/EXPIRED",
                status=Status.EXPIRED,
                error_code="027",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"stat": "EXPIRED", "smsc": "smpp-eu1", "smsc_id": "0987654321"},
            ),
        ),
        (
            "smsc_ack.txt",
            ReceiptEvent(
                provider_message_id="c41d7a90-2e6b-4f85-a3c9-7b0e5d1f8a26",
                provider_status="8",
                status=Status.SENT,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"stat": "", "smsc": "smpp-eu1", "smsc_id": "0555555555"},
            ),
        ),
        (
            "smsc_nack.txt",
            ReceiptEvent(
                provider_message_id="e7a05c3b-9d41-4b2f-8c6e-1a9f3d7b5e02",
                provider_status="16",
                status=Status.REJECTED,
                error_code="0x0000000b",
                error_description="NACK/0x0000000b/Invalid Destination Address",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, 2, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"stat": "", "smsc": "smpp-eu1", "smsc_id": ""},
            ),
        ),
    ],
)
def test_dlr_url_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    assert kannel.adapter.parse(kannel_request(fixture("kannel", name))) == [expected]


@pytest.mark.parametrize(
    ("dlr_type", "status"),
    [
        ("1", Status.DELIVERED),
        ("2", Status.UNDELIVERED),
        ("4", Status.ACCEPTED),
        ("8", Status.SENT),
        ("16", Status.REJECTED),
        ("3", Status.UNKNOWN),
        ("x", Status.UNKNOWN),
    ],
)
def test_dlr_types_map_to_the_normalized_vocabulary(dlr_type: str, status: Status) -> None:
    event = parse_one(edit_query(fixture("kannel", "smsc_ack.txt"), type=dlr_type))
    assert (event.provider_status, event.status) == (dlr_type, status)


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("UNDELIV", Status.UNDELIVERED),
        ("EXPIRED", Status.EXPIRED),
        ("REJECTD", Status.REJECTED),
        ("DELETED", Status.FAILED),
        ("UNKNOWN", Status.UNKNOWN),
        ("SOMETHING", Status.UNDELIVERED),
    ],
)
def test_negative_type_takes_the_precise_outcome_from_the_receipt_stat(stat: str, status: Status) -> None:
    answer = f"id:0987654321 sub:001 dlvrd:000 stat:{stat} err:001 text:"
    event = parse_one(edit_query(fixture("kannel", "expired.txt"), answer=answer))
    assert (event.provider_status, event.status, event.error_code) == (f"2/{stat}", status, "001")


def test_positive_type_is_not_overridden_by_the_receipt_stat() -> None:
    # Kannel decided from the SMSC's message_state TLV; a stat disagreeing with it stays on record.
    event = parse_one(edit_query(fixture("kannel", "delivered.txt"), answer="id:1 stat:UNDELIV err:000"))
    assert (event.provider_status, event.status) == ("1/UNDELIV", Status.DELIVERED)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("NACK/0x00000058/Throttling error", "0x00000058"),
        ("NACK/0x0000000b/Invalid Destination Address", "0x0000000b"),
        ("NACK/0x45", "0x45"),
        # Not an SMPP code: kept as the description only.
        ("NACK/Connection refused", ""),
        ("NACK/0xZZ/bad", ""),
        ("NACK/0x123456789/too long", ""),
    ],
)
def test_smsc_nack_keeps_its_smpp_error_code(answer: str, code: str) -> None:
    event = parse_one(edit_query(fixture("kannel", "smsc_nack.txt"), answer=answer))
    assert (event.status, event.error_code, event.error_description) == (Status.REJECTED, code, answer)


def test_nack_code_is_not_read_from_a_positive_type() -> None:
    event = parse_one(edit_query(fixture("kannel", "smsc_ack.txt"), answer="NACK/0x00000058/Throttling error"))
    assert (event.status, event.error_code) == (Status.SENT, "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "message_id", "reason", "error_class"),
    [
        ("smsc_nack_throttled.txt", "5b1e9c7a-0f2d-4e63-a8b4-7c9d1e2f3a40", "throttled", "temporary"),
        ("smsc_nack.txt", "e7a05c3b-9d41-4b2f-8c6e-1a9f3d7b5e02", "invalid_number", "permanent"),
    ],
)
def test_smsc_nack_is_classified_by_the_catalogs_smpp_rows(
    client, name: str, message_id: str, reason: str, error_class: str
) -> None:
    connection = ConnectionFactory(provider="kannel", secrets=[TOKEN])
    message = MessageFactory(connection=connection, provider_message_id=message_id)
    response = client.get(f"/hooks/{connection.slug}/{TOKEN}/?{fixture('kannel', name).decode()}")
    assert response.status_code == 200
    receipt = Receipt.objects.get()
    assert (receipt.status, receipt.reason, receipt.error_class) == (Status.REJECTED, reason, error_class)
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code, message.reason, message.error_class) == (
        Status.REJECTED,
        receipt.error_code,
        reason,
        error_class,
    )


def test_normalize_status_reads_back_what_parse_stored() -> None:
    for name in ("delivered.txt", "expired.txt", "smsc_ack.txt", "smsc_nack.txt"):
        event = parse_one(fixture("kannel", name))
        assert kannel.adapter.normalize_status(event.provider_status) == event.status


def test_time_falls_back_on_the_receipt_done_date_without_ts() -> None:
    event = parse_one(edit_query(fixture("kannel", "expired.txt"), drop=("ts",)))
    assert event.provider_timestamp == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("ts", ["", "abc", "-5", "99999999999999999999"])
def test_unreadable_ts_is_dropped(ts: str) -> None:
    event = parse_one(edit_query(fixture("kannel", "smsc_ack.txt"), ts=ts))
    assert event.provider_timestamp is None
    assert event.status == Status.SENT


@pytest.mark.parametrize(("drop", "reason"), [(("id",), "id"), (("type",), "type")])
def test_dlr_url_without_id_or_type_is_refused(drop: tuple[str, ...], reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_one(edit_query(fixture("kannel", "delivered.txt"), drop=drop))


def test_unexpanded_escape_codes_do_not_refuse_the_receipt() -> None:
    # A Kannel that does not know %F leaves it as is; only `id` and `type` matter.
    event = parse_one(edit_query(fixture("kannel", "smsc_ack.txt"), smsc_id="%F", ts="%T"))
    assert (event.status, event.provider_timestamp, event.extra["smsc_id"]) == (Status.SENT, None, "%F")


def test_post_with_the_same_query_is_read_the_same_way() -> None:
    query = fixture("kannel", "delivered.txt")
    assert kannel.adapter.parse(kannel_request(query, method="POST")) == [parse_one(query)]


def test_retried_callback_has_the_same_dedupe_key_and_the_next_type_another() -> None:
    query = fixture("kannel", "smsc_ack.txt")
    assert parse_one(query).dedupe_key() == parse_one(query).dedupe_key()
    assert parse_one(query).dedupe_key() != parse_one(edit_query(query, type="1")).dedupe_key()


# Through the endpoint


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["path", "header"])
def test_kannel_get_with_the_token_is_stored_and_moves_the_message(client, where: str) -> None:
    connection = ConnectionFactory(provider="kannel", secrets=[TOKEN])
    message = MessageFactory(connection=connection, provider_message_id="8b2e4f60-5a9c-4d13-b7e0-9f1a3c6d2e84")
    query = fixture("kannel", "expired.txt").decode()
    path = f"/hooks/{connection.slug}/{TOKEN}/" if where == "path" else f"/hooks/{connection.slug}/"
    headers = {} if where == "path" else {"X-DLR-Token": TOKEN}
    response = client.get(f"{path}?{query}", headers=headers)
    assert response.status_code == 200
    assert response.json()["received"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider_message_id, receipt.provider_status, receipt.status, receipt.error_code) == (
        "8b2e4f60-5a9c-4d13-b7e0-9f1a3c6d2e84",
        "2/EXPIRED",
        Status.EXPIRED,
        "027",
    )
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    # A GET has no body: the query is what Kannel sent, but for the message text in its %A.
    assert receipt.raw_body == re.sub(r"(text%3A)[^&]*", r"\1(not kept)", query, flags=re.IGNORECASE)
    assert "text%3A(not kept)" in receipt.raw_body
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code) == (Status.EXPIRED, "027")


@pytest.mark.django_db
def test_kannel_get_with_a_wrong_token_is_refused_and_nothing_is_stored(client) -> None:
    connection = ConnectionFactory(provider="kannel", secrets=[TOKEN])
    response = client.get(f"/hooks/{connection.slug}/not-the-token/?{fixture('kannel', 'delivered.txt').decode()}")
    assert response.status_code == 401
    assert not Receipt.objects.exists()


class TestKannelExtremes(ExtremeInputSuite):
    provider = "kannel"
    secret = TOKEN
    message_id = "3f9c0a52-1d7e-4b8a-9e61-2c4d5b7a8f10"
    fields = {"time": ("ts",), "number": ("type",), "message_id": ("id",), "status": ("type",)}

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        # The SMSC's receipt in %A carries the done date and err; `ts` is Kannel's own time.
        answer = (
            "id:0123456789 sub:001 dlvrd:001 submit date:2611261000 "
            f"done date:{slots.get('time', '2611261001')} stat:DELIVRD err:{slots.get('error_code', '000')} text:Hi"
        )
        fields = fill(form_fixture("kannel", "delivered.txt"), slots, self.fields)
        return client.get(f"/hooks/{connection.slug}/{TOKEN}/?{urlencode({**fields, 'answer': answer})}")
