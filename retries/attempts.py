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

Set-based: a pass claims ten attempts at a time, reads them and their chains in two queries,
and records the claim's successful sends together (the resends registered in one statement per
table) at the end of the claim, or after RECORD_AFTER_SECONDS. Only sends through a peer that
drops a repeated idempotency key wait so: a worker killed outright before recording would send
them again. Twilio's and Vonage's are recorded as each returns, as before.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dlrconsole.lib import outbound
from dlrconsole.lib.bulk_writes import bulk_set
from dlrconsole.lib.failures import failure_summary
from receipts import store
from receipts.models import Message
from receipts.selectors import delivered_chains
from retries.actions.base import NotSendable
from retries.actions.registry import get_action
from retries.escalation import Trigger, escalate
from retries.models import Attempt, Decision
from retries.notifications import notify_attempt_failed
from retries.rule_cache import rule_cache
from retries.senders.base import SendError, SendResult

# Waits after a sender's temporary error (rate limited, provider down) before the same attempt
# runs again; after the last one the attempt has failed.
SEND_RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
OPEN = (Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING)
# Claimed together: one claim's statements for several attempts rather than for each.
ATTEMPTS_PER_CLAIM = 10
# Run by one task at most; a run that reaches it asks for another (retries/tasks.py), so the
# worker's other queues get their turn between runs.
ATTEMPTS_PER_RUN = 50
# What running and recording an attempt read with it (the connection's send configuration
# included: a resend plans with it).
RELATED = ("decision__message", "chain_root", "connection__sender", "channel", "step")
# A claim's attempts and chains are read once; one run later than this after that read (slow
# sends before it) is read again, so a cancellation or a delivery meanwhile is seen before sending.
FRESH_SECONDS = 1.0
# Successful sends are recorded together at the end of each claim, or once the first waiting
# has waited this long; those through a sender whose peer would not drop a second send, at once.
RECORD_AFTER_SECONDS = 1.0

logger = logging.getLogger(__name__)


def attempt_lease() -> timedelta:
    return timedelta(seconds=settings.DLR_ATTEMPT_LEASE_SECONDS)


def attempts_run_due(
    *, now: datetime | None = None, limit: int = ATTEMPTS_PER_RUN, deadline: float | None = None
) -> int:
    """Claim and run due attempts (or those whose runner died), up to ATTEMPTS_PER_CLAIM per
    claim; stop after `limit`, or when the next send could not finish before `deadline` (a
    time.monotonic() value: by default the task's soft time limit less the pass's margin), and
    give back what this pass claimed and did not run. Returns how many ran.

    Several are claimed at once only when a claim's lease outlives the pass that made it
    (DLR_ATTEMPT_LEASE_SECONDS at least CELERY_TASK_TIME_LIMIT, the default), so that no other
    runner takes over an attempt while it waits its turn here; otherwise one at a time.
    An attempt whose run raises unexpectedly is recorded as a temporary failure (tried again
    after its delay, failed after the last) and the pass moves on. A pass stopped anyway (the
    soft time limit, a worker shutting down) records the send in flight as timed out."""
    deadline = outbound.pass_deadline() if deadline is None else deadline
    # One connection to a provider's send API for the whole pass, not one per resend.
    with outbound.reusing_connections():
        return _run_claims(now=now, limit=limit, deadline=deadline)


def _run_claims(*, now: datetime | None, limit: int, deadline: float) -> int:
    per_claim = ATTEMPTS_PER_CLAIM if settings.DLR_ATTEMPT_LEASE_SECONDS >= settings.CELERY_TASK_TIME_LIMIT else 1
    ran = 0
    claimed: list[int] = []
    unrecorded = _Unrecorded()
    try:
        while ran < limit and outbound.remaining(deadline) > 0:
            claimed = _claim_due(now or timezone.now(), min(per_claim, limit - ran))
            if not claimed:
                break
            claim = _Claim(claimed)
            while claimed:
                attempt_id = claimed[0]
                try:
                    if not _execute_isolated(claim, attempt_id, now=now, deadline=deadline, unrecorded=unrecorded):
                        return ran  # released, as the rest are below
                except BaseException:
                    claimed.pop(0)
                    _record_safely(attempt_id, "timed out: the attempt runner was stopped", now=now)
                    raise
                claimed.pop(0)
                ran += 1
                if unrecorded.due():
                    unrecorded.record()
                if outbound.remaining(deadline) <= 0:
                    return ran
            unrecorded.record()
        return ran
    finally:
        try:
            unrecorded.record()
        finally:
            if claimed:
                _release_unrun(claimed, now=now or timezone.now())


