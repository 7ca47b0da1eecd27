"""Routes and flows: the rollups' figures side by side, sortable by a real link, and every
figure a link to a search that lists exactly the messages it counted."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from tests.console.conftest import HTMX
from tests.console.links import figure_link, search_count
from tests.rollups.traffic import NOW, Routes, route_traffic

pytestmark = pytest.mark.django_db
ROUTES = reverse("console:routes")
FLOWS = reverse("console:flows")


@pytest.fixture
def routes(db: None) -> Iterator[Routes]:
    with time_machine.travel(NOW, tick=False):
        yield route_traffic()


def first_cells(page: str) -> list[str]:
    """The first cell of each body row."""
    return re.findall(r'<tr data-testid="row">\s*<td>([^<]*)</td>', page)


@pytest.mark.parametrize("role", ["viewer", "support"])
@pytest.mark.parametrize("url", [ROUTES, FLOWS])
def test_routes_and_flows_render_for_every_console_role(
    routes: Routes, role: str, url: str, request: pytest.FixtureRequest
) -> None:
    client: Client = request.getfixturevalue(role)
    response = client.get(url, {"window": "1h"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="table-scroll"' in page  # the wide table scrolls in its own box at 390 px
    assert 'aria-current="page"' in page
    if url == ROUTES:
        assert first_cells(page) == ["FR", "GB"]
        assert "eu-route" in page
        assert "us-route" in page
        assert "0.05 EUR" in page
    else:
        assert first_cells(page) == ["login-otp", "marketing"]


def test_the_routes_table_sorts_by_any_column_through_a_link(support: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        page = support.get(ROUTES, {"window": "1h"}).content.decode()
        # The rate header's link sorts the highest first; following it again reverses.
        href = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*data-testid="sort-rate"', page).group(1)
        assert "sort=-rate" in href
        by_rate = support.get(ROUTES, {"window": "1h", "sort": "-rate"}).content.decode()
        assert first_cells(by_rate) == ["FR", "GB"]  # 60 % then 50 %
        assert 'aria-sort="descending"' in by_rate
        assert first_cells(support.get(ROUTES, {"window": "1h", "sort": "rate"}).content.decode()) == ["GB", "FR"]
        assert first_cells(support.get(ROUTES, {"window": "1h", "sort": "-volume"}).content.decode()) == ["FR", "GB"]
        assert first_cells(support.get(ROUTES, {"window": "1h", "sort": "volume"}).content.decode()) == ["GB", "FR"]


def test_an_unknown_sort_is_refused_with_the_reason(viewer: Client) -> None:
    response = viewer.get(ROUTES, {"sort": "colour"})
    assert response.status_code == 400
    assert "sort: must be one of" in response.content.decode()


def test_routes_split_by_network_and_narrow_by_filters(support: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        split = support.get(ROUTES, {"window": "1h", "by_network": "true"}).content.decode()
        assert "<td>20801</td>" in split
        assert "<td>—</td>" in split  # the British route reported no network
        only_gb = support.get(ROUTES, {"window": "1h", "country": "gb"}).content.decode()
        assert first_cells(only_gb) == ["GB"]


@pytest.mark.parametrize(
    ("testid", "nth", "shows", "expected"),
    [
        ("failed-link", 0, "2", 2),  # FR on eu-route: absent and unknown subscriber
        ("failed-link", 1, "1", 1),  # GB on us-route: rejected
        ("volume-link", 0, "6", 6),
        ("missing-link", 0, "16.7 %", 1),  # one of six
        ("reason-link", 0, "absent_subscriber 1", 1),
    ],
)
def test_a_route_figure_links_to_a_search_listing_exactly_its_messages(
    support: Client, routes: Routes, testid: str, nth: int, shows: str, expected: int
) -> None:
    with time_machine.travel(NOW, tick=False):
        page = support.get(ROUTES, {"window": "1h"}).content.decode()
        shown, link = figure_link(page, testid, nth)
        assert "submitted_after=2026-03-02T09%3A16&submitted_before=2026-03-02T10%3A16" in link
        assert shown == shows
        assert search_count(support, link) == expected


def test_the_delivery_rate_links_to_the_delivered_messages_of_a_flow(support: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        page = support.get(FLOWS, {"window": "1h"}).content.decode()
        _, link = figure_link(page, "rate-link", 0)  # login-otp: 3 delivered of 5 final
        assert "60.0 %" in page
        assert search_count(support, link) == 3


def test_a_figure_without_a_network_links_to_the_messages_without_one(support: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        page = support.get(ROUTES, {"window": "1h", "by_network": "true"}).content.decode()
        shown, link = figure_link(page, "volume-link", 1)  # GB, no network
        assert "unset=network" in link
        assert shown == "2"
        assert search_count(support, link) == 2


def test_the_table_is_swapped_in_place_for_htmx(viewer: Client, routes: Routes) -> None:
    with time_machine.travel(NOW, tick=False):
        fragment = viewer.get(ROUTES, {"window": "24h", "sort": "-rate"}, **HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="table"')
    assert "<html" not in fragment
