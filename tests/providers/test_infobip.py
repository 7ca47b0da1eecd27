"""Infobip delivery reports: batches of reports (real shapes under tests/fixtures/infobip/), the
status names and groups, error ids and the provider's `permanent` flag, the token, and the
endpoint (batches stored report by report, retried reports counted as duplicates)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.http import HttpResponse
from django.test import Client

from receipts.models import Connection, Message, Receipt
from receipts.providers import infobip
from receipts.providers.base import PayloadError, ReceiptEvent, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.providers.batch_suite import MultiEventSuite
from tests.providers.extremes_suite import ExtremeInputSuite, dumps
from tests.providers.signing import fixture
from tests.providers.token_suite import TOKEN, TokenProviderSecuritySuite

URL = "https://dlr.example/hooks/infobip-eu/"


# The recorded reports were done on 2026-11-26 between 10:00 and 12:01 UTC, and a provider time
# is kept only up to a day ahead of the clock: every test here runs that afternoon.
FIXTURES_AFTERNOON = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with time_machine.travel(FIXTURES_AFTERNOON, tick=True):
        yield


def infobip_request(body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", url=URL, headers={"content-type": "application/json"}, body=body)


def report(name: str = "delivered.json", index: int = 0) -> dict[str, Any]:
    return json.loads(fixture("infobip", name))["results"][index]


def body_of(*results: dict[str, Any]) -> bytes:
    return json.dumps({"results": list(results)}).encode()


def parse_one(result: dict[str, Any]) -> ReceiptEvent:
    (event,) = infobip.adapter.parse(infobip_request(body_of(result)))
    return event


def edited(result: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a report with top-level fields set (None removes) and `status_name=` etc."""
    out = copy.deepcopy(result)
    for key, value in changes.items():
        part, _, field = key.partition("_")
        if part in ("status", "error") and field:
            out[part][field] = value
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def sent(name: str, index: int = 0) -> str:
    """The fixture's index-th report exactly as the file writes it (spacing, escapes): the part of
    the body its receipt keeps. Found by decoding at each `{` until the report comes out."""
    text = fixture("infobip", name).decode()
    wanted = json.loads(text)["results"][index]
    decoder = json.JSONDecoder()
    at = text.index("[", text.index('"results"'))
    while True:
        at = text.index("{", at + 1)
        value, end = decoder.raw_decode(text, at)
        if value == wanted:
            return text[at:end]


class TestInfobipTokens(TokenProviderSecuritySuite):
    adapter = infobip.adapter

    def make_request(self) -> WebhookRequest:
        return infobip_request(fixture("infobip", "delivered.json"))


# Parsing real reports


def test_delivered_report_parses_with_every_field() -> None:
    assert infobip.adapter.parse(infobip_request(fixture("infobip", "delivered.json"))) == [
        ReceiptEvent(
            provider_message_id="4089136245390354561003",
            provider_status="DELIVERED_TO_HANDSET",
            status=Status.DELIVERED,
            error_code="",
            error_description="",
            provider_timestamp=datetime(2026, 11, 26, 10, 0, 4, 250000, tzinfo=UTC),
            event_id="",
            permanent=None,
            raw=sent("delivered.json"),
            extra={
                "bulkId": "BULK-ID-7f3a2c91-d4e8",
                "to": "41793026727",
                "callbackData": "otp-login-8841",
                "price": {"pricePerMessage": 0.01, "currency": "EUR"},
                "mccMnc": "22801",
            },
            network="22801",
            price=Decimal("0.010000"),
            currency="EUR",
        )
    ]


def test_undelivered_report_carries_the_error_id_and_infobips_permanent_flag() -> None:
    result = report("undelivered_unknown_subscriber.json")
    assert infobip.adapter.parse(infobip_request(fixture("infobip", "undelivered_unknown_subscriber.json"))) == [
        ReceiptEvent(
            provider_message_id="4089136245390354561004",
            provider_status="UNDELIVERABLE_NOT_DELIVERED",
            status=Status.UNDELIVERED,
            error_code="1",
            error_description=result["error"]["description"],
            provider_timestamp=datetime(2026, 11, 26, 10, 1, 7, tzinfo=UTC),
            event_id="",
            permanent=True,
            raw=sent("undelivered_unknown_subscriber.json"),
            extra={
                "bulkId": "BULK-ID-7f3a2c91-d4e8",
                "to": "41793026728",
                "price": {"pricePerMessage": 0.01, "currency": "EUR"},
                "mccMnc": "22801",
            },
            network="22801",
            price=Decimal("0.010000"),
            currency="EUR",
        )
    ]


