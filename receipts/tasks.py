"""Celery tasks of the receipts app: thin, take ids, idempotent, off the webhook's request path."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import requests
from celery import Task, shared_task

from dlrconsole.lib import outbound
from dlrconsole.lib.tasks import kick_taken
from receipts.outbox import PROCESS_OUTBOX_EVENTS, REQUEST_IDS_HEADER, outbox_drain, outbox_redispatch
from receipts.providers.sns_signature import is_sns_url
from receipts.sweeps import sweep_missing_receipts as sweep_missing_receipts_service

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_SECONDS = 5


class SubscribeUrlUnavailable(Exception):
    """SNS answered 5xx: worth another try."""


@shared_task(
    acks_late=True,
    autoretry_for=(requests.ConnectionError, requests.Timeout, SubscribeUrlUnavailable),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def confirm_sns_subscription(subscribe_url: str) -> bool:
    """Confirm an SNS HTTPS subscription by visiting its SubscribeURL, from a verified
    SubscriptionConfirmation. Visiting it again (a redelivered task, a resent confirmation)
    only confirms the same subscription again, so running twice is harmless."""
    # The URL came signed from SNS, but it is checked as the certificate URL is: a GET to an
    # arbitrary URL from inside our network is what an attacker would want from us.
    if not is_sns_url(subscribe_url):
        logger.warning("SNS subscription not confirmed: SubscribeURL is not on an SNS host")
        return False
    topic = parse_qs(urlsplit(subscribe_url).query).get("TopicArn", ["?"])[0]
    # Through the outbound guard: no redirects (the confirmation is SNS's answer, never another
    # host's), never an internal address. DestinationRefused is not retried.
    reply = outbound.call("GET", subscribe_url, timeout=(SUBSCRIBE_TIMEOUT_SECONDS, SUBSCRIBE_TIMEOUT_SECONDS))
    if reply.status_code >= 500:
        raise SubscribeUrlUnavailable(f"SNS answered HTTP {reply.status_code}")
    if reply.status_code != 200:
        # An expired or already used token: retrying cannot help; SNS can resend a confirmation.
        logger.warning("SNS subscription to %s not confirmed: HTTP %s", topic, reply.status_code)
        return False
    logger.info("SNS subscription to %s confirmed", topic)
    return True


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def process_outbox_events(self: Task, event_ids: list[int] | None = None) -> int:
    """Process the events named and the backlog behind them; each one at most once, whatever
    the redeliveries."""
    kick_taken(PROCESS_OUTBOX_EVENTS)  # from now on a hand-over publishes again
    request_ids = self.request.get(REQUEST_IDS_HEADER)
    return outbox_drain(event_ids or [], request_ids=request_ids if isinstance(request_ids, dict) else None)


@shared_task(acks_late=True)
def redispatch_outbox() -> int:
    return outbox_redispatch()


@shared_task(acks_late=True)
def sweep_missing_receipts() -> int:
    return sweep_missing_receipts_service()
