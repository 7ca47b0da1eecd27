"""SMPP receipt text relayed over HTTP: the receipt parser (providers.md §2.9 strings and the
variants SMSCs send), the ways a gateway can hand it over, the token, and the endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import smpp_text
from receipts.providers.base import PayloadError, ReceiptEvent, WebhookRequest
from receipts.providers.smpp_text import SmppReceipt, parse_receipt, parse_receipt_date
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.extremes_suite import ExtremeInputSuite
from tests.providers.signing import fixture
from tests.providers.token_suite import TOKEN, TokenProviderSecuritySuite

URL = "https://dlr.example/hooks/smsc-gw/"
SPEC_TEXT = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:Hello"
)


def text_request(body: bytes, *, content_type: str = "text/plain", method: str = "POST", url: str = URL):
    return WebhookRequest(method=method, url=url, headers={"content-type": content_type}, body=body)


def parse_one(body: bytes, **kw) -> ReceiptEvent:
    (event,) = smpp_text.adapter.parse(text_request(body, **kw))
    return event


class TestSmppTextTokens(TokenProviderSecuritySuite):
    adapter = smpp_text.adapter

    def make_request(self) -> WebhookRequest:
        return text_request(fixture("smpp_text", "delivered.txt"))


# The receipt parser


def test_spec_receipt_text_is_read_field_by_field() -> None:
    assert parse_receipt(SPEC_TEXT) == SmppReceipt(
        id="0123456789",
        stat="DELIVRD",
        err="000",
        sub="001",
        dlvrd="001",
        submit_date="2401011200",
        done_date="2401011201",
        text="Hello",
    )


def test_everything_after_text_is_the_text_even_what_looks_like_a_field() -> None:
    receipt = parse_receipt("id:42 stat:UNDELIV err:001 text:code id:99 stat:DELIVRD  ok")
    assert (receipt.id, receipt.stat, receipt.err, receipt.text) == (
        "42",
        "UNDELIV",
        "001",
        "code id:99 stat:DELIVRD  ok",
    )


def test_keys_are_read_in_any_case() -> None:
    receipt = parse_receipt(
        "ID:ab12 Sub:001 DLVRD:000 Submit Date:2611241000 DONE DATE:2611261000 Stat:EXPIRED Err:0 Text:x"
    )
    assert (receipt.id, receipt.stat, receipt.err, receipt.submit_date, receipt.done_date, receipt.text) == (
        "ab12",
        "EXPIRED",
        "0",
        "2611241000",
        "2611261000",
        "x",
    )


def test_missing_optional_fields_are_empty() -> None:
    # Jasmin's re-emitted receipts carry only these fields (operations.py getReceipt).
    receipt = parse_receipt("id:5f2a submit date:2611261000 done date:2611261001 stat:DELIVRD err:000")
    assert receipt == SmppReceipt(
        id="5f2a", stat="DELIVRD", err="000", submit_date="2611261000", done_date="2611261001"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sub:001 dlvrd:001 stat:DELIVRD err:000 text:x", "id"),
        ("id: stat:DELIVRD", "id"),
        ("id:0123456789 sub:001 err:000 text:stat:DELIVRD", "stat"),
        ("hello world", "id"),
        ("", "id"),
    ],
)
def test_receipt_without_id_or_stat_is_refused(text: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_receipt(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2401011201", datetime(2024, 1, 1, 12, 1, tzinfo=UTC)),
        ("240101120159", datetime(2024, 1, 1, 12, 1, 59, tzinfo=UTC)),
        ("20240101120159", datetime(2024, 1, 1, 12, 1, 59, tzinfo=UTC)),
        ("2413011201", None),
        ("24010112", None),
        ("24010112015", None),
        ("2401-01-12", None),
        ("", None),
    ],
)
def test_receipt_dates_of_10_or_12_digits_are_read_as_utc(value: str, expected: datetime | None) -> None:
    assert parse_receipt_date(value) == expected


# Parsing requests


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "delivered.txt",
            ReceiptEvent(
                provider_message_id="0123456789",
                provider_status="DELIVRD",
                status=Status.DELIVERED,
                error_code="",
                error_description="",
                provider_timestamp=datetime(2024, 1, 1, 12, 1, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"sub": "001", "dlvrd": "001"},
            ),
        ),
        (
            "undelivered.txt",
            ReceiptEvent(
                provider_message_id="7f3a2c91d4e8",
                provider_status="UNDELIV",
                status=Status.UNDELIVERED,
                error_code="027",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 5, 12, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"sub": "001", "dlvrd": "000"},
            ),
        ),
        (
            "expired_uppercase.txt",
            ReceiptEvent(
                provider_message_id="A1B2C3D4",
                provider_status="EXPIRED",
                status=Status.EXPIRED,
                error_code="000",
                error_description="",
                provider_timestamp=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                event_id="",
                permanent=None,
                raw="",
                extra={"sub": "001", "dlvrd": "000"},
            ),
        ),
    ],
)
def test_receipt_body_fixture_parses_to_one_event_with_every_field(name: str, expected: ReceiptEvent) -> None:
    assert smpp_text.adapter.parse(text_request(fixture("smpp_text", name))) == [expected]


def test_receipt_in_a_form_field_is_read_like_the_body() -> None:
    form = parse_one(fixture("smpp_text", "delivered_form.txt"), content_type="application/x-www-form-urlencoded")
    assert form == parse_one(fixture("smpp_text", "delivered.txt"))


@pytest.mark.parametrize("field", ["dlr", "receipt"])
def test_receipt_in_a_query_parameter_is_read_on_get(field: str) -> None:
    event = parse_one(b"", method="GET", url=f"{URL}?{urlencode({field: SPEC_TEXT})}", content_type="")
    assert (event.provider_message_id, event.status, event.error_code) == ("0123456789", Status.DELIVERED, "")


def test_receipt_body_with_a_charset_and_trailing_newline_is_read() -> None:
    event = parse_one(SPEC_TEXT.encode() + b"\r\n", content_type="text/plain; charset=utf-8")
    assert (event.provider_message_id, event.status) == ("0123456789", Status.DELIVERED)


def test_text_in_another_charset_does_not_refuse_the_receipt() -> None:
    event = parse_one(b"id:77 stat:DELIVRD err:000 text:Caf\xe9")
    assert (event.provider_message_id, event.status) == ("77", Status.DELIVERED)


@pytest.mark.parametrize(
    ("request_kw"),
    [
        {"body": b""},
        {"body": b"   \n"},
        {"body": b"other=1", "content_type": "application/x-www-form-urlencoded"},
        {"body": b"", "method": "GET", "content_type": ""},
    ],
    ids=["empty-body", "blank-body", "form-without-field", "get-without-field"],
)
def test_request_without_receipt_text_is_refused(request_kw: dict) -> None:
    with pytest.raises(PayloadError, match="no receipt text"):
        smpp_text.adapter.parse(text_request(**request_kw))


def test_oversized_receipt_text_is_refused() -> None:
    with pytest.raises(PayloadError, match="longer than"):
        parse_one(SPEC_TEXT.encode() + b"x" * 3000)


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", Status.DELIVERED),
        ("UNDELIV", Status.UNDELIVERED),
        ("EXPIRED", Status.EXPIRED),
        ("REJECTD", Status.REJECTED),
        ("DELETED", Status.FAILED),
        ("UNKNOWN", Status.UNKNOWN),
        ("ENROUTE", Status.SENT),
        ("ACCEPTD", Status.SENT),
        ("SCHEDULED", Status.SENT),
        ("ACKED", Status.SENT),
        ("BUFFRED", Status.SENT),
        ("BUFFERD", Status.SENT),
        ("delivrd", Status.DELIVERED),
        ("SKIPPED", Status.UNKNOWN),
        ("NEWSTATE", Status.UNKNOWN),
    ],
)
def test_stat_values_map_to_the_normalized_vocabulary(stat: str, status: Status) -> None:
    event = parse_one(f"id:1 stat:{stat} err:000".encode())
    assert (event.provider_status, event.status) == (stat, status)


@pytest.mark.parametrize(
    ("stat", "err", "code"),
    [
        ("DELIVRD", "000", ""),
        ("DELIVRD", "0", ""),
        ("DELIVRD", "", ""),
        ("DELIVRD", "001", "001"),
        ("UNDELIV", "000", "000"),
        ("UNDELIV", "0x0B", "0x0B"),
    ],
)
def test_err_is_kept_verbatim_except_all_zeros_on_a_delivered_receipt(stat: str, err: str, code: str) -> None:
    assert parse_one(f"id:1 stat:{stat} err:{err}".encode()).error_code == code


def test_retried_receipt_has_the_same_dedupe_key_and_the_next_state_another() -> None:
    enroute = parse_one(b"id:1 stat:ENROUTE err:000 done date:2611261000")
    assert enroute.dedupe_key() == parse_one(b"id:1 stat:ENROUTE err:000 done date:2611261000").dedupe_key()
    assert enroute.dedupe_key() != parse_one(b"id:1 stat:DELIVRD err:000 done date:2611261000").dedupe_key()


@pytest.mark.parametrize("text", ["id:" + "9" * 129 + " stat:DELIVRD", "id:1 stat:DELIVRD err:" + "1" * 33])
def test_field_that_does_not_fit_its_column_is_refused(text: str) -> None:
    with pytest.raises(PayloadError):
        parse_one(text.encode())


# Through the endpoint


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["path", "header"])
def test_receipt_text_posted_with_the_token_is_stored_and_moves_the_message(client, where: str) -> None:
    connection = ConnectionFactory(provider="smpp-text", secrets=[TOKEN])
    message = MessageFactory(connection=connection, provider_message_id="7f3a2c91d4e8")
    path = f"/hooks/{connection.slug}/{TOKEN}/" if where == "path" else f"/hooks/{connection.slug}/"
    headers = {} if where == "path" else {"X-DLR-Token": TOKEN}
    body = fixture("smpp_text", "undelivered.txt")
    response = client.post(path, data=body, content_type="text/plain", headers=headers)
    assert response.status_code == 200
    assert response.json()["received"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider_message_id, receipt.provider_status, receipt.status, receipt.error_code) == (
        "7f3a2c91d4e8",
        "UNDELIV",
        Status.UNDELIVERED,
        "027",
    )
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 5, 12, tzinfo=UTC)
    # Kept as received but for the message's own text, which the SMSC copies after `text:`.
    assert receipt.raw_body == body.decode().replace("Your code is 4821", "(not kept)")
    assert "4821" not in receipt.raw_body
    assert "x-dlr-token" not in receipt.headers
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code) == (Status.UNDELIVERED, "027")


@pytest.mark.django_db
def test_receipt_text_in_a_get_query_is_stored(client) -> None:
    connection = ConnectionFactory(provider="smpp-text", secrets=[TOKEN])
    MessageFactory(connection=connection, provider_message_id="0123456789")
    response = client.get(f"/hooks/{connection.slug}/{TOKEN}/?dlr={quote(SPEC_TEXT)}")
    assert response.status_code == 200
    assert Message.objects.get().status == Status.DELIVERED


@pytest.mark.django_db
def test_receipt_text_without_the_token_is_refused_and_nothing_is_stored(client) -> None:
    connection = ConnectionFactory(provider="smpp-text", secrets=[TOKEN])
    response = client.post(f"/hooks/{connection.slug}/", data=SPEC_TEXT, content_type="text/plain")
    assert response.status_code == 401
    assert not Receipt.objects.exists()


class TestSmppTextExtremes(ExtremeInputSuite):
    provider = "smpp-text"
    secret = TOKEN
    message_id = "7f3a2c91d4e8"

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        text = (
            f"id:{slots.get('message_id', self.message_id)} sub:001 dlvrd:000 submit date:261126100000 "
            f"done date:{slots.get('time', '261126100512')} stat:{slots.get('status', 'UNDELIV')} "
            f"err:{slots.get('error_code', slots.get('number', '027'))} Text:Your code is 4821"
        )
        return client.post(
            f"/hooks/{connection.slug}/", data=text.encode(), content_type="text/plain", headers={"X-DLR-Token": TOKEN}
        )


@pytest.mark.parametrize(
    ("raw", "encoded", "kept"),
    [
        ("id:1 stat:DELIVRD err:000 text:Your code is 4821", False, "id:1 stat:DELIVRD err:000 text:(not kept)"),
        ("id:1 stat:DELIVRD TEXT: 4821 & more", False, "id:1 stat:DELIVRD TEXT:(not kept)"),
        (
            "dlr=id%3A1+stat%3ADELIVRD+text%3AYour+code+4821&x=1",
            True,
            "dlr=id%3A1+stat%3ADELIVRD+text%3A(not kept)&x=1",
        ),
        ("id:1 stat:DELIVRD err:000", False, "id:1 stat:DELIVRD err:000"),
    ],
)
def test_the_message_text_a_receipt_carries_is_never_kept(raw: str, encoded: bool, kept: str) -> None:
    assert smpp_text.without_message_text(raw, encoded=encoded) == kept
