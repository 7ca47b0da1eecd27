"""Every query parameter and body field is checked against what PostgreSQL and the code accept
before any query runs: a NUL byte, an offset past ±15:59, a date out of range, a number past
bigint, a value longer than its column is a 400 naming the parameter, never a 503 (which tells
the caller to send again a request that can never succeed) nor a 500."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from dlrconsole import roles
from receipts.models import Message
from tests.console.conftest import client_as
from tests.factories import ConnectionFactory, MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
PAST_BIGINT = str(2**63)
# Each is refused: PostgreSQL's timestamptz takes offsets up to ±15:59.
BAD_INSTANTS = ["2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-16:00", "99999-01-01T00:00:00Z", NUL, ""]
# A stored time is read back through Python, which holds years 1 to 9999 in UTC only.
UNSTORABLE_INSTANTS = ["0001-01-01T00:00:00+01:00", "0001-12-31T00:00:00Z", "9999-12-31T23:59:59-01:00"]

MESSAGE_FILTERS = [
    ("q", [NUL, "x" * 129, ""]),
    ("recipient", [NUL, "+336" + "1" * 37, ""]),
    ("region", [NUL, "F1", "FRA", ""]),
    ("provider_message_id", [NUL, "x" * 129, ""]),
    ("client_reference", [NUL, "x" * 129, ""]),
    ("flow", [NUL, "x" * 65, ""]),
    ("country", [NUL, "F1", "FRA", ""]),
    ("connection", [NUL, "x" * 65, "no-such-connection", ""]),
    ("status", [NUL, "nope", ""]),
    ("error_class", [NUL, "nope", ""]),
    ("catalog_class", [NUL, "nope", ""]),
    ("class_source", [NUL, "nope", ""]),
    ("reason", [NUL, "nope", ""]),
    ("provider_disagrees", [NUL, "maybe", "1", ""]),
    ("submitted_after", BAD_INSTANTS),
    ("submitted_before", BAD_INSTANTS),
    ("page_size", ["0", "-1", "501", "1e3", "9" * 5000, NUL, ""]),
    ("cursor", [""]),
]
FEED_FILTERS = [
    ("endpoint", ["0", "-1", PAST_BIGINT, "1.5", "NaN", "1e400", NUL, ""]),
    ("message", ["0", "-1", PAST_BIGINT, "1.5", "NaN", NUL, ""]),
    ("status", [NUL, "nope", ""]),
    ("event_type", [NUL, "nope", ""]),
]


def cases(table):
    return [pytest.param(name, value, id=f"{name}={value[:12]!r}") for name, values in table for value in values]


@pytest.fixture
def product() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


@pytest.mark.parametrize(("name", "value"), cases(MESSAGE_FILTERS))
def test_a_message_filter_value_the_database_cannot_take_is_a_400_naming_it(product, name, value):
    MessageFactory(connection=ConnectionFactory(slug="main"))
    response = product.get("/api/v1/messages/", {name: value})
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize(("name", "value"), cases(FEED_FILTERS))
def test_a_feed_filter_value_the_database_cannot_take_is_a_400_naming_it(product, name, value):
    response = product.get("/api/v1/feed/deliveries/", {name: value})
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_a_cursor_the_api_did_not_make_is_a_404_with_a_reason(product):
    # The last is base64 for p=1p=1p=…: shaped like ours, with a position that is no id.
    for cursor in ("not-a-cursor", NUL, "cD0x" * 300, "cD1hYmM="):
        response = product.get("/api/v1/messages/", {"cursor": cursor})
        assert response.status_code == 404
        assert response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/messages/1.5/", "/api/v1/messages/abc/def/", f"/api/v1/messages/{2**64}/"])
def test_an_id_that_is_not_a_record_is_a_json_404(product, path):
    response = product.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."} or "detail" in response.json()


def registration(**overrides):
    return {"connection": "main", "provider_message_id": "SM1", "to": "+33612345678", **overrides}


REGISTRATION_FIELDS = [
    ("connection", [NUL, "main\x00", "has space", "x" * 65, 5, None, "", "no-such-connection"]),
    ("provider_message_id", [NUL, "\ud800", "x" * 129, "", "   ", 5, None]),
    ("to", [NUL, "\udfff", "+33" + "6" * 38, "", " ", 33612345678, "not a number"]),
    ("region", [NUL, "F1", "FRA", 12]),
    ("flow", [NUL, "has space", " login", "x" * 65, "", 5]),
    ("client_reference", [NUL, "\ud800", "x" * 129, 5]),
    ("submitted_at", [*BAD_INSTANTS, *UNSTORABLE_INSTANTS, 1700000000]),
    ("body", [NUL, "\ud800", "x" * 1601, 5]),
    ("fallback_email", [NUL, "a" * 250 + "@x.io", "not-an-address"]),
]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param(name, value, id=f"{name}={str(value)[:12]!r}")
        for name, values in REGISTRATION_FIELDS
        for value in values
    ],
)
def test_a_registration_field_the_database_cannot_take_is_a_400_naming_it(product, name, value):
    ConnectionFactory(slug="main")
    # Lone surrogates travel as JSON escapes, as a client's encoder writes them.
    body = json.dumps(registration(**{name: value}))
    response = product.post("/api/v1/messages/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert name in response.json()
    assert not Message.objects.exists()


def test_a_date_filter_with_an_offset_postgresql_refuses_is_a_400_with_the_reason(product):
    response = product.get("/api/v1/messages/", {"submitted_after": "2026-01-01T00:00:00+16:00"})
    assert response.status_code == 400
    assert response.json() == {"submitted_after": ["the time zone offset must be between -15:59 and +15:59"]}


def test_offsets_postgresql_takes_are_read_as_the_same_instant(product):
    connection = ConnectionFactory(slug="main")
    MessageFactory(connection=connection, submitted_at="2026-01-01T12:00:00Z", provider_message_id="noon")
    late = product.get("/api/v1/messages/", {"submitted_after": "2026-01-02T03:59:00+15:59"}).json()
    early = product.get("/api/v1/messages/", {"submitted_after": "2025-12-31T20:01:00-15:59"}).json()
    assert ([m["provider_message_id"] for m in late["results"]], len(early["results"])) == (["noon"], 1)


@pytest.mark.parametrize("value", UNSTORABLE_INSTANTS)
def test_a_date_filter_near_the_ends_of_the_calendar_is_compared_by_the_database(product, value):
    MessageFactory(connection=ConnectionFactory(slug="main"))
    after = product.get("/api/v1/messages/", {"submitted_after": value})
    before = product.get("/api/v1/messages/", {"submitted_before": value})
    assert (after.status_code, before.status_code) == (200, 200)
    assert len(after.json()["results"]) + len(before.json()["results"]) == 1


def test_an_empty_parameter_is_refused_rather_than_ignored(product):
    response = product.get("/api/v1/messages/?status=&reason=")
    assert response.status_code == 400
    assert response.json() == {
        "reason": ["may not be empty: leave the parameter out for no filter"],
        "status": ["may not be empty: leave the parameter out for no filter"],
    }


def test_the_console_search_form_still_reads_empty_fields_as_any(db):
    MessageFactory()
    response = client_as(roles.SUPPORT).get("/console/messages/?q=&status=&reason=&connection=&submitted_after=")
    assert response.status_code == 200
    assert "1 message" in response.content.decode()


@pytest.mark.parametrize(
    ("name", "value"),
    [("submitted_after", "2026-01-01T00:00:00+16:00"), ("submitted_before", "2026-01-01T00:00:00-16:00"),
     ("connection", NUL), ("flow", NUL), ("country", "F1"), ("provider_disagrees", "maybe")],
)  # fmt: skip
@pytest.mark.parametrize("page", ["/console/messages/", "/console/messages/export.csv"])
def test_the_console_search_and_export_refuse_the_same_values_with_a_400(db, page, name, value):
    response = client_as(roles.SUPPORT).get(page, {name: value})
    assert response.status_code == 400
    assert name in response.content.decode()
