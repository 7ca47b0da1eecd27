"""The overview from the rollups: its figures, the previous period, the trend, its windows,
the user's time zone, refreshing in place, and a fixed cost in queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from tests.console.conftest import HTMX
from tests.console.links import figure_link, search_count
from tests.rollups.traffic import NOW, Routes, route_traffic

pytestmark = pytest.mark.django_db
OVERVIEW = reverse("console:overview")


@pytest.fixture
def routes(db: None) -> Iterator[Routes]:
    with time_machine.travel(NOW, tick=False):
        yield route_traffic()


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_the_page_shows_the_figures_from_the_rollups_and_polls_its_fragment(
    routes: Routes, role: str, request: pytest.FixtureRequest
) -> None:
    client: Client = request.getfixturevalue(role)
    page = client.get(OVERVIEW, {"window": "1h"}).content.decode()
    assert "<html" in page
    assert 'hx-trigger="every 30s"' in page
    assert 'data-testid="total">8<' in page
    assert 'data-testid="delivery-rate">57.1 %<' in page  # 4 delivered of 7 final
    assert 'data-testid="missing">1<' in page
    assert "was 1 +700 %" in page  # the hour before had one message
    assert "unknown_subscriber" in page
    assert "absent_subscriber" in page
    assert 'data-testid="trend-chart"' in page
    assert "0.05 EUR" in page
    assert "0.01 USD" in page
    fragment = client.get(OVERVIEW, {"window": "7d"}, **HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="figures"')
    assert "<html" not in fragment
    assert 'hx-get="/console/?window=7d"' in fragment


def test_every_window_renders_with_its_buckets(viewer: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        for window, grain in (("1h", "minute"), ("24h", "hour"), ("7d", "hour"), ("30d", "day")):
            page = viewer.get(OVERVIEW, {"window": window}).content.decode()
            assert f"whole {grain}s in UTC" in page
            assert 'data-testid="total">9<' in page or window == "1h"


def test_the_overview_figures_link_to_exactly_their_messages(support: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        page = support.get(OVERVIEW, {"window": "1h"}).content.decode()
        for testid, expected in (("total", 8), ("delivered", 4), ("failed", 3), ("pending", 1), ("missing", 1)):
            shown, link = figure_link(page, testid)
            assert shown == str(expected)
            assert search_count(support, link) == expected, testid


def test_times_are_shown_in_the_time_zone_asked_for(viewer: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        utc = viewer.get(OVERVIEW, {"window": "1h"}).content.decode()
        paris = viewer.get(OVERVIEW, {"window": "1h", "tz": "Europe/Paris"}).content.decode()
    assert "2026-03-02 09:16</time>" in utc
    assert "2026-03-02 10:16</time>" in paris
    assert "(Europe/Paris)" in paris


@pytest.mark.parametrize(
    ("query", "reason"),
    [({"window": "1y"}, "window: Select a valid choice"), ({"tz": "Mars/Olympus"}, "tz: not a time zone name")],
)
def test_an_unknown_window_or_time_zone_is_refused_with_the_reason(viewer: Client, query: dict, reason: str) -> None:
    response = viewer.get(OVERVIEW, query)
    assert response.status_code == 400
    assert reason in response.content.decode()


def test_the_overview_costs_a_fixed_number_of_queries(
    viewer: Client, routes: Routes, django_assert_max_num_queries: Any
) -> None:
    # session, user, permissions (2), role badge; the window per route with its reasons, the
    # period before, the trend, connection slugs.
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(10):
        viewer.get(OVERVIEW, {"window": "24h"})