def test_batch_gives_one_event_per_report_each_with_its_own_part_of_the_body() -> None:
    events = infobip.adapter.parse(infobip_request(fixture("infobip", "batch.json")))
    results = json.loads(fixture("infobip", "batch.json"))["results"]
    assert [
        (e.provider_message_id, e.provider_status, e.status, e.error_code, e.permanent, e.provider_timestamp)
        for e in events
    ] == [
        (
            "4089136245390354562001",
            "DELIVERED_TO_OPERATOR",
            Status.SENT,
            "",
            None,
            datetime(2026, 11, 26, 11, 0, 1, 500000, tzinfo=UTC),
        ),
        (
            "4089136245390354562002",
            "EXPIRED_EXPIRED",
            Status.EXPIRED,
            "27",
            False,
            datetime(2026, 11, 26, 11, 0, tzinfo=UTC),
        ),
        (
            "4089136245390354562003",
            "EXPIRED_DLR_UNKNOWN",
            Status.UNKNOWN,
            "",
            None,
            datetime(2026, 11, 26, 11, 0, tzinfo=UTC),
        ),
        (
            "4089136245390354562004",
            "REJECTED_NETWORK",
            Status.REJECTED,
            "",
            None,
            datetime(2026, 11, 26, 11, 0, 0, 120000, tzinfo=UTC),
        ),
        (
            "4089136245390354562005",
            "PENDING_ENROUTE",
            Status.SENT,
            "",
            None,
            datetime(2026, 11, 26, 11, 0, 0, 300000, tzinfo=UTC),
        ),
    ]
    assert [e.error_description for e in events] == ["", "Absent Subscriber", "", "", ""]
    assert [e.raw for e in events] == [sent("batch.json", index) for index in range(len(results))]
    assert [e.event_id for e in events] == [""] * 5


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("PENDING_ACCEPTED", Status.ACCEPTED),
        ("PENDING_WAITING_DELIVERY", Status.SENT),
        ("PENDING_ENROUTE", Status.SENT),
        ("PENDING_SOMETHING_NEW", Status.ACCEPTED),
        ("DELIVERED_TO_OPERATOR", Status.SENT),
        ("DELIVERED_TO_HANDSET", Status.DELIVERED),
        ("DELIVERED_SOMEWHERE_NEW", Status.UNKNOWN),
        ("UNDELIVERABLE_REJECTED_OPERATOR", Status.UNDELIVERED),
        ("UNDELIVERABLE_NOT_DELIVERED", Status.UNDELIVERED),
        ("UNDELIVERABLE_NOT_SENT", Status.UNDELIVERED),
        ("EXPIRED_EXPIRED", Status.EXPIRED),
        ("EXPIRED_DLR_UNKNOWN", Status.UNKNOWN),
        ("REJECTED_NETWORK", Status.REJECTED),
        ("REJECTED_DND", Status.REJECTED),
        ("REJECTED_DESTINATION_BLOCKLISTED", Status.REJECTED),
        ("delivered_to_handset", Status.DELIVERED),
        # Group 3 (the fixture's) is not a fallback: to operator and to handset differ.
        ("SIGNALS_BLOCKED", Status.UNKNOWN),
    ],
)
def test_status_names_map_by_name_then_by_group(name: str, status: Status) -> None:
    event = parse_one(edited(report(), status_name=name))
    assert (event.provider_status, event.status) == (name, status)


def test_status_name_without_a_group_prefix_falls_back_on_the_reports_group() -> None:
    assert infobip.adapter.parse(infobip_request(fixture("infobip", "rejected_signals_blocked.json"))) == [
        ReceiptEvent(
            provider_message_id="4089136245390354563001",
            provider_status="SIGNALS_BLOCKED",
            status=Status.REJECTED,
            error_code="",
            error_description="",
            provider_timestamp=datetime(2026, 11, 26, 12, 0, 0, 310000, tzinfo=UTC),
            event_id="",
            permanent=None,
            raw=sent("rejected_signals_blocked.json"),
            extra={
                "bulkId": "BULK-ID-3d9e1f70-2b4c",
                "to": "41793026729",
                "price": {"pricePerMessage": 0.0, "currency": "EUR"},
                "mccMnc": "22801",
            },
            network="22801",
            price=Decimal("0.000000"),
            currency="EUR",
        )
    ]


