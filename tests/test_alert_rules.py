"""Alert rules over the rollups: a rule fires once when its figure has held past the threshold
for its duration with enough volume, resolves once when the figure has been back for its
cool-down, does not flap with a flapping figure, and a second round at the same time does nothing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from alerts import evaluation, metrics
from alerts.models import Alert, AlertEvent, AlertRule, Metric
from receipts.ingestion import ingest
from receipts.models import Connection, Message, Receipt, WebhookRefusal
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.reasons import ErrorClass
from receipts.rollups import maintain
from receipts.rollups.maintain import bucket_start
from receipts.rollups.models import Grain, Rollup, RollupReason
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 10, 0, 10, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def send_minute(connection: Connection, minute: int, *, delivered: int, failed: int, flow: str = "login-otp") -> None:
    """`delivered + failed` messages registered now, each with its receipt, through the real flow."""
    request = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")
    for index in range(delivered + failed):
        provider_id = f"m{minute}-{index}"
        message_register(
            MessageRegistration(
                connection=connection, provider_message_id=provider_id,
                recipient=parse_number(f"+3361234{minute:02d}{index:02d}"), flow=flow,
            )
        )  # fmt: skip
        status = Status.DELIVERED if index < delivered else Status.UNDELIVERED
        fields: dict[str, Any] = {} if status == Status.DELIVERED else {"error_code": "1"}
        event = ReceiptEvent(provider_message_id=provider_id, provider_status=status.value, status=status,
                             event_id=f"{provider_id}:{status}", **fields)  # fmt: skip
        ingest(connection=connection, request=request, events=[event], headers={})


def roll_up() -> None:
    while maintain.roll_up():
        pass


def delivery_rule(connection: Connection, **fields: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "OTP delivery rate", "metric": Metric.DELIVERY_RATE, "connection": connection, "window_minutes": 5,
        "comparison": AlertRule.Comparison.BELOW, "threshold": Decimal(90), "min_volume": 20, "hold_minutes": 5,
        "cooldown_minutes": 5, "severity": "critical",
    }  # fmt: skip
    values.update(fields)
    rule = AlertRule(**values)
    rule.full_clean()
    rule.save()
    return rule


def run_minutes(clock: Any, connection: Connection, minutes: range, *, delivered: int, failed: int) -> list[str]:
    """One minute at a time: traffic, a rollup pass, a round of evaluation; the rule's states."""
    states = []
    for minute in minutes:
        clock.move_to(START + timedelta(minutes=minute))
        send_minute(connection, minute, delivered=delivered, failed=failed)
        roll_up()
        assert evaluation.evaluate_all(now=timezone.now()) is not None
        states.append(AlertRule.objects.get().state)
    return states


def test_a_drop_in_delivery_rate_fires_once_and_resolves_once_when_it_recovers(clock: Any) -> None:
    connection = ConnectionFactory()
    rule = delivery_rule(connection)
    run_minutes(clock, connection, range(0, 10), delivered=10, failed=0)
    assert not Alert.objects.exists()

    states = run_minutes(clock, connection, range(10, 30), delivered=5, failed=5)
    # The window (5 minutes) turns bad within a few minutes, then the rule must hold 5 minutes.
    assert "pending" in states
    assert states[-1] == "firing"
    alert = Alert.objects.get()
    assert (alert.rule, alert.state, alert.severity, alert.source) == (rule, "open", "critical", "alert_rule")
    assert alert.value == pytest.approx(50.0)
    assert alert.volume >= 20
    fired_at = alert.created_at
    assert fired_at - START >= timedelta(minutes=10 + 5)  # never before the hold time

    states = run_minutes(clock, connection, range(30, 50), delivered=10, failed=0)
    assert states[-1] == "ok"
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.resolved_at is not None
    assert alert.resolved_at - fired_at >= timedelta(minutes=15)  # 5-min window back to normal + 5-min cool-down
    assert Alert.objects.count() == 1
    kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True))
    assert kinds == ["fired", "resolved"]
    assert "Delivery rate" in AlertEvent.objects.get(kind="fired").text


def test_too_few_messages_never_fire_whatever_the_rate(clock: Any) -> None:
    connection = ConnectionFactory()
    delivery_rule(connection, min_volume=500)
    states = run_minutes(clock, connection, range(0, 15), delivered=1, failed=9)
    assert set(states) == {"ok"}
    assert not Alert.objects.exists()


def reading(value: float | None, volume: int = 100) -> metrics.Reading:
    return metrics.Reading(value, volume)