def _release_unrun(attempt_ids: list[int], *, now: datetime) -> None:
    """Give back claims this pass made and did not run: due at once for the next pass, their
    try not counted."""
    Attempt.objects.filter(pk__in=attempt_ids, outcome=Attempt.Outcome.RUNNING, due_at__gt=now).update(
        outcome=Attempt.Outcome.SCHEDULED, due_at=now, tries=F("tries") - 1
    )


def _execute_isolated(
    claim: _Claim, attempt_id: int, *, now: datetime | None, deadline: float, unrecorded: _Unrecorded
) -> bool:
    """Run one claimed attempt; False if it was released because its send could not finish in time."""
    try:
        return _execute(claim, attempt_id, now=now, deadline=deadline, unrecorded=unrecorded)
    except SoftTimeLimitExceeded:
        raise  # the pass ran out of time, not this attempt (attempts_run_due records it)
    except Exception as exc:
        logger.exception("attempt %s raised; recorded as a temporary failure", attempt_id)
        _record_safely(attempt_id, f"internal error: {failure_summary(exc)}", now=now)
        return True


def _record_safely(attempt_id: int, why: str, *, now: datetime | None) -> None:
    """Record a run whose own recording could not happen (it raised, or the pass was stopped
    mid-send) as a temporary sender error: tried again with the same idempotency key after its
    delay. If even that fails, the lease hands it to a later pass."""
    try:
        attempt = Attempt.objects.select_related("decision__message").get(pk=attempt_id)
        if attempt.outcome == Attempt.Outcome.RUNNING:
            _after_send_error(attempt, SendError(why, permanent=False), duration=0.0, now=now or timezone.now())
    except Exception:
        logger.exception("attempt %s could not be recorded; its lease hands it over", attempt_id)


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


class _Claim:
    """A claim's attempts and which of their chains were delivered: two queries for the claim,
    not two for each of its attempts."""

    def __init__(self, attempt_ids: list[int]) -> None:
        self.attempts: dict[int, Attempt] = {}
        self.delivered: set[int] = set()
        self.read_at: dict[int, float] = {}
        self._read(attempt_ids)

    def _read(self, attempt_ids: list[int]) -> None:
        attempts = Attempt.objects.select_related(*RELATED).in_bulk(attempt_ids)
        roots = {attempt.chain_root_id for attempt in attempts.values()}
        self.attempts.update(attempts)
        self.delivered = (self.delivered - roots) | delivered_chains(roots)
        self.read_at.update(dict.fromkeys(attempt_ids, time.monotonic()))

    def take(self, attempt_id: int) -> tuple[Attempt | None, bool]:
        """The attempt (None if it is gone) and whether its chain was delivered."""
        if time.monotonic() - self.read_at.get(attempt_id, 0.0) > FRESH_SECONDS:
            self._read([attempt_id])
        attempt = self.attempts.get(attempt_id)
        return attempt, attempt is not None and attempt.chain_root_id in self.delivered


@dataclass(frozen=True)
class _Sent:
    attempt: Attempt
    result: SendResult
    at: datetime  # when its result arrived (or the pass's clock)
    deduplicated: bool  # the peer drops a second send with the attempt's idempotency key


