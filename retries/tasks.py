"""Celery tasks of retries: thin, idempotent; the work is in retries.attempts and retries.bodies."""

from __future__ import annotations

from celery import shared_task

from retries.attempts import attempts_run_due
from retries.bodies import message_bodies_erase


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_due_attempts() -> int:
    """Idempotent: it claims only what is due; a lost run's claims are taken over at lease end."""
    return attempts_run_due()


@shared_task(acks_late=True)
def erase_message_bodies() -> int:
    return message_bodies_erase()
