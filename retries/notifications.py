"""What the product hears: decisions and attempt outcomes turned into feed events.

Each of message.delivered, message.failed and message.no_receipt is published at most once per
message (callers hold the message's row lock, retries/decisions.py), so a stronger final after a
weaker one, or a second worker, never tells the product twice. Only the `notify` action tells the
product about a status; retries and fallbacks say what they did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlrconsole.lib.deferred_inserts import deferred_inserts
from receipts import store
from receipts.models import Message
from retries.feed.models import FeedEvent
from retries.feed.services import feed_publish, feed_time

if TYPE_CHECKING:
    from retries.models import Attempt

Event = FeedEvent.Type


def notify_retry_scheduled(attempt: Attempt, message: Message) -> None:
    """An attempt is scheduled: `next_attempt_at` says when it runs (the one event that names a
    coming attempt)."""
    data = {"attempt": attempt_data(attempt), "next_attempt_at": feed_time(attempt.due_at)}
    notify_once(message, Event.RETRY_SCHEDULED, data, once=False)


def notify_failure_final(message: Message, why: str, *, locked: bool = False) -> None:
    """A retry was wanted and cannot happen: the failure stands, and the product must know."""
    notify_once(message, Event.FAILED, {"final": True, "why": why}, locked=locked)


def notify_attempt_failed(attempt: Attempt, message: Message, why: str) -> None:
    """An attempt could not run or failed for good: the original's failure stands. The attempt
    is named as done and failed, with no time that could read as another one coming."""
    data = {"final": True, "why": why, "attempt": attempt_data(attempt) | {"outcome": "failed"}}
    notify_once(message, Event.FAILED, data)


def notify_fallback_sent(attempt: Attempt, message: Message) -> None:
    channel = attempt.channel.slug if attempt.channel else ""
    notify_once(message, Event.FALLBACK_SENT, {"attempt": attempt_data(attempt) | {"channel": channel}}, once=False)


def notify_once(
    message: Message,
    event_type: str,
    extra: dict[str, Any] | None = None,
    *,
    once: bool = True,
    locked: bool = False,
) -> None:
    """Publish, in the caller's transaction; `once`: unless this message already had one.
    `locked`: the caller holds the message's row lock already (a decision does)."""
    if once and _published(message, event_type, locked=locked):
        return
    data = dict(extra or {})
    if message.chain_root_id:
        data["chain_root_message_id"] = message.chain_root_id
    feed_publish(message=message, event_type=event_type, payload=data)


def _published(message: Message, event_type: str, *, locked: bool) -> bool:
    held = deferred_inserts()
    if held is not None:
        # A batch holds its inserts only for fresh chains (retries/decisions.py): their
        # messages, locked, have no event in the database; only what the batch holds counts.
        return (message.pk, event_type) in held.held_keys(FeedEvent, _message_and_type)
    if not locked:
        # The row lock serialises the check with a concurrent decision or attempt.
        store.message_lock(message.pk)
    return FeedEvent.objects.filter(message=message, type=event_type).exists()


def _message_and_type(event: FeedEvent) -> tuple[int, str]:
    return event.message_id, event.type


def attempt_data(attempt: Attempt) -> dict[str, Any]:
    """What the product is told of an attempt: which one of the chain and what it does. Never
    its idempotency key (internal: the senders' dedupe key, which the product has no use for
    and must not come to rely on)."""
    return {"number": attempt.number, "action": attempt.action}
