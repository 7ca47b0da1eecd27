"""What every provider's input goes through in receipts/providers/base.py: times kept in UTC and
only when plausible, JSON numbers within what RFC 8259 and 64 bits allow, signed Unix times as
plain digits, dedupe keys within their column, receipts per request and what they store
bounded by `parse` whatever the adapter returns; and the final time ingestion derives."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone as django_timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from receipts.ingestion import final_time
from receipts.models import Message, Receipt
from receipts.providers import base
from receipts.providers.base import (
    EARLIEST_PROVIDER_TIME,
    EVENT_OVERHEAD_CHARS,
    KEPT_HEADER_CHARS,
    PROVIDER_CLOCK_AHEAD,
    PayloadError,
    ProviderAdapter,
    ReceiptEvent,
    WebhookRequest,
    clean_price,
    compact_json,
    parse_unix_time,
    provider_time,
    unix_seconds,
)
from receipts.statuses import Status
from receipts.store import StatusChange
from tests.factories import MessageFactory
from tests.webhooks import post_status

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    """Every test here at NOW: the fixed times they write are read against it."""
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 26, 11, 2, 9, tzinfo=timezone(timedelta(hours=1))), datetime(2026, 11, 26, 10, 2, 9)),
        (
            datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=23, minutes=59))),
            datetime(2026, 11, 25, 10, 1),
        ),
        (datetime(2026, 11, 26, 10, 0), datetime(2026, 11, 26, 10, 0)),  # no zone: UTC
        (EARLIEST_PROVIDER_TIME, datetime(2000, 1, 1)),
        (NOW + PROVIDER_CLOCK_AHEAD, datetime(2026, 11, 27, 10, 0)),
        (datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), None),
        (NOW + PROVIDER_CLOCK_AHEAD + timedelta(seconds=1), None),
        (datetime(1970, 1, 1, tzinfo=UTC), None),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), None),  # year 0 in UTC
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))), None),  # year 10000
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), None),
        (datetime(2999, 1, 1, tzinfo=UTC), None),
        (None, None),
    ],
    ids=[
        "offset-to-utc",
        "offset-beyond-postgresql",
        "naive",
        "earliest",
        "latest",
        "before-earliest",
        "after-latest",
        "epoch",
        "year-1-positive-offset",
        "year-9999-negative-offset",
        "year-9999",
        "far-future",
        "none",
    ],
)
def test_provider_time_is_kept_in_utc_only_within_the_plausible_range(
    value: datetime | None, expected: datetime | None
) -> None:
    kept = provider_time(value, now=NOW)
    assert kept == (expected.replace(tzinfo=UTC) if expected else None)
    assert kept is None or kept.tzinfo is UTC


def test_every_event_goes_through_provider_time() -> None:
    sent = datetime(2026, 11, 26, 5, 4, 58, tzinfo=timezone(timedelta(hours=-5)))
    event = ReceiptEvent(provider_message_id="m", provider_status="sent", status=Status.SENT, provider_timestamp=sent)
    assert event.provider_timestamp == sent
    assert event.provider_timestamp is not None
    assert event.provider_timestamp.tzinfo is UTC
    poison = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    event = ReceiptEvent(provider_message_id="m", provider_status="sent", status=Status.SENT, provider_timestamp=poison)
    assert event.provider_timestamp is None


def json_request(body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", url="https://dlr.example/hooks/x/", headers={}, body=body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"code": NaN}', "NaN"),
        (b'{"code": Infinity}', "Infinity"),
        (b'{"code": -Infinity}', "-Infinity"),
        (b'{"code": 1e400}', "out of range"),
        (b'{"code": -1e400}', "out of range"),
        (b'{"code": 123456789012345678901}', "more than 20 digits"),
        (b'{"code": -123456789012345678901}', "more than 20 digits"),
        (b'{"code": 1' + b"0" * 5000 + b"}", "more than 20 digits"),
    ],
)
def test_json_numbers_beyond_rfc_8259_or_64_bits_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        json_request(body).json()
    with pytest.raises(PayloadError, match=reason):
        json_request(b'{"results": [' + body + b"]}").json_parts("results")


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"code": 18446744073709551615}', 2**64 - 1),
        (b'{"code": -9223372036854775808}', -(2**63)),
        (b'{"code": 1e-400}', 0.0),
        (b'{"code": 1.7976931348623157e308}', 1.7976931348623157e308),
        (b'{"code": -0}', 0),
    ],
)
def test_json_numbers_within_64_bits_and_float_range_are_read(body: bytes, value: Any) -> None:
    assert json_request(body).json() == {"code": value}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1795687205", 1795687205),
        ("0", 0),
        ("999999999999", 999999999999),
        ("1000000000000", None),
        ("1" + "0" * 400, None),
        ("-1", None),
        ("+1795687205", None),
        (" 1795687205", None),
        ("1_795_687_205", None),
        ("١٧٩٥٦٨٧٢٠٥", None),  # Arabic-Indic digits, which int() reads
        ("1795687205.0", None),
        ("", None),
    ],
)
def test_signed_unix_times_are_plain_ascii_digits(text: str, expected: int | None) -> None:
    assert unix_seconds(text) == expected


@pytest.mark.parametrize(
    ("value", "per_second", "expected"),
    [
        (1795687231000, 1000, datetime(2026, 11, 26, 10, 0, 31, tzinfo=UTC)),
        ("1795687260", 1, datetime(2026, 11, 26, 10, 1, tzinfo=UTC)),
        (1795687260.5, 1, datetime(2026, 11, 26, 10, 1, 0, 500000, tzinfo=UTC)),
        (10**19, 1000, None),
        (float("nan"), 1, None),
        (float("inf"), 1, None),
        (True, 1, None),
        ("soon", 1, None),
        (None, 1, None),
    ],
)
def test_unix_times_that_no_datetime_holds_are_dropped(value: object, per_second: int, expected: datetime) -> None:
    assert parse_unix_time(value, per_second=per_second) == expected


def test_event_ids_longer_than_the_key_column_keep_distinct_keys() -> None:
    first, second = ("evt-" + "x" * 200 + tail for tail in ("1", "2"))
    keys = [
        ReceiptEvent(
            provider_message_id="m", provider_status="sent", status=Status.SENT, event_id=event_id
        ).dedupe_key()
        for event_id in (first, second, "evt-short")
    ]
    assert keys[0] != keys[1]
    assert all(len(key) <= 128 for key in keys)
    assert keys[2] == "evt-short"


def test_dedupe_keys_without_an_event_id_are_those_stored_before() -> None:
    # A provider retries for days: a key computed differently after an upgrade would store the
    # retry of a receipt stored before it again. These are the keys json.dumps() gave.
    tricky = ReceiptEvent(
        provider_message_id='m-é"\\\t1', provider_status="DELIVERED_TO_HANDSET", status=Status.DELIVERED,
        error_code="27",
        provider_timestamp=datetime(2026, 11, 26, 11, 0, 1, 500000, tzinfo=timezone(timedelta(hours=2))),
    )  # fmt: skip
    plain = ReceiptEvent(provider_message_id="m1", provider_status="sent", status=Status.SENT)
    assert tricky.dedupe_key() == "sha256:0499d10728abdf4d8d135d0d02afe5a5e93396a0af8b1b3c69e76c1fc4c56bca"
    assert plain.dedupe_key() == "sha256:a7f163898c669004cf9e591154db4551b8ed7bdd886418f4a9ed0442db740935"


PRICES_READ = [
    (0.02, "0.020000"), ("0.02", "0.020000"), (" 0.020 ", "0.020000"), (1, "1.000000"), (1.0, "1.000000"),
    ("1", "1.000000"), (-0.0, "-0.000000"), ("-0", "-0.000000"), ("1e3", "1000.000000"), ("NaN", None),
    ("-1", None), (1000000, None), ("x", None), ([1], None), ("0.0000004", "0.000000"), (True, None), ("", None),
]  # fmt: skip


def test_a_price_reads_the_same_every_time_it_is_read() -> None:
    # Read twice, as a batch's repeated prices are: the second reading is the first one's.
    for _ in range(2):
        assert [(value, clean_price(value)) for value, _ in PRICES_READ] == [
            (value, None if text is None else Decimal(text)) for value, text in PRICES_READ
        ]
        assert [str(clean_price(value)) for value, text in PRICES_READ if text] == [t for _, t in PRICES_READ if t]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
json_writers = st.sampled_from(
    [
        {"separators": (",", ":")},
        {},
        {"indent": 2},
        {"indent": "\t", "ensure_ascii": False},
        {"ensure_ascii": False, "separators": (" , ", " : ")},
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    items=st.lists(json_values, max_size=5),
    after=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    writer=json_writers,
)
def test_a_body_read_with_its_parts_is_what_json_reads_and_the_parts_are_its_elements_as_written(
    before: dict[str, Any], items: list[Any], after: dict[str, Any], writer: dict[str, Any]
) -> None:
    after.pop("results", None)
    text = json.dumps({**before, "results": items, **after}, **writer)
    payload, parts = json_request(f"  {text}\n".encode()).json_parts("results")
    assert payload == json.loads(text)
    assert parts is not None
    assert [json.loads(part) for part in parts] == items
    # As written, in order: each part is the body's own text, not the element written again.
    at = 0
    for part in parts:
        at = text.index(part, at) + len(part)


@pytest.mark.parametrize(
    ("body", "payload", "parts"),
    [
        (b'{"results": [1], "results": [2, 3]}', {"results": [2, 3]}, ["2", "3"]),  # the last, as json keeps
        (b'{"results": [1], "results": {"a": 1}}', {"results": {"a": 1}}, None),
        (b'{"data": [1]}', {"data": [1]}, None),
        (b"[1, 2]", [1, 2], None),
        (b'\xef\xbb\xbf{"results": [ 1 ]}', {"results": [1]}, ["1"]),  # a UTF-8 BOM, as json.loads reads bytes
        ('{"results": ["\u00e9"]}'.encode("utf-16"), {"results": ["\u00e9"]}, ['"\u00e9"']),
    ],
)
def test_a_body_of_another_shape_is_read_as_json_reads_it(body: bytes, payload: Any, parts: list[str] | None) -> None:
    assert json_request(body).json_parts("results") == (payload, parts)


def test_a_body_the_cutting_reader_gives_up_on_still_has_its_elements_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    def gives_up(text: str, key: str) -> None:
        raise ValueError("not read")

    monkeypatch.setattr(base, "_object_with_parts", gives_up)
    item = {"messageId": "m", "price": {"pricePerMessage": 0.02}}
    payload, parts = json_request(json.dumps({"results": [item]}).encode()).json_parts("results")
    assert payload == {"results": [item]}
    assert parts == [compact_json(item)]  # written out again, never missing


@pytest.mark.parametrize(
    "body", [b'{"results": [1,]}', b'{"results": [1]} {}', b'{"results" [1]}', b"", b'{"results": [1', b"\xff"]
)
def test_a_malformed_body_read_with_its_parts_is_refused_as_loads_json_refuses_it(body: bytes) -> None:
    with pytest.raises(PayloadError, match="body is not valid JSON"):
        json_request(body).json_parts("results")


def test_a_reports_own_part_is_written_as_json_dumps_writes_it() -> None:
    item = {"to": "3361", "é": 'ünï\u2028"\\\n', "price": {"pricePerMessage": 0.1, "n": 10**19}, "ok": True, "x": None}
    assert compact_json(item) == json.dumps(item, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("cls", [ReceiptEvent, StatusChange])
def test_the_hand_written_init_of_a_hot_path_dataclass_takes_its_fields(cls: type) -> None:
    # Written by hand for speed (receipts/providers/base.py, receipts/store.py): a field added
    # to the class must be added to __init__ too, or it would never be set.
    parameters = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in parameters] == [f.name for f in dataclasses.fields(cls)]
    for parameter, declared in zip(parameters, dataclasses.fields(cls), strict=True):
        if declared.default_factory is not dataclasses.MISSING:
            assert parameter.default is None  # `extra`: a new {} each time, as the factory
        else:
            expected = inspect.Parameter.empty if declared.default is dataclasses.MISSING else declared.default
            assert parameter.default == expected, parameter.name


def test_an_event_is_still_frozen_and_compares_by_its_fields() -> None:
    first, second = (
        ReceiptEvent(provider_message_id="m1", provider_status="sent", status=Status.SENT, price=Decimal("0.02"))
        for _ in range(2)
    )
    assert first == second
    assert first.extra == {}
    assert first.extra is not second.extra
    assert (first.price, first.currency) == (Decimal("0.020000"), "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.raw = "changed"  # type: ignore[misc]


def test_final_time_is_the_provider_time_but_never_after_we_heard_of_it() -> None:
    assert final_time(NOW - timedelta(minutes=5), received_at=NOW) == NOW - timedelta(minutes=5)
    assert final_time(NOW + timedelta(hours=12), received_at=NOW) == NOW
    assert final_time(None, received_at=NOW) == NOW


@pytest.mark.django_db
def test_provider_clock_ahead_is_kept_on_the_receipt_but_not_as_the_final_time(client: Client) -> None:
    message = MessageFactory()
    ahead = django_timezone.now() + timedelta(hours=12)
    response = post_status(client, message, "delivered", timestamp=ahead.isoformat())
    assert response.status_code == 200, response.content
    assert Receipt.objects.get().provider_timestamp == ahead
    final_at = Message.objects.get(pk=message.pk).final_at
    assert final_at is not None
    assert final_at <= django_timezone.now()


class Repeater(ProviderAdapter):
    """An adapter that gets batching wrong: each of its receipts keeps the whole body."""

    kind = "repeater"
    label = "Repeater"
    status_map: dict[str, Status] = {}
    max_events = 10

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        count = int(request.header("x-count"))
        return [
            ReceiptEvent(provider_message_id=f"m{i}", provider_status="sent", status=Status.SENT) for i in range(count)
        ]


def batch(count: int, size: int) -> WebhookRequest:
    return WebhookRequest(
        method="POST", url="https://dlr.example/hooks/x/", headers={"x-count": str(count)}, body=b"x" * size
    )


def test_parse_refuses_more_receipts_than_max_events_whatever_the_adapter_returns() -> None:
    assert len(Repeater().parse(batch(10, 10))) == 10
    with pytest.raises(PayloadError, match="more than 10 receipts"):
        Repeater().parse(batch(11, 10))


def test_parse_refuses_receipts_that_would_each_keep_the_whole_body() -> None:
    assert len(Repeater().parse(batch(2, EVENT_OVERHEAD_CHARS * 2))) == 2  # small: within the overhead
    with pytest.raises(PayloadError, match="would keep"):
        Repeater().parse(batch(2, EVENT_OVERHEAD_CHARS * 2 + 1))


def test_kept_headers_are_cut_to_their_bound() -> None:
    request = WebhookRequest(method="POST", url="https://x/", headers={"user-agent": "u" * 10_000}, body=b"")
    assert Repeater().headers_to_keep(request) == {"user-agent": "u" * KEPT_HEADER_CHARS}


def _event(**fields: object) -> ReceiptEvent:
    return ReceiptEvent(provider_message_id="m", provider_status="delivered", status=Status.DELIVERED, **fields)


@pytest.mark.parametrize(
    ("given", "kept"),
    [("20801", "20801"), (" Orange F ", "Orange F"), (20801, "20801"), ("", ""), (None, ""), (True, "")],
)
def test_a_network_is_kept_trimmed(given: object, kept: str) -> None:
    assert _event(network=given).network == kept


@pytest.mark.parametrize("unusable", ["x" * 65, "208\x0001", "line\nbreak"])
def test_a_network_that_cannot_be_kept_is_dropped_not_refused(unusable: str) -> None:
    assert _event(network=unusable).network == ""


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0.0333", Decimal("0.033300")),
        (0.0333, Decimal("0.033300")),
        ("0.12345678", Decimal("0.123457")),
        (0, Decimal("0.000000")),
        ("999999.999999", Decimal("999999.999999")),
    ],
)
def test_a_price_is_kept_to_six_places(given: object, kept: Decimal) -> None:
    assert _event(price=given, currency="eur").price == kept


@pytest.mark.parametrize("unusable", ["-0.01", "1000000", "NaN", "Infinity", "1e400", "abc", "", True])
def test_a_price_out_of_range_or_unreadable_is_dropped(unusable: object) -> None:
    event = _event(price=unusable, currency="EUR")
    assert event.price is None
    assert event.currency == ""  # a currency alone says nothing


@pytest.mark.parametrize(("given", "kept"), [("eur", "EUR"), ("USD", "USD"), ("EURO", ""), ("€", ""), ("1US", "")])
def test_a_currency_is_an_iso_code_or_nothing(given: str, kept: str) -> None:
    assert _event(price="0.05", currency=given).currency == kept
