"""Rows held back by a batch, and the keys of what it holds: a lookup per event, never stale."""

from __future__ import annotations

from dlrconsole.lib.deferred_inserts import DeferredInserts
from retries.feed.models import FeedEvent


def message_and_type(event: FeedEvent) -> tuple[int, str]:
    return event.message_id, event.type


def held_event(unit: DeferredInserts, message_id: int, event_type: str) -> FeedEvent:
    return unit.hold(FeedEvent(message_id=message_id, type=event_type))


def test_the_keys_of_held_rows_follow_every_row_held() -> None:
    unit = DeferredInserts()
    assert unit.held_keys(FeedEvent, message_and_type) == set()
    held_event(unit, 1, "message.delivered")
    assert unit.held_keys(FeedEvent, message_and_type) == {(1, "message.delivered")}
    held_event(unit, 2, "message.failed")
    held_event(unit, 1, "message.retry_scheduled")
    assert unit.held_keys(FeedEvent, message_and_type) == {
        (1, "message.delivered"),
        (2, "message.failed"),
        (1, "message.retry_scheduled"),
    }


def test_rows_let_go_by_a_rollback_leave_the_keys_even_when_as_many_are_held_again() -> None:
    unit = DeferredInserts()
    held_event(unit, 1, "message.delivered")
    mark = unit.mark()
    held_event(unit, 2, "message.failed")
    assert (2, "message.failed") in unit.held_keys(FeedEvent, message_and_type)
    unit.rollback(mark)  # the event that held it failed: nothing of it is written
    held_event(unit, 3, "message.failed")  # as many rows as before the rollback
    assert unit.held_keys(FeedEvent, message_and_type) == {(1, "message.delivered"), (3, "message.failed")}
