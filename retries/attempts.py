"""Running attempts: a resend through a connection's send API, or a send on a fallback channel.

An attempt's life: scheduled with a due time → claimed by the runner (RUNNING; its due time
becomes a lease) → the sender is called with the attempt's idempotency key → succeeded (a resend
joins the chain as a new Message whose receipts take the normal path), rescheduled after a
temporary sender error, failed on a permanent one, or cancelled because the chain was delivered
or its deadline passed meanwhile.

Exactly once: a worker that dies mid-send leaves the attempt RUNNING with its lease in the past;
the next pass claims it again and sends with the same idempotency key, which the generic HTTP
and Infobip senders pass on so the provider drops the copy. Twilio and Vonage document no such
key: for them a crash between the provider's acceptance and our commit can resend once more,
which is why the lease is well above every send timeout, so a slow send is never taken over.
A result is recorded only by the claim that made it (`tries` matches): a run whose lease was
taken over records nothing.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from retries.actions.base import NotSendable
from retries.actions.registry import get_action
from retries.decisions import chain_delivered
from retries.models import Attempt, Decision
from retries.notifications import notify_attempt_failed
from retries.senders.base import SendError, SendResult

# Waits after a sender's temporary error (rate limited, provider down) before the same attempt
# runs again; after the last one the attempt has failed.
SEND_RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
OPEN = (Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING)


def attempt_lease() -> timedelta:
    return timedelta(seconds=settings.DLR_ATTEMPT_LEASE_SECONDS)


def attempts_run_due(*, now: datetime | None = None, limit: int = 50, budget: float = 20.0) -> int:
    """Claim and run due attempts (or those whose runner died), one at a time so that each
    claim's lease covers only its own send; stop after `limit` or `budget` seconds, well inside
    the task's time limit. Returns how many ran."""
    started = time.monotonic()
    ran = 0
    while ran < limit and time.monotonic() - started < budget:
        claimed = _claim_due(now or timezone.now(), 1)
        if not claimed:
            break
        attempt_execute(claimed[0], now=now)
        ran += 1
    return ran


def _claim_due(now: datetime, limit: int) -> list[int]:
    with transaction.atomic():
        # SKIP LOCKED: runners in parallel never claim the same attempt; after commit the lease
        # has moved its due time, so they do not see it as due either.
        ids = list(
            Attempt.objects.select_for_update(skip_locked=True)
            .filter(outcome__in=OPEN, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        Attempt.objects.filter(pk__in=ids).update(
            outcome=Attempt.Outcome.RUNNING, due_at=now + attempt_lease(), tries=F("tries") + 1
        )
    return ids


def attempt_execute(attempt_id: int, *, now: datetime | None = None) -> None:
    """Run one claimed attempt and record what happened. `now` fixes the clock (tests); by
    default a result is stamped when it arrives, not when the attempt was claimed."""
    clock = now
    now = now or timezone.now()
    attempt = Attempt.objects.select_related("decision__message", "chain_root", "connection", "channel").get(
        pk=attempt_id
    )
    if attempt.outcome != Attempt.Outcome.RUNNING:
        return
    if chain_delivered(attempt.chain_root):
        _finish(attempt, Attempt.Outcome.CANCELLED, "the chain was delivered meanwhile", now=now)
        return
    if attempt.deadline_at is not None and now > attempt.deadline_at:
        _finish(attempt, Attempt.Outcome.CANCELLED, "its deadline passed", now=now, tell_product=True)
        return
    if attempt.tries > len(SEND_RETRY_DELAYS) + 1:
        # Claimed again and again without recording a result: the worker dies on it.
        _fail(attempt, f"gave up after {attempt.tries - 1} runs that recorded no result", now=now)
        return
    action = get_action(attempt.action)
    try:
        plan = action.plan(attempt)
    except NotSendable as exc:
        _fail(attempt, str(exc), now=now)
        return
    started = time.monotonic()
    try:
        result = plan.sender.send(
            to=plan.to, body=plan.body, sender_id=plan.sender_id, options={},
            idempotency_key=attempt.idempotency_key, status_callback_url=plan.status_callback_url,
        )  # fmt: skip
    except SendError as exc:
        _after_send_error(attempt, exc, duration=time.monotonic() - started, now=clock or timezone.now())
        return
    _succeeded(attempt, result, now=clock or timezone.now())


def _after_send_error(attempt: Attempt, error: SendError, *, duration: float, now: datetime) -> None:
    delay = SEND_RETRY_DELAYS[attempt.tries - 1] if attempt.tries <= len(SEND_RETRY_DELAYS) else None
    past_deadline = attempt.deadline_at is not None and delay is not None and now + delay > attempt.deadline_at
    if error.permanent or delay is None or past_deadline:
        kind = "permanent" if error.permanent else "temporary, no time left to try again"
        _fail(attempt, f"{kind}: {error.reason}", now=now, duration=duration)
        return
    with transaction.atomic():
        if not _still_mine(attempt):
            return
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=Attempt.Outcome.SCHEDULED,
            due_at=now + delay,
            detail=f"temporary: {error.reason}"[:255],
            duration_ms=int(duration * 1000),
        )


def _succeeded(attempt: Attempt, result: SendResult, *, now: datetime) -> None:
    with transaction.atomic():
        if not _still_mine(attempt):
            return
        detail, resend = get_action(attempt.action).sent(attempt, result, now=now)
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=Attempt.Outcome.SUCCEEDED,
            resend=resend,
            detail=detail[:255],
            response_summary=result.response_summary[:255],
            duration_ms=int(result.duration * 1000),
            finished_at=now,
        )


def _fail(attempt: Attempt, why: str, *, now: datetime, duration: float | None = None) -> None:
    _finish(attempt, Attempt.Outcome.FAILED, why, now=now, duration=duration, tell_product=True)


def _finish(
    attempt: Attempt,
    outcome: str,
    why: str,
    *,
    now: datetime,
    duration: float | None = None,
    tell_product: bool = False,
) -> None:
    with transaction.atomic():
        if not _still_mine(attempt):
            return
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, detail=why[:255], finished_at=now,
            duration_ms=None if duration is None else int(duration * 1000),
        )  # fmt: skip
        if outcome == Attempt.Outcome.CANCELLED:
            Decision.objects.filter(pk=attempt.decision_id).update(state=Decision.State.CANCELLED)
        if tell_product:
            # In the same transaction: the product hears of the failure iff it was recorded.
            notify_attempt_failed(attempt, attempt.decision.message, why)


def _still_mine(attempt: Attempt) -> bool:
    """Lock the row; True if this run's claim still holds it (no other run took it over)."""
    current = Attempt.objects.select_for_update().filter(pk=attempt.pk).values_list("outcome", "tries").first()
    return current == (Attempt.Outcome.RUNNING, attempt.tries)
