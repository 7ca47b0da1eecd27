"""One suite of extreme inputs for every provider: subclass it in the provider's tests.

A receipt the provider would send, correctly signed (or carrying the connection's token), is
posted through the real endpoint with one field replaced by an extreme value: a time at the
edges of what Python, psycopg and PostgreSQL can hold, a number JSON should not carry, a
string longer than its column. Whatever the adapter makes of it, the answer is a 400 with
nothing stored, or a 200 with everything stored readable back: the receipt and message rows
through the ORM, the message's timeline and its CSV export row. Never a 5xx (a provider
retries those for days), never a row that breaks the pages, the API or the outbox later.

A subclass (named `Test…`) sets `provider`, `secret`, `message_id` (the id its receipt is
about, registered first so that a stored receipt moves the message and sets `final_at`) and
implements `post_receipt`, writing each slot into the provider's own field for it::

    class TestAcmeExtremes(ExtremeInputSuite):
        provider = "acme"
        secret = "acme-secret"
        message_id = "acme-1"

        def post_receipt(self, client, connection, **slots):
            body = acme_body(message_id=slots.get("message_id", self.message_id), ...)
            return client.post(f"/hooks/{connection.slug}/", data=body, ...)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from receipts.exports import export_rows
from receipts.models import Connection, Message, OutboxEvent, Receipt
from receipts.selectors import receipt_entries
from tests.factories import ConnectionFactory, MessageFactory

# Times as providers spell them, at and beyond the edges: year 0 and year 10000 once in UTC,
# offsets PostgreSQL refuses (beyond ±15:59), the far future, the epoch, and the same edges in
# the compact and epoch spellings some providers use. Each goes into the provider's time field.
EXTREME_TIMES = [
    pytest.param("0001-01-01T00:00:00+01:00", id="year-1-positive-offset"),
    pytest.param("9999-12-31T23:59:59-01:00", id="year-9999-negative-offset"),
    pytest.param("2026-11-26T10:00:00+16:00", id="offset-plus-16h"),
    pytest.param("2026-11-26T10:00:00-16:00", id="offset-minus-16h"),
    pytest.param("2026-11-26T10:00:00+23:59:59.999999", id="offset-just-under-a-day"),
    pytest.param("0001-01-01T00:00:00Z", id="year-1-utc"),
    pytest.param("9999-12-31T23:59:59.999999Z", id="year-9999-utc"),
    pytest.param("0001-01-01T00:00:00", id="year-1-without-zone"),
    pytest.param("2999-01-01T00:00:00Z", id="far-future"),
    pytest.param("1970-01-01T00:00:00Z", id="epoch-0-iso"),
    pytest.param("0001-01-01 00:00:00", id="year-1-space-separated"),
    pytest.param("9999-12-31 23:59:59", id="year-9999-space-separated"),
    pytest.param("6812312359", id="yymmddhhmm-2068"),
    pytest.param("6901010000", id="yymmddhhmm-1969"),
    pytest.param("00010101000000", id="yyyymmddhhmmss-year-1"),
    pytest.param("99991231235959", id="yyyymmddhhmmss-year-9999"),
    pytest.param("0", id="epoch-0"),
    pytest.param("-1", id="epoch-minus-1"),
    pytest.param("253402300800", id="epoch-year-10000"),
    pytest.param("253402300800000", id="epoch-ms-year-10000"),
    pytest.param("99999999999999999999", id="epoch-20-digits"),
    pytest.param("1" + "0" * 400, id="epoch-401-digits"),
    pytest.param("1e400", id="epoch-float-overflow"),
]
# Numbers where the provider sends one (raw JSON tokens in a JSON body, the same text in a form).
EXTREME_NUMBERS = [
    pytest.param("1e400", id="float-overflow"),
    pytest.param("-1e400", id="negative-float-overflow"),
    pytest.param("NaN", id="nan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("-Infinity", id="negative-infinity"),
    pytest.param("1e-400", id="float-underflow"),
    pytest.param("1" + "0" * 5000, id="int-5001-digits"),
    pytest.param("9" * 4000, id="int-4000-digits"),
    pytest.param("18446744073709551616", id="int-2-to-the-64"),
    pytest.param("-1", id="minus-1"),
    pytest.param("-0", id="minus-0"),
]
# Strings longer than their column, and far longer.
OVER_LONG = [
    pytest.param("message_id", 129, id="message-id-129"),
    pytest.param("message_id", 100_000, id="message-id-100k"),
    pytest.param("status", 65, id="status-65"),
    pytest.param("status", 100_000, id="status-100k"),
    pytest.param("error_code", 33, id="error-code-33"),
    pytest.param("error_code", 100_000, id="error-code-100k"),
    pytest.param("description", 256, id="description-256"),
    pytest.param("description", 100_000, id="description-100k"),
]
# The display zones furthest from UTC: a stored time must render in both.
FAR_ZONES = (ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12"))
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity")


def json_value(text: str) -> str:
    """`text` as a JSON token: verbatim when it is a number (even one JSON forbids), else a string."""
    return text if JSON_NUMBER.fullmatch(text) else json.dumps(text)


def fill(fields: Mapping[str, str], slots: Mapping[str, str], names: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """`fields` (a form or query) with each slot written into the provider's fields for it."""
    filled = dict(fields)
    for slot, value in slots.items():
        filled.update(dict.fromkeys(names.get(slot, ()), value))
    return filled