def test_a_flapping_figure_keeps_one_alert_open_until_it_stays_normal_for_the_cool_down() -> None:
    connection = ConnectionFactory()
    rule = delivery_rule(connection, hold_minutes=1, cooldown_minutes=5)
    now = START
    # Bad, good, bad, good ... every minute, after firing: each dip is shorter than the cool-down.
    figures = [50, 50, 50] + [95, 50] * 6 + [95] * 6
    for figure in figures:
        evaluation.step(rule, reading(figure), now)
        rule.save()
        now += timedelta(minutes=1)
    assert Alert.objects.count() == 1
    alert = Alert.objects.get()
    assert alert.state == "resolved"
    assert list(alert.events.values_list("kind", flat=True)) == ["fired", "resolved"]
    # Resolved only after five good minutes in a row (the last six readings).
    assert alert.resolved_at == START + timedelta(minutes=len(figures) - 1)


def test_a_condition_that_stops_before_its_hold_time_never_fires() -> None:
    rule = delivery_rule(ConnectionFactory(), hold_minutes=5)
    now = START
    for figure in [50, 50, 50, 50, 95, 50, 50, 50, 50, 95]:
        evaluation.step(rule, reading(figure), now)
        now += timedelta(minutes=1)
    assert rule.state == "ok"
    assert not Alert.objects.exists()


def test_a_second_round_while_one_runs_does_nothing(clock: Any) -> None:
    rule = delivery_rule(ConnectionFactory(), hold_minutes=0)
    other = connections.create_connection("default")  # another worker's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [evaluation.ROUND_LOCK])
        assert evaluation.evaluate_all(now=timezone.now()) is None
        rule.refresh_from_db()
        assert rule.evaluated_at is None
    finally:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [evaluation.ROUND_LOCK])
        other.close()
    assert evaluation.evaluate_all(now=timezone.now()) == 1


def test_a_rule_switched_off_while_firing_resolves_its_alert(clock: Any) -> None:
    rule = delivery_rule(ConnectionFactory(), hold_minutes=0, min_volume=0)
    evaluation.step(rule, reading(10.0), timezone.now())
    rule.save()
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    evaluation.evaluate_all(now=timezone.now())
    assert Alert.objects.get().state == "resolved"
    assert AlertRule.objects.get().state == "ok"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": Metric.DELIVERY_RATE, "threshold": Decimal(101)}, "threshold"),
        ({"metric": Metric.P95_DELIVERY, "threshold": Decimal(4000)}, "threshold"),
        ({"metric": Metric.CLASS_RATE, "threshold": Decimal(5)}, "error_class"),
        ({"metric": Metric.REASON_RATE, "threshold": Decimal(5)}, "reason"),
        ({"metric": Metric.OUTBOX_LAG, "threshold": Decimal(60), "country": "FR"}, "country"),
        ({"metric": Metric.DELIVERY_RATE, "threshold": Decimal(90), "reason": "blocked_content"}, "reason"),
    ],
)
def test_a_rule_that_cannot_mean_anything_is_refused_with_a_reason(fields: dict[str, Any], field: str) -> None:
    rule = AlertRule(name="x", window_minutes=15, **fields)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert field in refused.value.message_dict


def test_each_metric_is_read_from_the_rollups_of_its_scope(clock: Any) -> None:
    paris, other = ConnectionFactory(), ConnectionFactory()
    send_minute(paris, 0, delivered=6, failed=4)
    send_minute(other, 0, delivered=10, failed=0)
    roll_up()
    clock.move_to(START + timedelta(minutes=1))

    def read(metric: str, connection: Connection | None = None, **extra: Any) -> metrics.Reading:
        scope = metrics.scope_key(connection.pk if connection else None, "", "", "")
        watch = metrics.Watch(pk=1, metric=metric, window_minutes=5, scope=scope, **extra)
        return metrics.read_all([watch], timezone.now())[1]

    assert read("delivery_rate", paris) == metrics.Reading(60.0, 10)
    assert read("delivery_rate") == metrics.Reading(80.0, 20)
    by_class = {error_class: read("class_rate", paris, error_class=error_class).value for error_class in ErrorClass}
    assert sum(value or 0 for value in by_class.values()) == pytest.approx(40.0)  # every failure has one class
    assert read("missing_rate", other) == metrics.Reading(0.0, 10)
    p95 = read("p95_delivery", paris)
    assert p95.volume == 6
    assert p95.value is not None
    assert p95.value <= 1.0
    assert read("volume_week", paris).value is None  # nothing last week to compare with


