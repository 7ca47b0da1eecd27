"""The dashboards' figures, read from rollups filled through the real flow: totals, groups,
filters, reasons, percentiles, cost per currency, the trend and the previous period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from receipts.rollups import maintain
from receipts.rollups.figures import HISTOGRAM_BOUNDS, histogram_bucket
from receipts.rollups.models import Grain
from receipts.rollups.selectors import (
    Scope,
    period_between,
    regroup,
    rollup_comparison,
    rollup_figures,
    rollup_series,
    window_period,
)
from tests.factories import TwilioConnectionFactory
from tests.rollups.traffic import NOW, Routes, register, route_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def routes(clock: Any) -> Routes:
    return route_traffic()


def test_windows_are_whole_buckets_of_their_grain_ending_with_the_current_one() -> None:
    assert window_period("1h", now=NOW) == window_period("1h", now=NOW.replace(second=59))
    one_hour = window_period("1h", now=NOW)
    assert (one_hour.since, one_hour.until, one_hour.grain) == (
        datetime(2026, 3, 2, 9, 16, tzinfo=UTC), datetime(2026, 3, 2, 10, 16, tzinfo=UTC), Grain.MINUTE,
    )  # fmt: skip
    day = window_period("24h", now=NOW)
    assert (day.since, day.until, day.grain, len(day.buckets())) == (
        datetime(2026, 3, 1, 11, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC), Grain.HOUR, 24,
    )  # fmt: skip
    month = window_period("30d", now=NOW)
    assert (month.until, month.grain, len(month.buckets())) == (datetime(2026, 3, 3, tzinfo=UTC), Grain.DAY, 30)
    assert day.previous.until == day.since
    assert day.previous.length == day.length
    widened = period_between(NOW, NOW + timedelta(minutes=1), Grain.HOUR)
    assert widened.since == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert widened.until == datetime(2026, 3, 2, 11, tzinfo=UTC)


def test_totals_count_each_message_once_as_it_ended(routes: Routes) -> None:
    (totals,) = rollup_figures(period=window_period("1h"))
    assert (totals.messages, totals.delivered, totals.failed, totals.pending) == (8, 4, 3, 1)
    # The late delivery replaced the expiry: four delivered among seven final.
    assert totals.statuses()["expired"] == 0
    assert totals.delivery_rate == pytest.approx(4 / 7)
    assert (totals.missing, totals.missing_rate) == (1, 1 / 8)
    assert [(r.reason, r.messages) for r in totals.reasons] == [("unknown_subscriber", 2), ("absent_subscriber", 1)]


def test_time_to_delivery_is_read_from_the_histogram(routes: Routes) -> None:
    (eu,) = rollup_figures(period=window_period("1h"), scope=Scope(connection_id=routes.eu.pk))
    # Delivered after 4, 10 and 40 s: the median lies in 10 s's bucket, p95 in 40 s's.
    low = HISTOGRAM_BOUNDS[histogram_bucket(10) - 1]
    assert low < eu.ttd_p50 <= 10
    assert HISTOGRAM_BOUNDS[histogram_bucket(40) - 1] < eu.ttd_p95 <= HISTOGRAM_BOUNDS[histogram_bucket(40)]
    assert eu.ttfr_p50 is not None


def test_figures_group_by_route_and_filter_by_country_network_and_flow(routes: Routes) -> None:
    period = window_period("1h")
    groups = rollup_figures(period=period, group_by=("country", "connection"))
    assert [(f.group, f.messages, f.delivered, f.failed, f.missing) for f in groups] == [
        ({"country": "FR", "connection": routes.eu.pk}, 6, 3, 2, 1),
        ({"country": "GB", "connection": routes.us.pk}, 2, 1, 1, 0),
    ]
    assert rollup_figures(period=period, scope=Scope(network="20801"))[0].messages == 6
    assert rollup_figures(period=period, scope=Scope(network=""))[0].messages == 2  # no network reported
    assert rollup_figures(period=period, scope=Scope(flow="marketing"))[0].delivered == 1
    assert rollup_figures(period=period, scope=Scope(country="DE"))[0].messages == 0
    by_network = rollup_figures(period=period, group_by=("network",))
    assert [(f.group["network"], f.messages) for f in by_network] == [("20801", 6), ("", 2)]


def test_cost_per_delivered_message_is_given_per_currency(routes: Routes) -> None:
    (totals,) = rollup_figures(period=window_period("1h"))
    assert totals.costs == {"EUR": Decimal("0.10"), "USD": Decimal("0.01")}
    # EUR bought two deliveries (the late one had no price: it counts under no currency).
    assert totals.cost_per_delivered() == {"EUR": Decimal("0.05"), "USD": Decimal("0.01")}


def test_the_previous_period_is_compared(routes: Routes) -> None:
    (comparison,) = rollup_comparison(period=window_period("1h"))
    assert comparison.previous is not None
    assert (comparison.current.messages, comparison.previous.messages) == (8, 1)
    assert comparison.volume_change == 7.0
    assert comparison.rate_change == pytest.approx((4 / 7 - 1) * 100)
    flows = rollup_comparison(period=window_period("1h"), group_by=("flow",))
    by_flow = {tuple(c.current.group.values()): c for c in flows}
    assert by_flow[("marketing",)].previous is None


def test_the_trend_has_every_bucket_of_the_window(routes: Routes) -> None:
    period = window_period("1h")
    (points,) = rollup_series(period=period).values()
    assert len(points) == 60
    assert points[0].bucket == period.since
    assert sum(p.messages for p in points) == 8
    # 10:14 (e, delivered late, and f, pending) and 10:15, the current minute (the six others).
    assert [(p.bucket.minute, p.messages, p.delivered, p.failed) for p in points[-2:]] == [(14, 2, 1, 0), (15, 6, 3, 3)]
    day = rollup_series(period=window_period("24h"), group_by=("connection",))
    assert sum(p.messages for p in day[(routes.eu.pk,)]) == 7  # with the one of the hour before


def test_an_empty_period_has_zero_figures_and_no_rate(clock: Any) -> None:
    (totals,) = rollup_figures(period=window_period("7d"))
    assert (totals.messages, totals.delivery_rate, totals.ttd_p50, totals.cost_per_delivered()) == (0, None, None, {})
    assert rollup_figures(period=window_period("7d"), group_by=("flow",)) == []


def test_whole_days_of_a_week_are_read_from_day_cells_and_agree_with_the_hours(clock: Any) -> None:
    connection = TwilioConnectionFactory(slug="weekly")
    for days, hours in ((3, 0), (3, 5), (6, 20), (0, 1)):
        register(connection, f"m{days}-{hours}", at=NOW - timedelta(days=days, hours=hours))
    register(connection, "too-old", at=NOW - timedelta(days=8))
    maintain.roll_up(now=NOW)
    week = window_period("7d")
    (totals,) = rollup_figures(period=week)
    assert totals.messages == 4
    (points,) = rollup_series(period=week).values()
    assert sum(point.messages for point in points) == 4
    (before,) = rollup_figures(period=week.previous)
    assert before.messages == 1


def figures_of(figures: Any) -> list[tuple[Any, ...]]:
    return [(f.group, f.counts, f.costs, f.delivered_by_currency, f.reasons) for f in figures]


@pytest.mark.parametrize("window", ["1h", "24h", "7d", "30d"])
def test_questions_the_coarse_rows_answer_agree_with_the_fine_rows_added_up(routes: Routes, window: str) -> None:
    period = window_period(window)
    # Grouped by network as well, the figures can only come from the fine rows.
    fine = rollup_figures(period=period, group_by=("connection", "country", "network", "flow"))
    for group_by in [("connection", "country"), ("country",), ("flow",), ("connection", "flow"), ()]:
        coarse = rollup_figures(period=period, group_by=group_by)
        assert figures_of(coarse) == figures_of(regroup(fine, group_by)), group_by
    narrowed = Scope(country="FR")
    by_route = rollup_figures(period=period, scope=narrowed, group_by=("connection",))
    fine_fr = [f for f in fine if f.group["country"] == "FR"]
    assert figures_of(by_route) == figures_of(regroup(fine_fr, ("connection",)))
    fine_series = rollup_series(period=period, group_by=("network",))
    (total_series,) = rollup_series(period=period).values()
    assert [p.messages for p in total_series] == [
        sum(s) for s in zip(*([p.messages for p in points] for points in fine_series.values()), strict=True)
    ]
