"""The rollups count each message once, where it went and as it ended: whatever order its
receipts arrive in, however often a provider repeats one, and when a late "delivered"
replaces a failure. A recount from the messages agrees after any stream of events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connections
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receipts import store
from receipts.ingestion import ingest
from receipts.models import Connection, ConnectionPrice, Message, Receipt, RollupPending
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.rollups import maintain, rebuild, recount
from receipts.rollups.figures import COUNT_COLUMNS, HISTOGRAM_BOUNDS, histogram_bucket, percentile
from receipts.rollups.models import (
    LEVEL_DIMENSIONS,
    CoarseRollup,
    CoarseRollupReason,
    Grain,
    Rollup,
    RollupReason,
    Snapshot,
)
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def register(
    connection: Connection, provider_id: str, *, number: str = "+33612345678", flow: str = "login-otp"
) -> Message:
    message, _ = message_register(
        MessageRegistration(
            connection=connection, provider_message_id=provider_id, recipient=parse_number(number), flow=flow
        )
    )
    return message


def receive(connection: Connection, provider_id: str, status: Status, *, event_id: str = "", **fields: Any) -> None:
    """A receipt through the ingestion flow, as any adapter hands it over."""
    event = ReceiptEvent(
        provider_message_id=provider_id,
        provider_status=status.value,
        status=status,
        event_id=event_id or f"{provider_id}:{status}",
        **fields,
    )
    request = WebhookRequest(method="POST", url="https://console.example/hooks/x/", headers={}, body=b"{}")
    ingest(connection=connection, request=request, events=[event], headers={})


def coarse_rows_add_up_the_fine_rows() -> bool:
    """Each level's rows, read back, equal the fine rows summed over that level's dimensions
    (computed here with the ORM, apart from the passes' own projection)."""
    for level, dimensions in LEVEL_DIMENSIONS.items():
        for fine_model, coarse_model, tail, figures in (
            (Rollup, CoarseRollup, ("currency",), ("cost", *COUNT_COLUMNS)),
            (RollupReason, CoarseRollupReason, ("reason", "error_class"), ("count",)),
        ):
            key = ("grain", "bucket", *dimensions, *tail)
            summed = fine_model.objects.order_by().values(*key).annotate(**{f"sum_{f}": Sum(f) for f in figures})
            expected = {
                tuple(row[k] for k in key): values
                for row in summed
                for values in [tuple(row[f"sum_{f}"] for f in figures)]
                if any(values)
            }
            found = {
                tuple(row[k] for k in key): values
                for row in coarse_model.objects.filter(level=level).values(*key, *figures)
                for values in [tuple(row[f] for f in figures)]
                if any(values)
            }
            if found != expected:
                return False
    return True


def cells(grain: str = Grain.MINUTE) -> list[Rollup]:
    return list(Rollup.objects.filter(grain=grain).order_by("bucket", "connection_id", "country", "network"))


def test_a_registered_message_is_counted_in_every_grain_after_a_pass(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    assert maintain.roll_up() == 1
    minute, hour, day = (cells(grain)[0] for grain in (Grain.MINUTE, Grain.HOUR, Grain.DAY))
    assert (minute.bucket, hour.bucket, day.bucket) == (
        datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
        datetime(2026, 3, 2, 10, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    for cell in (minute, hour, day):
        assert (cell.connection_id, cell.country, cell.flow, cell.messages, cell.status_queued) == (
            connection.pk, "FR", "login-otp", 1, 1,
        )  # fmt: skip
    assert RollupPending.objects.count() == 0


def test_a_delivery_moves_the_message_between_statuses_and_fills_the_time_histograms(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    maintain.roll_up()
    clock.shift(timedelta(seconds=4))
    receive(connection, "m1", Status.SENT)
    clock.shift(timedelta(seconds=3))
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    (cell,) = cells()
    assert (cell.messages, cell.status_queued, cell.status_sent, cell.status_delivered) == (1, 0, 0, 1)
    assert getattr(cell, f"ttfr_{histogram_bucket(4)}") == 1  # first receipt after 4 s
    assert getattr(cell, f"ttd_{histogram_bucket(7)}") == 1  # delivered after 7 s


def test_a_late_delivery_replaces_a_failure_and_its_reason(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.EXPIRED, error_code="")
    maintain.roll_up()
    assert cells()[0].status_expired == 1
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    (cell,) = cells()
    assert (cell.status_expired, cell.status_delivered, cell.messages) == (0, 1, 1)
    assert not RollupReason.objects.filter(count__gt=0).exists()


def test_a_repeated_receipt_and_receipts_out_of_order_count_once(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.DELIVERED)
    receive(connection, "m1", Status.DELIVERED)  # the provider's retry: the same event id
    receive(connection, "m1", Status.SENT)  # arrives after the delivery
    maintain.roll_up()
    (cell,) = cells()
    assert (cell.messages, cell.status_delivered, cell.status_sent) == (1, 1, 0)


def test_failures_are_counted_by_reason_and_class(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.UNDELIVERED, error_code="1")
    maintain.roll_up()
    message = Message.objects.get()
    (reason,) = RollupReason.objects.filter(grain=Grain.DAY)
    assert (reason.reason, reason.error_class, reason.count) == (message.reason, message.error_class, 1)
    assert getattr(cells(Grain.DAY)[0], f"class_{message.error_class}") == 1


def test_the_network_and_the_price_a_receipt_carries_reach_the_message_and_its_cell(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.DELIVERED, network="20801", price="0.0450", currency="EUR")
    maintain.roll_up()
    message = Message.objects.get()
    assert (message.network, message.cost, message.currency) == ("20801", Decimal("0.045"), "EUR")
    (cell,) = cells()
    assert (cell.network, cell.currency, cell.cost, cell.costed) == ("20801", "EUR", Decimal("0.045"), 1)


def test_a_receipt_that_does_not_move_the_message_still_brings_its_network(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.DELIVERED)
    receive(connection, "m1", Status.SENT, network="Orange F")  # late, does not move it
    maintain.roll_up()
    assert Message.objects.get().network == "Orange F"
    assert [cell.network for cell in cells()] == ["Orange F"]


def test_the_price_list_gives_a_cost_until_a_receipt_says_what_the_provider_charged(clock: Any) -> None:
    connection = ConnectionFactory()
    ConnectionPrice.objects.create(connection=connection, country="FR", price=Decimal("0.07"), currency="EUR")
    ConnectionPrice.objects.create(connection=connection, country="", price=Decimal("0.10"), currency="EUR")
    register(connection, "fr", number="+33612345678")
    register(connection, "de", number="+4915112345678")
    assert {m.provider_message_id: m.cost for m in Message.objects.all()} == {
        "fr": Decimal("0.07"),
        "de": Decimal("0.10"),
    }
    receive(connection, "fr", Status.DELIVERED, price="0.065", currency="EUR")
    assert Message.objects.get(provider_message_id="fr").cost == Decimal("0.065")


def test_a_missing_receipt_is_counted_until_the_message_ends(clock: Any) -> None:
    connection = ConnectionFactory()
    message = register(connection, "m1")
    store.messages_report_missing([(message.pk, message.status)], now=NOW)
    maintain.roll_up()
    assert cells()[0].missing == 1
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    assert cells()[0].missing == 0


def test_resends_and_fallbacks_are_counted(clock: Any) -> None:
    connection = ConnectionFactory()
    original = register(connection, "m1")
    message_register(
        MessageRegistration(
            connection=connection, provider_message_id="m1-r", recipient=parse_number("+33612345678"),
            flow="login-otp", chain_root=original,
        )
    )  # fmt: skip
    store.message_note_fallback(original.pk)
    maintain.roll_up()
    (cell,) = cells()
    assert (cell.messages, cell.resends, cell.fallbacks) == (2, 1, 1)


def test_a_pass_takes_at_most_its_batch_and_the_next_takes_the_rest(clock: Any) -> None:
    connection = ConnectionFactory()
    for n in range(15):
        register(connection, f"m{n}")
    assert maintain.roll_up(limit=10) == 10
    assert maintain.roll_up(limit=10) == 5
    assert maintain.roll_up(limit=10) == 0
    assert cells()[0].messages == 15


def test_a_run_takes_full_batches_and_stops_after_the_first_short_one(
    clock: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Messages keep arriving while the passes run (one after each pass, as under steady load):
    # a run that chased them until the queue was empty would never stop short of its time.
    settings.DLR_ROLLUP_BATCH = 10
    connection = ConnectionFactory()
    for n in range(25):
        register(connection, f"m{n}")
    one_pass, taken = maintain.roll_up, []

    def pass_then_an_arrival(**kwargs: Any) -> int | None:
        taken.append(one_pass(**kwargs))
        register(connection, f"late{len(taken)}")
        return taken[-1]

    monkeypatch.setattr(maintain, "roll_up", pass_then_an_arrival)
    assert maintain.roll_up_all(seconds=30) == 27
    assert taken == [10, 10, 7]  # 25, and the arrivals after the first two passes
    assert RollupPending.objects.count() == 1  # the arrival after the short pass: the next run's
    monkeypatch.undo()
    assert maintain.roll_up_all(seconds=30) == 1
    assert cells()[0].messages == 28


def test_minute_buckets_older_than_kept_are_pruned_days_stay(clock: Any, settings: Any) -> None:
    settings.DLR_ROLLUP_MINUTES_KEEP_HOURS = 2
    connection = ConnectionFactory()
    register(connection, "old")
    maintain.roll_up()
    clock.shift(timedelta(hours=3))
    deleted = maintain.prune()
    assert deleted[Grain.MINUTE] == 1
    assert not cells(Grain.MINUTE)
    assert cells(Grain.DAY)[0].messages == 1
    # A late receipt for the old message no longer writes the pruned minute.
    receive(connection, "old", Status.DELIVERED)
    maintain.roll_up()
    assert not cells(Grain.MINUTE)
    assert cells(Grain.DAY)[0].status_delivered == 1


def test_a_change_in_a_minute_no_longer_kept_still_counts_in_its_hour_and_day(clock: Any, settings: Any) -> None:
    settings.DLR_ROLLUP_MINUTES_KEEP_HOURS = 1
    connection = ConnectionFactory()
    register(connection, "old")  # 10:15
    maintain.roll_up()
    clock.shift(timedelta(minutes=50))
    register(connection, "recent")  # 11:05, the same day, the next hour
    clock.shift(timedelta(minutes=20))  # 11:25: the 10:15 minute is older than an hour
    receive(connection, "old", Status.DELIVERED)
    receive(connection, "recent", Status.DELIVERED)
    maintain.roll_up()
    # The pass counts each change once per minute and sums the minutes into hours and days:
    # the old minute is not written again, but its change reaches its hour and its day.
    minutes = cells(Grain.MINUTE)
    assert [(c.bucket.hour, c.bucket.minute, c.status_delivered) for c in minutes] == [(10, 15, 0), (11, 5, 1)]
    assert [(c.bucket.hour, c.messages, c.status_delivered) for c in cells(Grain.HOUR)] == [(10, 1, 1), (11, 1, 1)]
    assert [(c.messages, c.status_delivered) for c in cells(Grain.DAY)] == [(2, 2)]
    assert coarse_rows_add_up_the_fine_rows()


def test_a_message_deleted_takes_its_contribution_with_it(clock: Any) -> None:
    connection = ConnectionFactory()
    message = register(connection, "m1")
    maintain.roll_up()
    store.rollup_pending([message.pk])
    message.delete()
    maintain.roll_up()
    assert not Rollup.objects.filter(messages__gt=0).exists()
    assert not Snapshot.objects.exists()


def test_a_pass_does_nothing_while_another_holds_the_lock(clock: Any) -> None:
    register(ConnectionFactory(), "m1")
    other = connections.create_connection("default")  # another process's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [maintain.PASS_LOCK])
        assert maintain.roll_up() is None
        assert RollupPending.objects.count() == 1  # left for the pass that holds the lock
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [maintain.PASS_LOCK])
    finally:
        # Unlocked above, not by closing: a closed session's locks go when its backend exits,
        # which may be after the next statement here.
        other.close()
    assert maintain.roll_up() == 1


def test_the_check_finds_a_cell_that_was_tampered_with_and_a_rebuild_repairs_it(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    assert recount.check() == []
    Rollup.objects.filter(grain=Grain.HOUR).update(status_delivered=5)
    (difference,) = recount.check()
    assert (difference.column, difference.expected, difference.found) == ("status_delivered", 1, 5)
    rebuild.rebuild()
    assert recount.check() == []


def test_the_check_finds_a_coarse_cell_that_was_tampered_with(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1", flow="signup")
    receive(connection, "m1", Status.DELIVERED)
    maintain.roll_up()
    assert coarse_rows_add_up_the_fine_rows()
    CoarseRollup.objects.filter(grain=Grain.DAY, level="f").update(messages=2)
    (difference,) = recount.check()
    assert (difference.table, difference.cell[1], difference.cell[5], difference.column) == (
        "coarse rollup", "f", "signup", "messages",
    )  # fmt: skip
    assert (difference.expected, difference.found) == (1, 2)
    rebuild.rebuild()
    assert recount.check() == []
    assert coarse_rows_add_up_the_fine_rows()


def test_queued_changes_count_as_the_rollups_count_them_until_the_next_pass(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    maintain.roll_up()
    receive(connection, "m1", Status.DELIVERED)  # queued, not rolled up yet
    assert recount.check() == []
    maintain.roll_up()
    assert recount.check() == []


@pytest.mark.parametrize(
    ("counts", "fraction", "expected"),
    [([0] * 21, 0.5, None), ([0, 10] + [0] * 18, 0.5, 1.5), ([0] * 19 + [4], 0.95, 3600.0)],
)
def test_percentiles_are_read_from_the_histogram(counts: list[int], fraction: float, expected: float | None) -> None:
    assert percentile(counts[: len(HISTOGRAM_BOUNDS) + 1], fraction) == expected


# One step of a random stream: (kind, message number, status or seconds).
STATUSES = [Status.ACCEPTED, Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.FAILED]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.integers(0, 5), st.sampled_from(["+33612345678", "+4915112345678"])),
        st.tuples(st.just("receipt"), st.integers(0, 5), st.sampled_from(STATUSES)),
        st.tuples(st.just("repeat"), st.integers(0, 5), st.sampled_from(STATUSES)),
        st.tuples(st.just("network"), st.integers(0, 5), st.sampled_from(["20801", "20810"])),
        st.tuples(st.just("missing"), st.integers(0, 5), st.just("")),
        st.tuples(st.just("fallback"), st.integers(0, 5), st.just("")),
        st.tuples(st.just("pass"), st.integers(1, 4), st.just("")),
        st.tuples(st.just("wait"), st.integers(1, 4000), st.just("")),
    ),
    max_size=40,
)


# Passes run as one SQL statement on PostgreSQL and in Python on SQLite (the demo): both count alike.
@pytest.mark.parametrize("in_database", [True, False], ids=["pass in SQL", "pass in Python"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=steps)
def test_after_any_stream_of_events_the_rollups_equal_a_full_recount(
    stream: list[tuple[str, int, Any]], in_database: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintain, "COUNT_IN_DATABASE", in_database)
    with time_machine.travel(NOW, tick=False) as clock:
        Receipt.objects.all().delete()
        Message.objects.all().delete()
        for model in (Rollup, RollupReason, CoarseRollup, CoarseRollupReason, Snapshot, RollupPending):
            model.objects.all().delete()
        connection = Connection.objects.filter(slug="stream").first() or ConnectionFactory(slug="stream")
        for kind, n, value in stream:
            provider_id = f"s{n}"
            message = Message.objects.filter(connection=connection, provider_message_id=provider_id).first()
            if kind == "register":
                if message is None:
                    register(connection, provider_id, number=value, flow=f"flow-{n % 2}")
            elif kind == "receipt":
                receive(connection, provider_id, value, event_id=f"{provider_id}:{value}:{len(stream)}:{n}")
            elif kind == "repeat":
                receive(connection, provider_id, value)  # same event id each time: a provider retry
            elif kind == "network":
                receive(connection, provider_id, Status.SENT, event_id=f"net:{provider_id}:{value}", network=value)
            elif kind == "missing" and message is not None:
                store.messages_report_missing([(message.pk, message.status)], now=NOW)
            elif kind == "fallback" and message is not None:
                store.message_note_fallback(message.pk)
            elif kind == "pass":
                maintain.roll_up(limit=n)
            elif kind == "wait":
                clock.shift(timedelta(seconds=n))
            assert recount.check() == [], f"after {kind} {n} {value}"
        maintain.roll_up_all(seconds=30)
        assert recount.check() == []
        assert coarse_rows_add_up_the_fine_rows()
        assert not RollupPending.objects.exists()