def test_volume_is_compared_with_the_same_time_last_week(clock: Any) -> None:
    connection = ConnectionFactory()
    send_minute(connection, 0, delivered=20, failed=0)  # last week, 10:00
    roll_up()
    clock.move_to(START + timedelta(days=7, minutes=30))
    send_minute(connection, 1, delivered=10, failed=0)  # today, 10:30
    roll_up()
    watch = metrics.Watch(pk=1, metric="volume_week", window_minutes=60, scope=metrics.scope_key(None, "", "", ""))
    # 11:00: the last hour, 10:00-11:00, against last week's 10:00-11:00 (from its hour bucket).
    assert metrics.read_all([watch], START + timedelta(days=7, hours=1))[1] == metrics.Reading(50.0, 20)
    # 10:31: 09:31-10:31 against last week's, which covers 31 minutes of its 10:00 hour (spread evenly).
    partial = metrics.read_all([watch], START + timedelta(days=7, minutes=31))[1]
    assert partial.volume == 10
    assert partial.value == pytest.approx(100 * 10 / (20 * 31 / 60))


def test_the_system_metrics_read_the_queues_and_the_schedule(clock: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from receipts.models import OutboxEvent
    from tests.factories import MessageFactory

    now = timezone.now()
    message = MessageFactory()
    OutboxEvent.objects.create(message=message, kind="status_changed", status="delivered",
                               created_at=now - timedelta(minutes=10))  # fmt: skip
    OutboxEvent.objects.create(message=message, kind="status_changed", status="delivered",
                               created_at=now - timedelta(hours=1), processed_at=now)  # fmt: skip
    assert metrics.outbox_lag(now) == metrics.Reading(600.0, 0)
    assert metrics.feed_backlog(now) == metrics.Reading(0.0, 0)
    assert metrics.overdue_attempts(now) == metrics.Reading(0.0, 0)

    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="late", task="alerts.tasks.evaluate_alert_rules", interval=every_minute,
                                last_run_at=now - timedelta(minutes=5))  # fmt: skip
    assert metrics.beat_late(now) == metrics.Reading(240.0, 0)

    rule = AlertRule.objects.create(name="outbox stuck", metric=Metric.OUTBOX_LAG, comparison="above",
                                    threshold=Decimal(300), hold_minutes=0, severity="critical")  # fmt: skip
    evaluation.evaluate_all(now=now)
    alert = Alert.objects.get(rule=rule)
    assert alert.value == 600.0
    assert AlertEvent.objects.get(alert=alert, kind="fired").text.endswith("600.0 s (rises above 300.0 s)")


def post_wrongly_signed(client: Client, connection: Connection) -> int:
    """A receipt signed with another secret, through the real webhook view."""
    body = generic_body("m-1", "delivered")
    headers = generic_headers(connection, body, secret="whsec_" + base64.b64encode(b"w" * 32).decode())
    content_type = headers.pop("content-type")
    return client.post(f"/hooks/{connection.slug}/", data=body, content_type=content_type, headers=headers).status_code


def test_wrongly_signed_webhooks_are_counted_per_connection_and_a_signature_rule_fires(clock: Any) -> None:
    attacked, quiet = ConnectionFactory(), ConnectionFactory()
    rule = AlertRule(
        name="Forged receipts", metric=Metric.SIGNATURE_FAILURES, connection=attacked, window_minutes=5,
        comparison=AlertRule.Comparison.ABOVE, threshold=Decimal(2), min_volume=1000, hold_minutes=0,
        cooldown_minutes=5, severity="warning",
    )  # fmt: skip
    rule.full_clean()  # the minimum volume does not apply to a count of refusals
    rule.save()
    client = Client()
    assert [post_wrongly_signed(client, attacked) for _ in range(3)] == [401, 401, 401]
    assert post_wrongly_signed(client, quiet) == 401
    # Nothing of the refused requests is stored but their count.
    assert not Receipt.objects.exists()
    assert not Message.objects.exists()
    counts = {r.connection_id: (r.reason, r.count) for r in WebhookRefusal.objects.all()}
    assert counts == {attacked.pk: ("signature", 3), quiet.pk: ("signature", 1)}

    evaluation.evaluate_all(now=timezone.now())
    assert not Alert.objects.exists()  # the minute still filling is not read yet
    clock.move_to(START + timedelta(minutes=1))
    evaluation.evaluate_all(now=timezone.now())
    alert = Alert.objects.get()
    assert (alert.rule, alert.value) == (rule, 3.0)
    assert "Webhooks refused for a wrong signature or token (count): 3" in alert.events.get(kind="fired").text
    # Its chart draws, at each minute, the refusals in the 5-minute window ending there.
    first = START.replace(second=0)
    chart = metrics.series(evaluation.watch_of(rule), start=first - timedelta(minutes=2),
                           end=first + timedelta(minutes=7), grain=Grain.MINUTE)  # fmt: skip
    assert [reading.value for _, reading in chart] == [0, 0, 3, 3, 3, 3, 3, 0, 0]
    clock.move_to(START + timedelta(minutes=12))  # the refusals left the window, and the cool-down passed
    evaluation.evaluate_all(now=timezone.now())
    evaluation.evaluate_all(now=timezone.now() + timedelta(minutes=6))
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_signature_rule_is_scoped_to_a_connection_only() -> None:
    rule = AlertRule(name="x", metric=Metric.SIGNATURE_FAILURES, threshold=Decimal(5), country="FR")
    with pytest.raises(ValidationError, match="Refused webhooks are counted per connection"):
        rule.full_clean()


