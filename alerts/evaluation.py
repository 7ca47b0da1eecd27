"""One round of alert-rule evaluation (beat, every minute).

Each enabled rule's metric is read (metrics.py) and its state moves:

    ok --holds--> pending --held hold_minutes--> firing (the alert opens, channels are told)
    pending --stops holding--> ok
    firing --stopped holding for cooldown_minutes--> ok (the alert resolves, channels are told)

"Holds" means the comparison is true and the window counted at least the rule's minimum volume;
a window too thin to judge does not hold (so an alert resolves when its traffic goes away). The
cool-down damps a flapping figure: a firing rule whose figure dips under the threshold for a
minute and comes back keeps its one open alert.

The whole round is one transaction behind a transaction-scoped advisory lock: a second round
started meanwhile (two beats, a slow round) returns at once and changes nothing, so an alert
cannot fire twice; the database also refuses a second open alert per rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db import connection as db
from django.db import transaction

from alerts import metrics, notify
from alerts.models import Alert, AlertRule
from alerts.services import alert_fire, alert_resolve

ROUND_LOCK = int.from_bytes(hashlib.blake2b(b"alert-rules-round", digest_size=8).digest(), "big", signed=True)
STATE_FIELDS = ["state", "holding_since", "clearing_since", "evaluated_at", "last_value", "last_volume"]


def watch_of(rule: AlertRule) -> metrics.Watch:
    return metrics.Watch(
        pk=rule.pk, metric=rule.metric, window_minutes=rule.window_minutes, error_class=rule.error_class,
        reason=rule.reason, scope=metrics.scope_key(rule.connection_id, rule.country, rule.network, rule.flow),
    )  # fmt: skip


def holds(rule: AlertRule, reading: metrics.Reading) -> bool:
    if reading.value is None or (rule.counts_messages and reading.volume < rule.min_volume):
        return False
    threshold = float(rule.threshold)
    return reading.value < threshold if rule.comparison == AlertRule.Comparison.BELOW else reading.value > threshold


def summary(rule: AlertRule, reading: metrics.Reading) -> str:
    unit = rule.unit
    text = (
        f"{rule.get_metric_display()}: {notify.figure(reading.value, unit)} "
        f"({rule.get_comparison_display()} {notify.figure(float(rule.threshold), unit)}"
    )
    return text + (f", {reading.volume} messages)" if rule.counts_messages else ")")


def step(rule: AlertRule, reading: metrics.Reading, now: datetime) -> None:
    """Move the rule's state for one reading; fire or resolve its alert when it must."""
    rule.evaluated_at, rule.last_value, rule.last_volume = now, reading.value, reading.volume
    holding = holds(rule, reading)
    if rule.state == AlertRule.State.OK and holding:
        rule.state, rule.holding_since = AlertRule.State.PENDING, now
    if rule.state == AlertRule.State.PENDING:
        if not holding:
            rule.state, rule.holding_since = AlertRule.State.OK, None
        elif rule.holding_since and now - rule.holding_since >= timedelta(minutes=rule.hold_minutes):
            assert reading.value is not None
            alert_fire(rule=rule, value=reading.value, volume=reading.volume, summary=summary(rule, reading), now=now)
            rule.state, rule.clearing_since = AlertRule.State.FIRING, None
    elif rule.state == AlertRule.State.FIRING:
        if holding:
            rule.clearing_since = None
        else:
            rule.clearing_since = rule.clearing_since or now
            if now - rule.clearing_since >= timedelta(minutes=rule.cooldown_minutes):
                _resolve(rule, now, f"back to normal: {summary(rule, reading)}")


def _resolve(rule: AlertRule, now: datetime, why: str) -> None:
    for alert in Alert.objects.filter(rule=rule, state=Alert.State.OPEN):
        alert_resolve(alert=alert, now=now, why=why)
    rule.state, rule.holding_since, rule.clearing_since = AlertRule.State.OK, None, None


def evaluate_all(*, now: datetime) -> int | None:
    """One round; the number of rules evaluated, None when another round holds the lock."""
    with transaction.atomic():
        # SQLite (the demo) has one writer at a time: nothing to take.
        if db.vendor == "postgresql":
            with db.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROUND_LOCK])
                if not cursor.fetchone()[0]:
                    return None
        rules = list(AlertRule.objects.filter(enabled=True).order_by("id"))
        readings = metrics.read_all([watch_of(rule) for rule in rules], now)
        for rule in rules:
            step(rule, readings[rule.pk], now)
        # A rule switched off while firing: its alert would otherwise stay open for ever.
        for rule in AlertRule.objects.filter(
            enabled=False, state__in=[AlertRule.State.FIRING, AlertRule.State.PENDING]
        ):
            _resolve(rule, now, "the rule was switched off")
            rules.append(rule)
        _save_states(rules)
    return len(rules)


# The type of each STATE_FIELDS column, for the arrays _save_states sends.
STATE_TYPES = ("varchar", "timestamptz", "timestamptz", "timestamptz", "float8", "integer")


def _save_states(rules: list[AlertRule]) -> None:
    """Every rule's state in one UPDATE ... FROM unnest(arrays): one array per field rather than
    a VALUES row per rule, whose 7,000 parameters at 1,000 rules took longer to compose and parse
    than the update itself (bench/alert_evaluation.py); bulk_update's CASE per field compares each
    row with every id of its batch."""
    if not rules:
        return
    if db.vendor != "postgresql":
        # SQLite (the demo, a handful of rules) has no arrays.
        AlertRule.objects.bulk_update(rules, list(STATE_FIELDS))
        return
    columns = [[rule.pk for rule in rules], *([getattr(rule, name) for rule in rules] for name in STATE_FIELDS)]
    arrays = ", ".join(f"%s::{kind}[]" for kind in ("bigint", *STATE_TYPES))
    table = AlertRule._meta.db_table
    assignments = ", ".join(f"{name} = v.{name}" for name in STATE_FIELDS)
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS r SET {assignments} FROM unnest({arrays}) "  # noqa: S608
            f"AS v(id, {', '.join(STATE_FIELDS)}) WHERE r.id = v.id",
            columns,
        )
