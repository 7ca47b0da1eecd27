"""The set-based rebuild counts in SQL exactly what the passes count in Python: after any
stream of messages and receipts through the real flow, a rebuild equals a full recount, each
snapshot is the message's contribution, and passes carry on from it exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receipts import store
from receipts.models import Connection, ConnectionPrice, Message, Receipt, RollupPending
from receipts.phones import parse_number
from receipts.rollups import maintain, rebuild, recount
from receipts.rollups.figures import HISTOGRAM_BOUNDS, MESSAGE_FIELDS, contribution
from receipts.rollups.models import CoarseRollup, CoarseRollupReason, Grain, Rollup, RollupReason, Snapshot
from receipts.rollups.sql import SNAPSHOT_FIELDS
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory
from tests.rollups.test_maintenance import STATUSES, coarse_rows_add_up_the_fine_rows, receive, register

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 15, 30, tzinfo=UTC)


def snapshots_are_contributions() -> bool:
    """Every message has a snapshot, and it is what figures.contribution says of its row."""
    expected = {row["id"]: contribution(row) for row in Message.objects.values(*MESSAGE_FIELDS)}
    found = {
        row["message_id"]: tuple(row[name] for name in SNAPSHOT_FIELDS)
        for row in Snapshot.objects.values("message_id", *SNAPSHOT_FIELDS)
    }
    return found == {
        message_id: tuple(getattr(item, name) for name in SNAPSHOT_FIELDS) for message_id, item in expected.items()
    }


def register_at(connection: Connection, provider_id: str, submitted_at: datetime, **fields: Any) -> Message:
    message, _ = message_register(
        MessageRegistration(
            connection=connection, provider_message_id=provider_id, recipient=parse_number("+33612345678"),
            flow="login-otp", submitted_at=submitted_at, **fields,
        )
    )  # fmt: skip
    return message


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("bound", HISTOGRAM_BOUNDS)
def test_a_time_equal_to_a_bound_is_in_that_bounds_bucket_as_the_passes_put_it(clock: Any, bound: int) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    clock.shift(timedelta(seconds=bound))
    receive(connection, "m1", Status.DELIVERED)
    rebuild.rebuild()
    index = HISTOGRAM_BOUNDS.index(bound)
    assert Snapshot.objects.values_list("ttfr_bucket", "ttd_bucket").get() == (index, index)
    assert snapshots_are_contributions()
    assert recount.check() == []


def test_a_receipt_before_the_submission_time_counts_in_the_first_bucket(clock: Any) -> None:
    connection = ConnectionFactory()
    register_at(connection, "m1", NOW + timedelta(seconds=7.5))  # the product's clock is ahead
    receive(connection, "m1", Status.DELIVERED)
    rebuild.rebuild()
    assert Snapshot.objects.values_list("ttfr_bucket", "ttd_bucket").get() == (0, 0)
    assert snapshots_are_contributions()


def test_a_rebuild_repairs_tampered_rollups_and_empties_the_queue(clock: Any) -> None:
    connection = ConnectionFactory()
    ConnectionPrice.objects.create(connection=connection, country="FR", price="0.07", currency="EUR")
    for n in range(5):
        register(connection, f"m{n}")
    receive(connection, "m0", Status.UNDELIVERED, error_code="1")
    receive(connection, "m1", Status.DELIVERED, network="20801", price="0.065", currency="EUR")
    maintain.roll_up()
    Rollup.objects.filter(grain=Grain.HOUR).update(status_delivered=5)
    RollupReason.objects.update(count=9)
    receive(connection, "m2", Status.SENT)  # queued, not rolled up yet
    assert recount.check() != []
    assert rebuild.rebuild() == 5
    assert not RollupPending.objects.exists()
    assert recount.check() == []
    assert snapshots_are_contributions()


def test_buckets_older_than_a_grain_keeps_are_not_written(clock: Any, settings: Any) -> None:
    settings.DLR_ROLLUP_MINUTES_KEEP_HOURS = 2
    connection = ConnectionFactory()
    register_at(connection, "old", NOW - timedelta(hours=3))
    register_at(connection, "new", NOW - timedelta(minutes=5))
    rebuild.rebuild()
    assert Rollup.objects.filter(grain=Grain.MINUTE).count() == 1
    assert Rollup.objects.filter(grain=Grain.HOUR).count() == 2
    assert recount.check() == []


def test_a_rebuild_waits_for_no_pass_it_refuses_while_one_holds_the_lock(clock: Any) -> None:
    register(ConnectionFactory(), "m1")
    other = connections.create_connection("default")  # another process's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [maintain.PASS_LOCK])
        with pytest.raises(rebuild.PassRunning):
            rebuild.rebuild()
        assert RollupPending.objects.count() == 1  # left for the pass that holds the lock
    finally:
        # Released here, not by close(): the server ends a closed session (and frees its locks)
        # asynchronously, so the next statement could still find the lock taken.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [maintain.PASS_LOCK])
        other.close()
    assert rebuild.rebuild() == 1


def test_the_command_rebuilds_and_confirms_the_rollups_equal_a_recount(clock: Any) -> None:
    connection = ConnectionFactory()
    register(connection, "m1")
    receive(connection, "m1", Status.DELIVERED)
    out = StringIO()
    call_command("recount_rollups", "--rebuild", stdout=out)
    assert "1 messages counted again" in out.getvalue()
    assert "The rollups equal a full recount." in out.getvalue()
    assert not RollupPending.objects.exists()


# One step of a random stream: (kind, message number, value).
steps = st.lists(
    st.one_of(
        # A submission time offset from now, in microseconds: the product's clock may be ahead.
        st.tuples(st.just("register"), st.integers(0, 7), st.integers(-4_000_000_000, 30_000_000)),
        st.tuples(st.just("resend"), st.integers(0, 7), st.integers(0, 7)),
        st.tuples(st.just("receipt"), st.integers(0, 7), st.sampled_from(STATUSES)),
        st.tuples(st.just("failure"), st.integers(0, 7), st.sampled_from(["1", "27", "34", ""])),
        st.tuples(st.just("network"), st.integers(0, 7), st.sampled_from(["20801", "20810"])),
        st.tuples(st.just("price"), st.integers(0, 7), st.sampled_from(["0.01", "0.0455", "1.5"])),
        st.tuples(st.just("missing"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("fallback"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("pass"), st.integers(1, 4), st.just(0)),
        # Waits that land exactly on the histogram's bounds, and any others (microseconds).
        st.tuples(st.just("wait"), st.just(0), st.sampled_from([b * 1_000_000 for b in HISTOGRAM_BOUNDS])),
        st.tuples(st.just("wait"), st.just(0), st.integers(1, 4_000_000_000)),
    ),
    max_size=40,
)


def play(connection: Connection, stream: list[tuple[str, int, Any]], clock: Any, tag: str) -> None:
    for kind, n, value in stream:
        provider_id = f"s{n}"
        message = Message.objects.filter(connection=connection, provider_message_id=provider_id).first()
        if kind == "register" and message is None:
            register_at(connection, provider_id, NOW + timedelta(microseconds=value), client_reference=f"r{n}")
        elif kind == "resend" and message is not None:
            root = Message.objects.filter(connection=connection, provider_message_id=f"s{value}").first()
            if root is not None and root.pk != message.pk and root.chain_root_id is None:
                Message.objects.filter(pk=message.pk).update(chain_root=root)
                store.rollup_pending([message.pk])
        elif kind == "receipt":
            receive(connection, provider_id, value, event_id=f"{tag}:{provider_id}:{value}:{len(stream)}")
        elif kind == "failure":
            receive(connection, provider_id, Status.UNDELIVERED, event_id=f"{tag}:f:{provider_id}", error_code=value)
        elif kind == "network":
            receive(connection, provider_id, Status.SENT, event_id=f"{tag}:n:{provider_id}:{value}", network=value)
        elif kind == "price":
            receive(
                connection, provider_id, Status.ACCEPTED, event_id=f"{tag}:p:{provider_id}", price=value, currency="EUR"
            )
        elif kind == "missing" and message is not None:
            store.messages_report_missing([(message.pk, message.status)], now=timezone.now())
        elif kind == "fallback" and message is not None:
            store.message_note_fallback(message.pk)
        elif kind == "pass":
            maintain.roll_up(limit=n)
        elif kind == "wait":
            clock.shift(timedelta(microseconds=value))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=steps, after=steps)
def test_after_any_stream_a_rebuild_equals_a_full_recount_and_passes_carry_on_from_it(
    before: list[tuple[str, int, Any]], after: list[tuple[str, int, Any]]
) -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        Receipt.objects.all().delete()
        Message.objects.all().delete()
        for model in (Rollup, RollupReason, CoarseRollup, CoarseRollupReason, Snapshot, RollupPending):
            model.objects.all().delete()
        connection = Connection.objects.filter(slug="stream").first() or ConnectionFactory(slug="stream")
        play(connection, before, clock, "before")
        rebuild.rebuild()
        assert not RollupPending.objects.exists()
        assert snapshots_are_contributions()
        assert recount.check() == []
        assert coarse_rows_add_up_the_fine_rows()
        play(connection, after, clock, "after")
        maintain.roll_up_all(seconds=30)
        assert recount.check() == []
        assert coarse_rows_add_up_the_fine_rows()
        assert snapshots_are_contributions()