def test_scopes_read_from_a_coarse_level_and_from_the_fine_rows_give_the_same_figures(clock: Any) -> None:
    paris, other = ConnectionFactory(), ConnectionFactory()
    send_minute(paris, 0, delivered=6, failed=4)
    send_minute(paris, 1, delivered=3, failed=2, flow="signup")
    send_minute(other, 2, delivered=5, failed=1, flow="signup")
    roll_up()
    clock.move_to(START + timedelta(days=7, minutes=5))
    send_minute(paris, 3, delivered=2, failed=2, flow="signup")
    roll_up()
    now = timezone.now()
    reason = RollupReason.objects.values_list("reason", flat=True).first()
    assert reason
    scopes = [
        (None, None, None, None), (paris.pk, None, None, None), (None, "FR", None, None),
        (None, None, None, "signup"), (paris.pk, "FR", None, None), (paris.pk, None, None, "signup"),
        (None, None, "", None),
    ]  # fmt: skip
    assert {metrics.source_of(scope).level for scope in scopes} == {"r", "f", "c", None}  # every source
    watches = [
        metrics.Watch(pk=n * 3 + k, metric=metric, window_minutes=10, scope=scope, reason=reason)
        for n, scope in enumerate(scopes)
        for k, metric in enumerate(("delivery_rate", "reason_rate", "volume_week"))
    ]
    # One scope needs the fine rows, so every scope is read from them; alone, the others are
    # read from the levels: both must equal the fine rows summed with the ORM below.
    readings = metrics.read_all(watches, now)
    coarse = [watch for watch in watches if metrics.source_of(watch.scope).level is not None]
    assert metrics.read_all(coarse, now) == {watch.pk: readings[watch.pk] for watch in coarse}
    window = metrics.window_for(10, now)
    week = metrics.window_for(10, now - timedelta(days=7))
    for n, scope in enumerate(scopes):
        narrowed = {name: value for name, value in zip(metrics.SCOPE, scope, strict=True) if value is not None}
        cells = Rollup.objects.filter(grain=window.grain, bucket__gte=window.start, bucket__lt=window.end, **narrowed)
        figures = cells.aggregate(delivered=Sum("status_delivered"), messages=Sum("messages"))
        final = sum(cells.aggregate(n=Sum(column))["n"] or 0 for column in metrics.FINAL_COLUMNS)
        failures = (
            RollupReason.objects.filter(
                grain=window.grain, bucket__gte=window.start, bucket__lt=window.end, reason=reason, **narrowed
            ).aggregate(n=Sum("count"))["n"]
            or 0
        )
        hours = Rollup.objects.filter(
            grain=Grain.HOUR, bucket__gte=bucket_start(week.start, Grain.HOUR), bucket__lt=week.end, **narrowed
        )
        # Each hour of last week weighs the part of it the window covers.
        last_week = sum(
            cell.messages * max(0.0, (min(cell.bucket + timedelta(hours=1), week.end) - max(cell.bucket, week.start))
                                / timedelta(hours=1))
            for cell in hours
        )  # fmt: skip
        messages = figures["messages"] or 0
        assert readings[n * 3].volume == final, scope
        assert readings[n * 3].value == (100.0 * (figures["delivered"] or 0) / final if final else None), scope
        assert readings[n * 3 + 1] == metrics.Reading(100.0 * failures / messages if messages else None, messages)
        assert readings[n * 3 + 2].volume == round(last_week), scope
