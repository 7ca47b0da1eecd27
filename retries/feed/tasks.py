"""Celery task of the product feed: thin; due times live in the database (retries/feed/services.py),
so nothing is ever scheduled beyond the broker's visibility timeout. Run by beat every 5 s."""

from __future__ import annotations

from celery import shared_task

from dlrconsole.lib.tasks import kick_taken
from retries.feed.services import DELIVER_FEED, feed_deliver_due


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def deliver_feed(limit: int = 100) -> int:
    """Idempotent: a redelivered run claims only what is still due (leases, SKIP LOCKED)."""
    kick_taken(DELIVER_FEED)
    return feed_deliver_due(limit=limit)
