"""How far a route's "delivered" can be trusted: a route that calls everything delivered at once,
dated before the submission, and whose messages nobody acts on, scores low with the reasons in
words; an honest route beside it keeps its trust; an alert rule on the score fires when it drops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from alerts import evaluation
from alerts.models import Alert, AlertRule, Metric
from dlrconsole import roles
from dlrconsole.console.routes import trust_scores
from receipts.conversions import conversion_record
from receipts.honesty import ROUTE, Signals, route_trust_scores, trust_score
from receipts.ingestion import ingest
from receipts.models import Connection, Conversion, Receipt
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.rollups import maintain
from receipts.rollups.selectors import Period, Scope
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory, user_in_role

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
REQUEST = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")


def send(
    clock: Any,
    connection: Connection,
    at: datetime,
    index: int,
    *,
    status: Status = Status.DELIVERED,
    after: float = 4.0,
    dated: float | None = None,
    converted: bool = False,
) -> None:
    """One message registered at `at`, its final receipt `after` seconds later, dated `dated`
    seconds after the submission (the receipt's arrival when None), and its conversion."""
    clock.move_to(at)
    provider_id = f"{connection.slug}-{index}"
    message, _ = message_register(
        MessageRegistration(connection=connection, provider_message_id=provider_id,
                            recipient=parse_number(f"+336123{index:05d}"), flow="login-otp")
    )  # fmt: skip
    clock.move_to(at + timedelta(seconds=after))
    done = at + timedelta(seconds=after if dated is None else dated)
    fields: dict[str, Any] = {} if status == Status.DELIVERED else {"error_code": "1"}
    event = ReceiptEvent(provider_message_id=provider_id, provider_status=status.value, status=status,
                         event_id=f"{provider_id}:{status}", provider_timestamp=done, **fields)  # fmt: skip
    ingest(connection=connection, request=REQUEST, events=[event], headers={})
    if converted:
        conversion_record(message=message, kind=Conversion.Kind.OTP_ENTERED)


def traffic(clock: Any, honest: Connection, liar: Connection, *, minutes: int = 10, start: datetime = START) -> None:
    """Per minute, on each route, 5 messages: the honest route delivers 4 in seconds and fails
    one; 3 of its deliveries are acted on. The liar "delivers" all 5 within a fifth of a second,
    dated ten minutes before their submission; nobody acts on them."""
    for minute in range(minutes):
        base = start + timedelta(minutes=minute)
        for n in range(5):
            at = base + timedelta(seconds=n * 10)
            index = minute * 10 + n
            if n == 4:
                send(clock, honest, at, index, status=Status.UNDELIVERED)
            else:
                # Some done dates are to the minute (SMPP, Twilio): up to a minute before the submission.
                dated = -50.0 if n == 0 else None
                send(clock, honest, at, index, after=3.0 + n, dated=dated, converted=n < 3)
            send(clock, liar, at, index, after=0.2, dated=-600.0)
    clock.move_to(start + timedelta(minutes=minutes, seconds=5))
    while maintain.roll_up():
        pass


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def hour_period(start: datetime = START) -> Period:
    return Period(start, start + timedelta(hours=1), "h")


def test_a_route_that_fakes_delivered_scores_low_and_says_why(clock: Any) -> None:
    honest, liar = ConnectionFactory(slug="honest"), ConnectionFactory(slug="grey")
    traffic(clock, honest, liar)

    scores = {s.route["connection"]: s for s in route_trust_scores(period=hour_period())}

    lying = scores[liar.pk]
    assert lying.level == "untrusted"
    assert lying.score is not None
    assert lying.score < 10
    assert lying.signals.delivered == 50
    assert lying.signals.conversions == 0
    assert lying.signals.backdated == 50
    words = " ".join(lying.reasons)
    assert "Conversions: 0 of the" in words
    assert "within 1 s of submission" in words
    assert "done date before the message was submitted" in words
    assert lying.confidence == 0.1  # 50 delivered of the 500 that give full confidence

    trusted = scores[honest.pk]
    assert trusted.level == "trusted"
    assert trusted.score == 100.0
    assert trusted.signals.conversions == 30
    assert trusted.signals.backdated == 0
    assert trusted.reasons == []


def test_a_route_with_too_few_deliveries_is_not_judged() -> None:
    judged = trust_score({"connection": 1}, Signals(delivered=5, finished=5, failed=0, fast=5))
    assert judged.score is None
    assert judged.level == "unknown"
    assert "Not enough delivered messages" in judged.reasons[0]


def test_without_conversions_a_route_is_judged_on_timing_alone_with_less_confidence() -> None:
    timing = trust_score({}, Signals(delivered=500, finished=520, failed=20, fast=10, receipts_checked=500))
    converting = trust_score(
        {},
        Signals(delivered=500, finished=520, failed=20, fast=10, receipts_checked=500, conversions=320,
                expected_conversions=320.0),
    )  # fmt: skip
    assert timing.score == converting.score == 100.0
    assert timing.confidence < converting.confidence == 1.0
    assert "judged on timing alone" in timing.reasons[-1]


def test_no_failure_at_all_over_a_large_volume_lowers_the_score() -> None:
    spotless = trust_score({}, Signals(delivered=2000, finished=2000, failed=0, fast=0))
    assert spotless.score == 80.0
    assert "No failure at all in 2000 finished messages" in spotless.reasons[0]


def test_an_alert_rule_on_the_trust_score_fires_when_the_route_starts_lying(clock: Any) -> None:
    honest, liar = ConnectionFactory(slug="honest"), ConnectionFactory(slug="grey")
    rule = AlertRule(
        name="Grey route", metric=Metric.TRUST_SCORE, connection=liar, window_minutes=60,
        comparison=AlertRule.Comparison.BELOW, threshold=Decimal(50), min_volume=20, hold_minutes=0,
        cooldown_minutes=5, severity="critical",
    )  # fmt: skip
    rule.full_clean()
    rule.save()
    # An hour of honest traffic on both routes: the rule stays quiet.
    for minute in range(2, 60, 12):
        for n in range(5):
            at = START + timedelta(minutes=minute, seconds=n * 10)
            send(clock, honest, at, minute * 10 + n, after=4.0, converted=n < 3)
            send(clock, liar, at, minute * 10 + n, after=5.0, converted=n < 3)
    later = START + timedelta(hours=1, minutes=1)
    clock.move_to(later)
    while maintain.roll_up():
        pass
    evaluation.evaluate_all(now=timezone.now())
    assert not Alert.objects.exists()

    # The next hour the route fakes its deliveries.
    traffic(clock, honest, liar, minutes=8, start=START + timedelta(hours=1, minutes=2))
    clock.move_to(START + timedelta(hours=2, minutes=1))
    evaluation.evaluate_all(now=timezone.now())
    clock.move_to(START + timedelta(hours=2, minutes=2))
    evaluation.evaluate_all(now=timezone.now())

    alert = Alert.objects.get()
    assert (alert.rule, alert.state) == (rule, "open")
    assert alert.value is not None
    assert alert.value < 50
    assert rule.get_metric_display().startswith("Route trust score")


def test_trust_scores_cover_the_scope_asked_for(clock: Any) -> None:
    honest, liar = ConnectionFactory(slug="honest"), ConnectionFactory(slug="grey")
    traffic(clock, honest, liar, minutes=5)
    [only] = route_trust_scores(period=hour_period(), scope=Scope(connection_id=liar.pk), group_by=())
    assert only.route == {}
    assert only.signals.delivered == 25
    # The flow's conversion rate comes from every route, so the liar's silence stands out.
    assert only.signals.expected_conversions == pytest.approx(25 * 15 / 45)


def test_the_routes_page_shows_each_routes_trust_and_its_page_says_why(clock: Any, client: Any) -> None:
    honest, liar = ConnectionFactory(slug="honest"), ConnectionFactory(slug="grey")
    traffic(clock, honest, liar)
    client.force_login(user_in_role(roles.VIEWER, "viewer"))

    page = client.get(reverse("console:routes"), {"window": "1h"}).content.decode()
    assert page.count('data-testid="trust-untrusted"') == 1
    assert page.count('data-testid="trust-trusted"') == 1

    detail = client.get(reverse("console:route-trust"), {"window": "1h", "connection": "grey", "country": "FR"})
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "done date before the message was submitted" in text
    assert 'data-testid="trust-score">0 / 100' in text
    assert client.get(reverse("console:route-trust"), {"connection": "nowhere"}).status_code == 400


def test_the_routes_page_reuses_its_trust_scores_for_a_while(clock: Any, settings: Any) -> None:
    settings.DLR_TRUST_CACHE_SECONDS = 60
    cache.clear()
    honest, liar = ConnectionFactory(slug="honest"), ConnectionFactory(slug="grey")
    traffic(clock, honest, liar, minutes=5)
    first = trust_scores(period=hour_period(), scope=Scope(), group_by=ROUTE)
    Receipt.objects.update(provider_timestamp=None)  # what the scores read changes...
    again = trust_scores(period=hour_period(), scope=Scope(), group_by=ROUTE)
    assert again == first  # ...but the page shows the scores it computed a moment ago
    settings.DLR_TRUST_CACHE_SECONDS = 0
    assert trust_scores(period=hour_period(), scope=Scope(), group_by=ROUTE) != first
