"""Celery tasks: thin, take ids, idempotent; the work is in retries.outbox."""

from __future__ import annotations

from celery import shared_task

from retries.attempts import attempts_run_due
from retries.feed_tasks import deliver_feed  # noqa: F401 - registers the feed's task with autodiscovery
from retries.outbox import outbox_process, outbox_redispatch
from retries.runner_kick import kicks_coalesced
from retries.sweeps import message_bodies_erase
from retries.sweeps import sweep_missing_receipts as sweep_missing_receipts_service


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def process_outbox_events(event_ids: list[int]) -> int:
    """Process a batch of outbox events; each one at most once, whatever the redeliveries."""
    with kicks_coalesced():
        return sum(outbox_process(event_id) for event_id in event_ids)


@shared_task(acks_late=True)
def redispatch_outbox() -> int:
    return outbox_redispatch()


@shared_task(acks_late=True)
def sweep_missing_receipts() -> int:
    return sweep_missing_receipts_service()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_due_attempts() -> int:
    """Idempotent: it claims only what is due; a lost run's claims are taken over at lease end."""
    return attempts_run_due()


@shared_task(acks_late=True)
def erase_message_bodies() -> int:
    return message_bodies_erase()