class _Unrecorded:
    """Successful sends waiting to be recorded together. Until they are, a worker killed
    outright would send them again after their lease, with the same idempotency key: only a
    peer that drops such a copy waits here for long (Sender.deduplicates)."""

    def __init__(self) -> None:
        self.sends: list[_Sent] = []
        self.since = 0.0

    def add(self, sent: _Sent) -> None:
        if not self.sends:
            self.since = time.monotonic()
        self.sends.append(sent)

    def due(self) -> bool:
        return bool(self.sends) and (
            not all(sent.deduplicated for sent in self.sends) or time.monotonic() - self.since >= RECORD_AFTER_SECONDS
        )

    def record(self) -> None:
        sends, self.sends = self.sends, []
        _record_sent(sends)


def attempt_execute(attempt_id: int, *, now: datetime | None = None, deadline: float | None = None) -> bool:
    """Run one claimed attempt and record what happened. `now` fixes the clock (tests); by
    default a result is stamped when it arrives, not when the attempt was claimed. With a
    `deadline` (time.monotonic()), a send that could not finish by then is not started: the
    claim is released and False returned."""
    unrecorded = _Unrecorded()
    try:
        return _execute(_Claim([attempt_id]), attempt_id, now=now, deadline=deadline, unrecorded=unrecorded)
    finally:
        unrecorded.record()


def _execute(
    claim: _Claim, attempt_id: int, *, now: datetime | None, deadline: float | None, unrecorded: _Unrecorded
) -> bool:
    clock = now
    now = now or timezone.now()
    attempt, chain_delivered = claim.take(attempt_id)
    if attempt is None or attempt.outcome != Attempt.Outcome.RUNNING:
        return True
    if chain_delivered:
        _finish(attempt, Attempt.Outcome.CANCELLED, "the chain was delivered meanwhile", now=now)
        return True
    if attempt.deadline_at is not None and now > attempt.deadline_at:
        _finish(attempt, Attempt.Outcome.CANCELLED, "its deadline passed", now=now, tell_product=True)
        return True
    if attempt.tries > len(SEND_RETRY_DELAYS) + 1:
        # Claimed again and again without recording a result: the worker dies on it.
        _fail(attempt, f"gave up after {attempt.tries - 1} runs that recorded no result", now=now)
        return True
    action = get_action(attempt.action)
    try:
        plan = action.plan(attempt)
    except NotSendable as exc:
        _fail(attempt, str(exc), now=now)
        return True
    if deadline is not None and outbound.remaining(deadline) < plan.sender.longest:
        _release(attempt, now=now)
        return False
    started = time.monotonic()
    try:
        result = plan.sender.send(
            to=plan.to, body=plan.body, sender_id=plan.sender_id, options={},
            idempotency_key=attempt.idempotency_key, status_callback_url=plan.status_callback_url,
        )  # fmt: skip
    except SendError as exc:
        _after_send_error(attempt, exc, duration=time.monotonic() - started, now=clock or timezone.now())
        return True
    unrecorded.add(_Sent(attempt, result, clock or timezone.now(), plan.sender.deduplicates))
    return True


def _release(attempt: Attempt, *, now: datetime) -> None:
    """Give a claim back unrun: due at once for the next pass, this claim's try not counted."""
    with transaction.atomic():
        if _still_mine(attempt):
            Attempt.objects.filter(pk=attempt.pk).update(
                outcome=Attempt.Outcome.SCHEDULED, due_at=now, tries=F("tries") - 1
            )


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


def _record_sent(sends: list[_Sent]) -> None:
    """Record successful sends in one transaction; if that fails, each in one of its own, so a
    send that cannot be recorded holds up none of the others."""
    if not sends:
        return
    try:
        with transaction.atomic():
            _record_sent_together(sends)
        return
    except SoftTimeLimitExceeded:
        raise  # left to their lease: sent again with the same idempotency key
    except Exception as exc:
        if len(sends) == 1:
            logger.exception("attempt %s raised; recorded as a temporary failure", sends[0].attempt.pk)
            _record_safely(sends[0].attempt.pk, f"internal error: {failure_summary(exc)}", now=sends[0].at)
            return
        logger.exception("%d sends could not be recorded together; recording each alone", len(sends))
    for sent in sends:
        _record_sent([sent])


