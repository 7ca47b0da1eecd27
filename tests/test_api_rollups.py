"""GET /api/v1/rollups/: the dashboards' figures for BI tools, per group, with the previous
period and the trend; every malformed query refused with its reason; console users only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from dlrconsole import roles
from tests.factories import api_client_for, user_in_role
from tests.rollups.traffic import NOW, Routes, route_traffic

pytestmark = pytest.mark.django_db
URL = "/api/v1/rollups/"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def routes(clock: Any) -> Routes:
    return route_traffic()


@pytest.fixture
def bi() -> APIClient:
    """A viewer's API key, as a BI tool holds it."""
    return api_client_for(user_in_role(roles.VIEWER, "bi"))


def test_the_figures_per_route_with_the_previous_period(bi: APIClient, routes: Routes) -> None:
    answer = bi.get(URL, {"window": "1h", "group_by": ["country", "connection"]}).json()
    assert answer["period"] == {"start": "2026-03-02T09:16:00Z", "end": "2026-03-02T10:16:00Z", "grain": "minute"}
    assert answer["previous_period"]["end"] == "2026-03-02T09:16:00Z"
    fr, gb = answer["groups"]
    assert fr["group"] == {"country": "FR", "connection": "eu-route"}
    figures = fr["figures"]
    assert (figures["messages"], figures["delivered"], figures["failed"], figures["pending"]) == (6, 3, 2, 1)
    assert figures["delivery_rate"] == 0.6
    assert (figures["missing"], figures["statuses"]["expired"]) == (1, 0)
    assert figures["failures_by_reason"] == [
        {"reason": "absent_subscriber", "error_class": "temporary", "messages": 1},
        {"reason": "unknown_subscriber", "error_class": "permanent", "messages": 1},
    ]
    assert figures["cost"] == [{"currency": "EUR", "total": "0.100000", "per_delivered": "0.050000"}]
    assert 4 < figures["time_to_delivery"]["p50"] <= 10
    assert fr["previous"]["messages"] == 1
    assert gb["group"] == {"country": "GB", "connection": "us-route"}
    assert gb["previous"]["messages"] == 0
    assert "series" not in fr


def test_everything_at_once_with_its_trend(bi: APIClient, routes: Routes) -> None:
    (everything,) = bi.get(URL, {"window": "1h", "series": "true"}).json()["groups"]
    assert everything["group"] == {}
    assert everything["figures"]["messages"] == 8
    assert len(everything["series"]) == 60
    assert everything["series"][-1] == {
        "bucket": "2026-03-02T10:15:00Z", "messages": 6, "delivered": 3, "failed": 3, "delivery_rate": 0.5,
    }  # fmt: skip


def test_a_range_is_widened_to_whole_buckets_and_filtered(bi: APIClient, routes: Routes) -> None:
    query = {"from": "2026-03-02T08:30:00Z", "to": "2026-03-02T10:15:10+00:00", "grain": "hour", "flow": "login-otp"}
    answer = bi.get(URL, query).json()
    assert answer["period"] == {"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T11:00:00Z", "grain": "hour"}
    assert answer["groups"][0]["figures"]["messages"] == 7  # with the one at 08:45
    by_network = bi.get(URL, {"window": "24h", "group_by": "network", "country": "fr"}).json()["groups"]
    assert [(g["group"], g["figures"]["messages"]) for g in by_network] == [({"network": "20801"}, 7)]


def test_the_finest_grain_still_kept_is_chosen_for_a_range(bi: APIClient, clock: Any) -> None:
    recent = bi.get(URL, {"from": "2026-03-02T08:00:00Z", "to": "2026-03-02T09:00:00Z"}).json()
    assert recent["period"]["grain"] == "minute"
    old = bi.get(URL, {"from": "2026-01-02T00:00:00Z", "to": "2026-01-09T00:00:00Z"}).json()
    assert old["period"]["grain"] == "hour"
    older = bi.get(URL, {"from": "2025-03-02T00:00:00Z", "to": "2026-03-02T00:00:00Z"}).json()
    assert older["period"]["grain"] == "day"


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({"window": "1y"}, "window", "not a valid choice"),
        ({"window": "1h", "from": "2026-03-02T08:00:00Z", "to": "2026-03-02T09:00:00Z"}, "window", "not both"),
        ({"from": "2026-03-02T08:00:00Z"}, "to", "from and to go together"),
        ({"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T08:00:00Z"}, "to", "later than from"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to", "400 days"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z", "grain": "minute"}, "grain", "grain=hour"),
        ({"window": "24h", "grain": "hour"}, "grain", "a window has its own grain"),
        ({"from": "2025-12-03T00:00:00Z", "to": "2026-03-02T00:00:00Z", "grain": "hour", "series": "true"},
         "grain", "coarser grain"),
        ({"group_by": "route"}, "group_by", "not a valid choice"),
        ({"connection": "nowhere"}, "connection", "does not exist"),
        ({"country": "FRA"}, "country", "two-letter"),
        ({"from": "2026-03-02T08:00:00+16:00", "to": "2026-03-02T09:00:00Z"}, "from", "offset"),
        ({"flow": ""}, "flow", "may not be empty"),
    ],
)  # fmt: skip
def test_a_malformed_query_is_refused_with_the_reason(
    bi: APIClient, clock: Any, query: dict[str, str], field: str, reason: str
) -> None:
    response = bi.get(URL, query)
    assert response.status_code == 400
    assert reason in str(response.json()[field])


def test_console_users_and_their_keys_may_read_the_figures_others_may_not(bi: APIClient, clock: Any) -> None:
    assert bi.get(URL).status_code == 200
    session = APIClient()
    session.force_login(user_in_role(roles.SUPPORT, "agent"))
    assert session.get(URL).status_code == 200
    assert APIClient().get(URL).status_code == 401
    nobody = get_user_model().objects.create_user("no-role")
    assert api_client_for(nobody).get(URL).status_code == 403


def test_the_schema_describes_the_endpoint(bi: APIClient) -> None:
    schema = bi.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/rollups/"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"window", "from", "to", "grain", "group_by", "connection", "country", "network", "flow", "series"} <= names
    assert "400" in operation["responses"]


def test_the_default_is_the_last_24_hours(bi: APIClient, routes: Routes) -> None:
    answer = bi.get(URL).json()
    assert answer["period"]["grain"] == "hour"
    assert answer["groups"][0]["figures"]["messages"] == 9
    start = answer["period"]["start"]
    assert start == (NOW.replace(minute=0, second=0) + timedelta(hours=1) - timedelta(hours=24)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