@pytest.mark.parametrize(
    ("name", "group_id", "group_name", "status"),
    [
        ("MISSING_TO", 5, "REJECTED", Status.REJECTED),
        ("SIGNALS_BLOCKED", 5, "REJECTED", Status.REJECTED),
        ("SOMETHING_NEW", 1, "PENDING", Status.ACCEPTED),
        ("SOMETHING_NEW", 2, "UNDELIVERABLE", Status.UNDELIVERED),
        ("SOMETHING_NEW", 4, "EXPIRED", Status.EXPIRED),
        ("SOMETHING_NEW", 3, "DELIVERED", Status.UNKNOWN),
        # Without a usable id, the group's name decides.
        ("MISSING_TO", None, "REJECTED", Status.REJECTED),
        ("MISSING_TO", 99, "rejected", Status.REJECTED),
        ("MISSING_TO", None, None, Status.UNKNOWN),
        # A prefixed name is read by its prefix whatever the group says.
        ("REJECTED_NETWORK", 1, "PENDING", Status.REJECTED),
    ],
)
def test_unprefixed_names_take_the_status_of_their_group(
    name: str, group_id: int | None, group_name: str | None, status: Status
) -> None:
    result = edited(report(), status_name=name)
    result["status"]["groupId"], result["status"]["groupName"] = group_id, group_name
    assert parse_one(result).status == status


def test_report_carrying_only_its_group_is_stored_under_the_group_name() -> None:
    (event,) = infobip.adapter.parse(infobip_request(fixture("infobip", "group_only_undeliverable.json")))
    assert (event.provider_message_id, event.provider_status, event.status) == (
        "4089136245390354563002",
        "UNDELIVERABLE",
        Status.UNDELIVERED,
    )
    assert (event.error_code, event.error_description, event.permanent) == ("27", "Absent Subscriber", False)
    assert (event.network, event.price, event.currency) == ("22801", Decimal("0.010000"), "EUR")
    # What was stored reads back to the same status without the report (the command that
    # re-normalizes stored receipts re-parses the raw part; this is the plain name lookup).
    assert infobip.adapter.normalize_status(event.provider_status) == Status.UNDELIVERED


@pytest.mark.parametrize(
    ("price", "mcc_mnc", "expected"),
    [
        ({"pricePerMessage": "0.0125", "currency": "eur"}, "20801", ("20801", Decimal("0.012500"), "EUR")),
        ({"pricePerMessage": -1, "currency": "EUR"}, "", ("", None, "")),
        ({"currency": "EUR"}, None, ("", None, "")),
        ("not an object", 22801, ("22801", None, "")),
        (None, "x" * 65, ("", None, "")),
    ],
)
def test_unusable_price_or_network_is_dropped_not_refused(price: Any, mcc_mnc: Any, expected: tuple[Any, ...]) -> None:
    event = parse_one(edited(report(), price=price, mccMnc=mcc_mnc))
    assert (event.network, event.price, event.currency) == expected
    assert event.status == Status.DELIVERED


@pytest.mark.parametrize(
    ("error", "code", "permanent"),
    [
        ({"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False}, "", None),
        ({"groupId": 1, "id": 6, "name": "EC_ABSENT_SUBSCRIBER_SM", "permanent": False}, "6", False),
        ({"groupId": 3, "id": 628, "name": "EC_TEMPORARY_HANDSET_FAILURE", "permanent": True}, "628", True),
        ({"groupId": 2, "id": "603", "name": "EC_CONTENT_BLOCKED"}, "603", None),
        ({"groupId": 1, "id": 27, "permanent": "yes"}, "27", None),
        ({"groupId": 1, "id": True}, "", None),
        ({"groupId": 1, "id": None}, "", None),
        ({}, "", None),
        (None, "", None),
        ("not an object", "", None),
    ],
    ids=[
        "no-error",
        "temporary",
        "permanent",
        "string-id",
        "non-bool-permanent",
        "bool-id",
        "null-id",
        "empty",
        "null",
        "string",
    ],
)
def test_error_id_becomes_the_code_and_permanent_is_taken_only_as_infobip_states_it(
    error: Any, code: str, permanent: bool | None
) -> None:
    result = edited(report("undelivered_unknown_subscriber.json"))
    result["error"] = error
    event = parse_one(result)
    assert (event.error_code, event.permanent) == (code, permanent)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-11-09T16:00:00.000+0000", datetime(2019, 11, 9, 16, tzinfo=UTC)),
        ("2019-11-09T17:00:00.000+0100", datetime(2019, 11, 9, 17, tzinfo=timezone(timedelta(hours=1)))),
        ("2019-11-09T16:00:00Z", datetime(2019, 11, 9, 16, tzinfo=UTC)),
        ("2019-11-09T16:00:00.000", datetime(2019, 11, 9, 16, tzinfo=UTC)),
        ("09/11/2019 16:00", None),
        ("", None),
        (1573315200, None),
        (None, None),
    ],
)
def test_done_at_is_read_robustly_and_dropped_when_unreadable(value: Any, expected: datetime | None) -> None:
    event = parse_one(edited(report(), doneAt=value))
    assert event.provider_timestamp == expected
    assert event.status == Status.DELIVERED


