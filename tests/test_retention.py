"""Retention: each big table keeps its rows as long as its setting says; the daily task deletes
the rest in batches, exports them first when asked, and leaves the rollups of the periods it
purged exactly as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from alerts.models import Alert, AlertEvent
from dlrconsole.lib.purge_export import read_export
from dlrconsole.ops.retention import PARKED, cutoff, retention_apply
from receipts.models import Message, OutboxEvent, Receipt
from receipts.rollups import maintain, rebuild, recount
from receipts.rollups.models import Grain, Rollup, Snapshot
from retries.feed.models import FeedDelivery, FeedEvent, ProductEndpoint
from retries.models import Attempt, Decision
from tests.factories import GENERIC_SECRET, ConnectionFactory
from tests.retention_world import message_life
from tests.settings_probe import PRODUCTION, refusal_with, settings_with

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=500)  # past every table's default retention
MONTHS_AGO = NOW - timedelta(days=120)  # messages kept (400 days), receipts not (90)
RECENT = NOW - timedelta(days=2)


@pytest.fixture
def world(default_rules: None) -> dict[str, Message | None]:
    ConnectionFactory(slug="infobip-eu", provider="infobip", secrets=["infobip-token-0123456789abcdef"])
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    lives = {
        "old": message_life("old-1", at=OLD),
        "months": message_life("months-1", at=MONTHS_AGO),
        "recent": message_life("recent-1", at=RECENT),
        "parked-old": message_life("parked-old", at=NOW - timedelta(days=8), registered=False),
        "parked-recent": message_life("parked-new", at=NOW - timedelta(hours=20), registered=False),
    }
    # Every delivery ended long ago but the recent one's: the feed keeps open deliveries.
    FeedDelivery.objects.exclude(message=lives["recent"]).update(status=FeedDelivery.Status.ABANDONED)
    for alert in Alert.objects.exclude(message=lives["recent"]):
        Alert.objects.filter(pk=alert.pk).update(state=Alert.State.RESOLVED, resolved_at=alert.created_at)
    with time_machine.travel(NOW, tick=False):
        maintain.roll_up_all(seconds=60)
    return lives


def day_rows() -> list[tuple[object, ...]]:
    return list(
        Rollup.objects.filter(grain=Grain.DAY)
        .order_by("bucket")
        .values_list("bucket", "messages", "status_undelivered")
    )


def test_a_run_deletes_each_table_past_its_retention_and_keeps_the_rest(world):
    old, months, recent = world["old"], world["months"], world["recent"]
    assert old is not None
    assert old.receipts.exists()
    assert Decision.objects.filter(message=old).exists()
    assert Attempt.objects.filter(chain_root=old).exists()
    assert FeedEvent.objects.filter(message=old).exists()
    assert Alert.objects.filter(message=old).exists()
    assert Receipt.objects.filter(message__isnull=True).count() == 2
    with time_machine.travel(NOW, tick=False):
        deleted = retention_apply()
    assert not Message.objects.filter(pk=old.pk).exists()
    assert set(Message.objects.values_list("provider_message_id", flat=True)) == {"months-1", "recent-1"}
    # The messages four months old keep their decisions but no longer their receipts.
    assert not Receipt.objects.filter(message=months).exists()
    assert Decision.objects.filter(message=months).exists()
    assert Receipt.objects.filter(message=recent).exists()
    # The parked receipt eight days old expired; the one of yesterday waits for its message.
    assert list(Receipt.objects.filter(message__isnull=True).values_list("provider_message_id", flat=True)) == [
        "parked-new"
    ]
    assert not Decision.objects.filter(message_id=old.pk).exists()
    assert not Attempt.objects.filter(chain_root_id=old.pk).exists()
    assert not FeedEvent.objects.filter(message_id=old.pk).exists()
    assert not Alert.objects.filter(message_id=old.pk).exists()
    assert not AlertEvent.objects.filter(alert__message_id=old.pk).exists()
    assert FeedEvent.objects.filter(message=recent).exists()
    assert not Snapshot.objects.filter(message_id=old.pk).exists()
    assert deleted[PARKED] == 1
    assert deleted["receipts_message"] == 1
    # One report each: the old message's, the four-month-old one's, the expired parked one.
    assert deleted["receipts_receipt"] == 3
    assert deleted["retries_attempt"] >= 1
    assert deleted["feed_feedevent"] >= 1


def test_purging_messages_leaves_the_rollups_of_their_days_as_they_were(world):
    before = day_rows()
    with time_machine.travel(NOW, tick=False):
        retention_apply()
        assert day_rows() == before
        # The check and a rebuild leave the settled days alone: nothing left to count them from.
        assert recount.check() == []
        rebuild.rebuild()
        assert day_rows() == before
        assert recount.check() == []


def test_outbox_events_no_decision_points_to_go_after_their_retention(world):
    recent = world["recent"]
    with time_machine.travel(NOW + timedelta(days=20), tick=False):
        retention_apply()
    # The recent message's events that led to a decision stay with it; the others went.
    kept = OutboxEvent.objects.filter(message=recent)
    assert kept.exists()
    assert all(event.decisions.exists() for event in kept)


def test_purged_rows_are_exported_first_when_asked(world, tmp_path):
    old = world["old"]
    decisions = set(Decision.objects.filter(message=old).values_list("pk", flat=True))
    with time_machine.travel(NOW, tick=False):
        retention_apply(export_dir=tmp_path)
    stamp = NOW.strftime("%Y%m%dT%H%M%SZ")
    messages = read_export(tmp_path / f"{stamp}-receipts_message.jsonl.gz")
    assert [row["provider_message_id"] for row in messages] == ["old-1"]
    assert "body" not in messages[0]  # the text is never kept anywhere else
    receipts = read_export(tmp_path / f"{stamp}-receipts_receipt.jsonl.gz")
    assert {row["provider_message_id"] for row in receipts} == {"old-1", "months-1", "parked-old"}
    assert any("41793026727" in row["raw_body"] for row in receipts)
    exported = read_export(tmp_path / f"{stamp}-retries_decision.jsonl.gz")
    assert {row["id"] for row in exported} == decisions
    assert {row["message_id"] for row in exported} == {old.pk}


def test_a_small_batch_and_a_short_budget_leave_the_rest_for_the_next_run(world):
    with time_machine.travel(NOW, tick=False):
        first = retention_apply(batch=1, seconds=0.000001)
        assert first == {}
        retention_apply(batch=1)
    assert not Message.objects.filter(provider_message_id="old-1").exists()


def test_a_table_set_to_keep_for_ever_is_left_alone(world, settings):
    settings.DLR_RETENTION_MESSAGES_DAYS = 0
    settings.DLR_RETENTION_RECEIPTS_DAYS = 0
    settings.DLR_RETENTION_PARKED_RECEIPTS_DAYS = 0
    with time_machine.travel(NOW, tick=False):
        retention_apply()
    assert Message.objects.count() == 3
    assert Receipt.objects.count() == 5


def test_cutoffs_are_whole_utc_days():
    assert cutoff(90, NOW) == datetime(2026, 9, 1, tzinfo=UTC)
    assert cutoff(0, NOW) is None


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DLR_RETENTION_RECEIPTS_DAYS": "1"}, "DLR_RETENTION_RECEIPTS_DAYS must be 0 (keep for ever) or at least 3"),
        ({"DLR_RETENTION_MESSAGES_DAYS": "30", "DLR_RETENTION_RECEIPTS_DAYS": "60"}, "receipts go with their message"),
        ({"DLR_RETENTION_RECEIPTS_DAYS": "10", "DLR_RETENTION_PARKED_RECEIPTS_DAYS": "20"}, "PARKED_RECEIPTS_DAYS"),
        ({"DLR_RETENTION_EXPORT_DIR": "relative/dir"}, "must be the absolute path of a writable directory"),
    ],
)
def test_nonsense_retention_settings_stop_the_process(env, says):
    assert says in refusal_with({**PRODUCTION, **env})


def test_the_defaults_keep_messages_400_days_receipts_90_parked_receipts_a_week():
    probed = settings_with(
        PRODUCTION,
        "s.DLR_RETENTION_MESSAGES_DAYS, s.DLR_RETENTION_RECEIPTS_DAYS, s.DLR_RETENTION_PARKED_RECEIPTS_DAYS, "
        "s.DLR_RETENTION_OUTBOX_DAYS, s.DLR_RETENTION_FEED_DAYS, s.DLR_RETENTION_ALERTS_DAYS, "
        "repr(s.DLR_RETENTION_EXPORT_DIR)",
    )
    assert probed == "400 90 7 14 30 400 ''"


def test_the_command_reports_what_it_deleted_and_refuses_a_missing_export_dir(world, tmp_path):
    with pytest.raises(CommandError, match="not a writable directory"):
        call_command("apply_retention", "--export-dir", str(tmp_path / "missing"))
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("apply_retention", "--export-dir", str(tmp_path), stdout=out)
    assert "receipts_message: 1 deleted" in out.getvalue()
    assert "parked receipts expired: 1 deleted" in out.getvalue()
    assert list(tmp_path.glob("*-receipts_receipt.jsonl.gz"))


def test_beat_runs_the_retention_task_once_a_day():
    from dlrconsole.celery import app
    from dlrconsole.settings import CELERY_BEAT_SCHEDULE

    entry = CELERY_BEAT_SCHEDULE["retention-apply"]
    assert entry["schedule"] == 24 * 3600
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
