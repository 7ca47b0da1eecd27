"""Celery tasks of retries: thin, idempotent; the work is in retries.attempts, retries.bodies and retries.pilots."""

from __future__ import annotations

from celery import shared_task

from dlrconsole.lib.tasks import kick_taken
from retries.attempts import attempts_run_due
from retries.bodies import message_bodies_erase
from retries.escalation import RUN_DUE_ATTEMPTS
from retries.pilots import PASS_INTERVAL_SECONDS, pilot_send_due


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_due_attempts() -> int:
    """Idempotent: it claims only what is due; a lost run's claims are taken over at lease end."""
    kick_taken(RUN_DUE_ATTEMPTS)
    return attempts_run_due()


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
