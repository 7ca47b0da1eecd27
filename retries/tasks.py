"""Celery tasks of retries: thin, idempotent; the work is in retries.attempts, retries.bodies and retries.pilots."""

from __future__ import annotations

from celery import shared_task

from dlrconsole.lib.tasks import kick, kick_taken
from retries.attempts import ATTEMPTS_PER_RUN, attempts_run_due
from retries.bodies import message_bodies_erase
from retries.escalation import RUN_DUE_ATTEMPTS
from retries.pilots import PASS_INTERVAL_SECONDS, pilot_send_due


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_due_attempts() -> int:
    """Idempotent: it claims only what is due; a lost run's claims are taken over at lease end."""
    kick_taken(RUN_DUE_ATTEMPTS)
    ran = attempts_run_due(limit=ATTEMPTS_PER_RUN)
    if ran >= ATTEMPTS_PER_RUN:
        # More may be due now: another run, after the tasks already waiting in the broker,
        # rather than at the next kick or beat tick. At 300 receipts/s the resends due had
        # waited up to a minute for those (bench/decision_latency.py, 2026-12-07).
        kick(RUN_DUE_ATTEMPTS)
    return ran


@shared_task(acks_late=True)
def erase_message_bodies() -> int:
    return message_bodies_erase()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_pilot(pilot_id: int) -> int:
    """One pass of a pilot's sends, then the next a second later while any is pending: the
    pilot's rate limit (retries/pilots.py). Idempotent: sends are claimed under a lock."""
    remaining = pilot_send_due(pilot_id)
    if remaining:
        send_pilot.apply_async((pilot_id,), countdown=PASS_INTERVAL_SECONDS)
    return remaining