def dumps(data: Any, **raw: str) -> bytes:
    """`data` as JSON, each string value `"<<name>>"` replaced by the raw token `raw[name]`:
    json.dumps cannot write 1e400 or a 5,000-digit number the way a sender can."""
    text = json.dumps(data)
    for name, token in raw.items():
        text = text.replace(json.dumps(f"<<{name}>>"), token)
    return text.encode()


@pytest.mark.django_db
class ExtremeInputSuite:
    """Refused with a 400 or stored readably, for every extreme. Not collected itself: subclass it."""

    provider: ClassVar[str]
    secret: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}
    message_id: ClassVar[str]

    def post_receipt(self, client: Client, connection: Connection, **slots: str) -> HttpResponse:
        """Post a receipt for `message_id`, authenticated as the provider would, with each slot
        written into the provider's field for it: `time` (the receipt's time), `number` (a field
        the provider sends as a number: in JSON the text is the raw token), `message_id`,
        `status`, `error_code`, `description`. A slot the provider has no field for is ignored."""
        raise NotImplementedError

    @pytest.fixture
    def connection(self, db: None) -> Connection:
        connection = ConnectionFactory(provider=self.provider, secrets=[self.secret], options=self.options)
        MessageFactory(connection=connection, provider_message_id=self.message_id)
        return connection

    @pytest.mark.parametrize("value", EXTREME_TIMES)
    def test_extreme_time_is_refused_or_stored_readably(
        self, client: Client, connection: Connection, value: str
    ) -> None:
        self.assert_refused_or_readable(self.post_receipt(client, connection, time=value))

    @pytest.mark.parametrize("value", EXTREME_NUMBERS)
    def test_extreme_number_is_refused_or_stored_readably(
        self, client: Client, connection: Connection, value: str
    ) -> None:
        self.assert_refused_or_readable(self.post_receipt(client, connection, number=value))

    @pytest.mark.parametrize(("slot", "length"), OVER_LONG)
    def test_over_long_string_is_refused_or_stored_within_its_column(
        self, client: Client, connection: Connection, slot: str, length: int
    ) -> None:
        self.assert_refused_or_readable(self.post_receipt(client, connection, **{slot: "7" * length}))

    def assert_refused_or_readable(self, response: HttpResponse) -> None:
        assert response.status_code in (200, 400), response.content[:500]
        if response.status_code == 400:
            assert response.json()["error"]
            assert not Receipt.objects.exists()
            assert not OutboxEvent.objects.exists()
            assert Message.objects.get().status == "queued"
            return
        now = timezone.now()
        # Every column of every row, read back by psycopg: a time it cannot read fails here.
        receipts = list(Receipt.objects.all())
        message = Message.objects.get()
        list(OutboxEvent.objects.all())
        entries = receipt_entries(message)
        rows = list(export_rows(Message.objects.all(), see_numbers=True))
        assert len(rows) == 2
        assert len(entries) == 1 + len(receipts)
        times = [receipt.provider_timestamp for receipt in receipts]
        times += [message.final_at, message.first_receipt_at, message.status_changed_at]
        for value in (t for t in times if t is not None):
            readable(value)
        for receipt in receipts:
            assert receipt.provider_timestamp is None or receipt.provider_timestamp <= now + timedelta(days=1)
        # When a message reached its final status is never later than when we heard of it.
        assert message.final_at is None or message.final_at <= now


def readable(value: datetime) -> None:
    """`value` can be shown in any zone and compared with times around now."""
    for zone in FAR_ZONES:
        value.astimezone(zone).isoformat()
    assert abs(value - timezone.now()) < timedelta(days=365 * 100)