def test_retried_report_has_the_same_dedupe_key_and_the_next_status_another() -> None:
    assert parse_one(report()).dedupe_key() == parse_one(report()).dedupe_key()
    assert (
        parse_one(report()).dedupe_key()
        != parse_one(edited(report(), status_name="DELIVERED_TO_OPERATOR")).dedupe_key()
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{}",
        b'{"results": []}',
        b'{"results": {}}',
        b'{"results": [1]}',
        body_of(edited(report(), messageId=None)),
        body_of(edited(report(), messageId="")),
        body_of(edited(report(), messageId=4089136245390354561003)),
        body_of(edited(report(), status=None)),
        body_of(edited(report(), status_name="", status_groupName="")),
        body_of(edited(report(), status_name=5)),
        body_of(edited(report(), messageId="x" * 129)),
        b"not json",
    ],
)
def test_malformed_body_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        infobip.adapter.parse(infobip_request(body))


def test_a_report_keeps_its_part_of_the_body_as_the_provider_wrote_it() -> None:
    # Escapes stay escapes: an escaped lone surrogate in a field no receipt column reads is text
    # PostgreSQL holds (as a receipt alone in its request keeps its whole body as sent).
    first = '{"messageId": "1", "status": {"name": "PENDING_ENROUTE"}, "callbackData": "caf\\u00e9 \\ud800"}'
    second = '{ "messageId" : "2" , "status" : { "name" : "DELIVERED_TO_HANDSET" } }'
    body = f'{{"results": [{first},\n  {second}]}}'.encode()
    events = infobip.adapter.parse(infobip_request(body))
    assert [(e.provider_message_id, e.raw) for e in events] == [("1", first), ("2", second)]
    assert json.loads(events[0].raw)["callbackData"] == "caf\u00e9 \ud800"


def test_one_bad_report_refuses_the_whole_batch() -> None:
    results = json.loads(fixture("infobip", "batch.json"))["results"]
    results[3] = edited(results[3], messageId=None)
    with pytest.raises(PayloadError, match=r"results\[3\]\.messageId"):
        infobip.adapter.parse(infobip_request(body_of(*results)))


def test_more_reports_than_the_bound_are_refused() -> None:
    results = [edited(report(), messageId=str(i)) for i in range(infobip.adapter.max_events + 1)]
    with pytest.raises(PayloadError, match="more than"):
        infobip.adapter.parse(infobip_request(body_of(*results)))


# Through the endpoint