def _record_sent_together(sends: list[_Sent]) -> None:
    store.messages_lock(sorted({sent.attempt.chain_root_id for sent in sends}))  # the chains first, as deciding does
    mine = _still_mine_all([sent.attempt for sent in sends])
    sends = [sent for sent in sends if sent.attempt.pk in mine]
    by_action: dict[str, list[_Sent]] = defaultdict(list)
    for sent in sends:
        by_action[sent.attempt.action].append(sent)
    outcomes: dict[int, tuple[str, Message | None]] = {}
    for action, group in by_action.items():
        meant = get_action(action).sent_together([(sent.attempt, sent.result, sent.at) for sent in group])
        outcomes |= zip((sent.attempt.pk for sent in group), meant, strict=True)
    for sent in sends:
        attempt, (detail, attempt.resend) = sent.attempt, outcomes[sent.attempt.pk]
        attempt.outcome = Attempt.Outcome.SUCCEEDED
        attempt.detail = detail[:255]
        attempt.response_summary = sent.result.response_summary[:255]
        attempt.duration_ms = int(sent.result.duration * 1000)
        attempt.finished_at = sent.at
    bulk_set([sent.attempt for sent in sends], RECORDED_FIELDS)
    for sent in sends:
        attempt = sent.attempt
        if attempt.channel_id is not None:
            store.message_note_fallback(attempt.chain_root_id)
        if attempt.resend is None:
            # Nothing sent will report back (a fallback channel has no receipts): the escalation
            # moves on now rather than on a receipt.
            _escalate_after(attempt, now=sent.at, failed=False)


RECORDED_FIELDS = ("outcome", "resend", "detail", "response_summary", "duration_ms", "finished_at")


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
        store.message_lock(attempt.chain_root_id)  # the chain first, as deciding does
        if not _still_mine(attempt):
            return
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, detail=why[:255], finished_at=now,
            duration_ms=None if duration is None else int(duration * 1000),
        )  # fmt: skip
        if outcome == Attempt.Outcome.CANCELLED:
            Decision.objects.filter(pk=attempt.decision_id).update(state=Decision.State.CANCELLED)
        if outcome == Attempt.Outcome.FAILED and attempt.step_id is not None:
            # A rule's attempt that failed for good: the escalation takes its next step, and
            # tells the product when none is left.
            _escalate_after(attempt, now=now, failed=True)
        elif tell_product:
            # In the same transaction: the product hears of the failure iff it was recorded.
            notify_attempt_failed(attempt, attempt.decision.message, why)


def _escalate_after(attempt: Attempt, *, now: datetime, failed: bool) -> None:
    """Move the escalation of the attempt's rule, if it still runs; otherwise a failed attempt's
    failure stands."""
    message = attempt.decision.message
    rule = next((rule for rule in rule_cache.get() if attempt.step and rule.pk == attempt.step.rule_id), None)
    if rule is None:
        # Deleted or disabled since: nothing more is taken, and the failure stands.
        if failed:
            notify_attempt_failed(attempt, message, "its rule no longer runs: nothing more is sent")
        return
    message.refresh_from_db(fields=["status"])
    trigger = Trigger(
        message=message, root=attempt.chain_root, seen=message.status, after_attempt=attempt, reached=not failed
    )
    escalate(trigger, rule, now=now)


def _still_mine(attempt: Attempt) -> bool:
    """Lock the row; True if this run's claim still holds it (no other run took it over)."""
    return attempt.pk in _still_mine_all([attempt])


def _still_mine_all(attempts: list[Attempt]) -> set[int]:
    """Lock the rows (in id order); the ids of those whose claim this run still holds."""
    tries = {attempt.pk: attempt.tries for attempt in attempts}
    current = (
        Attempt.objects.select_for_update().filter(pk__in=tries).order_by("pk").values_list("pk", "outcome", "tries")
    )
    return {pk for pk, outcome, made in current if outcome == Attempt.Outcome.RUNNING and made == tries[pk]}