@pytest.mark.django_db
def test_a_batch_is_stored_with_each_report_as_the_provider_wrote_it(client) -> None:
    connection = ConnectionFactory(provider="infobip", secrets=[TOKEN])
    first = '{"messageId": "m-1", "status": {"name": "DELIVERED_TO_HANDSET"}, "callbackData": "\\ud800"}'
    second = '{"messageId":"m-2","status":{"name":"PENDING_ENROUTE"}}'
    body = f'{{"results": [\n  {first},\n  {second}\n]}}'
    response = client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")
    assert response.status_code == 200
    stored = dict(Receipt.objects.values_list("provider_message_id", "raw_body"))
    assert stored == {"m-1": first, "m-2": second}


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["path", "header"])
def test_report_posted_with_the_token_is_stored_and_moves_the_message(client, where: str) -> None:
    connection = ConnectionFactory(provider="infobip", secrets=[TOKEN])
    message = MessageFactory(connection=connection, provider_message_id="4089136245390354561004")
    path = f"/hooks/{connection.slug}/{TOKEN}/" if where == "path" else f"/hooks/{connection.slug}/"
    headers = {} if where == "path" else {"X-DLR-Token": TOKEN}
    body = fixture("infobip", "undelivered_unknown_subscriber.json")
    response = client.post(path, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert response.json()["received"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider_message_id, receipt.provider_status, receipt.status, receipt.error_code) == (
        "4089136245390354561004",
        "UNDELIVERABLE_NOT_DELIVERED",
        Status.UNDELIVERED,
        "1",
    )
    assert receipt.provider_timestamp == datetime(2026, 11, 26, 10, 1, 7, tzinfo=UTC)
    assert receipt.raw_body == sent("undelivered_unknown_subscriber.json")
    message = Message.objects.get(pk=message.pk)
    # Infobip's own `permanent: true` decides the class, whatever the catalog would say.
    assert (message.status, message.error_code, message.error_class) == (Status.UNDELIVERED, "1", "permanent")


@pytest.mark.django_db
def test_batch_of_100_with_40_already_stored_stores_60_and_counts_40_duplicates(client) -> None:
    connection = ConnectionFactory(provider="infobip", secrets=[TOKEN])
    results = [
        edited(
            report(), messageId=f"40891362453903545{i:05d}", doneAt=f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}.000+0000"
        )
        for i in range(100)
    ]
    for result in results[:10]:
        MessageFactory(connection=connection, provider_message_id=result["messageId"])
    url = f"/hooks/{connection.slug}/{TOKEN}/"
    first = client.post(url, data=body_of(*results[20:60]), content_type="application/json")
    assert first.status_code == 200
    assert first.json()["received"] == 40
    response = client.post(url, data=body_of(*results), content_type="application/json")
    assert response.status_code == 200
    assert (response.json()["received"], response.json()["duplicates"]) == (100, 40)
    assert Receipt.objects.filter(connection=connection).count() == 100
    assert set(Receipt.objects.values_list("provider_message_id", flat=True)) == {r["messageId"] for r in results}
    assert Message.objects.filter(connection=connection, status=Status.DELIVERED).count() == 10


@pytest.mark.django_db
def test_unpaired_surrogate_escape_is_a_400_not_a_failure_to_store(client) -> None:
    connection = ConnectionFactory(provider="infobip", secrets=[TOKEN])
    body = b'{"results": [{"messageId": "\\udc00", "status": {"name": "DELIVERED_TO_HANDSET"}}]}'
    response = client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not Receipt.objects.exists()


@pytest.mark.django_db
def test_batch_with_one_malformed_report_stores_nothing(client) -> None:
    connection = ConnectionFactory(provider="infobip", secrets=[TOKEN])
    results = json.loads(fixture("infobip", "batch.json"))["results"]
    results[-1] = edited(results[-1], status=None)
    response = client.post(
        f"/hooks/{connection.slug}/{TOKEN}/", data=body_of(*results), content_type="application/json"
    )
    assert response.status_code == 400
    assert "results[4].status.name" in response.json()["error"]
    assert not Receipt.objects.exists()


class TestInfobipExtremes(ExtremeInputSuite):
    provider = "infobip"
    secret = TOKEN
    message_id = "4089136245390354561004"

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        result = report("undelivered_unknown_subscriber.json")
        result["messageId"] = slots.get("message_id", result["messageId"])
        result["doneAt"] = slots.get("time", result["doneAt"])
        result["status"]["name"] = slots.get("status", result["status"]["name"])
        result["error"]["id"] = "<<number>>" if "number" in slots else slots.get("error_code", result["error"]["id"])
        result["error"]["description"] = slots.get("description", result["error"]["description"])
        body = dumps({"results": [result]}, number=slots.get("number", ""))
        return client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type="application/json")


class TestInfobipBatchBounds(MultiEventSuite):
    adapter = infobip.adapter
    secret = TOKEN

    def request(self, count: int, *, filler: int = 0) -> tuple[str, bytes, dict[str, str]]:
        results = [edited(report(), messageId=f"40891362453903545{i:05d}") for i in range(count)]
        body = json.dumps({"results": results, "note": "x" * filler}).encode()
        return "{token}/", body, {"content-type": "application/json"}
