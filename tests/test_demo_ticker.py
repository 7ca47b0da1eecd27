"""The demo's stand-in for Celery beat: a thread of the demo process that runs beat's jobs, each
tick, whatever one of them raises."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from dlrconsole.demo.ticker import Job, Ticker, beat_jobs
from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.feed.models import ProductEndpoint
from retries.models import Attempt
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.product_endpoint import ProductEndpointServer
from tests.send_api import FakeGateway
from tests.worker import wait_until


def test_the_ticker_runs_exactly_what_beat_runs_in_production() -> None:
    jobs = beat_jobs()

    assert [job.name for job in jobs] == list(settings.CELERY_BEAT_SCHEDULE)
    assert [job.run.name for job in jobs] == [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_each_periodic_job_does_its_work_from_the_tickers_thread(
    gateway: FakeGateway, product: ProductEndpointServer, default_rules: None
) -> None:
    ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    # attempts-run and feed-deliver: a temporary failure decided, its retry due now.
    failed = MessageFactory(body="Your ACME code is 483920", status=Status.UNDELIVERED,
                            reason="absent_subscriber", error_class="temporary")  # fmt: skip
    gateway.configure(failed.connection)
    outbox_process(OutboxEvent.objects.create(message=failed, kind="status_changed", status="undelivered",
                                              created_at=timezone.now()).pk)  # fmt: skip
    Attempt.objects.update(due_at=timezone.now())
    # missing-receipts and message-bodies-erase: a message pending for two days, text still kept.
    stale = MessageFactory(status=Status.SENT, submitted_at=timezone.now() - timedelta(days=2), body="Old text")
    # outbox-redispatch: an event whose publish was lost.
    lost = OutboxEvent.objects.create(message=failed, kind="status_changed", status="undelivered",
                                      created_at=timezone.now(), dispatched_at=None)  # fmt: skip

    ticker = Ticker(beat_jobs(), interval=0.2).start()
    try:
        done = wait_until(
            lambda: (
                Attempt.objects.filter(outcome="succeeded").exists()
                and len(product.received) >= 1
                and Message.objects.filter(pk=stale.pk, no_receipt_at__isnull=False, body="").exists()
                and OutboxEvent.objects.filter(pk=lost.pk, dispatched_at__isnull=False).exists()
                # Every job has had its turn (there are a dozen; the checks above may pass first).
                and all(stats.runs >= 1 for stats in ticker.stats.values())
            ),
            timeout=30,
        )
    finally:
        stopped = ticker.stop()

    assert done
    assert stopped
    assert len(gateway.sends) == 1
    assert [sent["body"] for sent in gateway.sends.values()] == ["Your ACME code is 483920"]
    assert Message.objects.filter(chain_root=failed).count() == 1
    assert OutboxEvent.objects.filter(message=stale, kind="no_receipt").count() == 1
    ran = {name: (stats.runs, stats.failures) for name, stats in ticker.stats.items()}
    assert all(runs >= 1 and failures == 0 for runs, failures in ran.values()), ran


def test_a_job_that_raises_is_logged_and_the_ticker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="dlrconsole.demo.ticker")
    calls: list[int] = []

    def broken() -> None:
        raise RuntimeError("the broker is down")

    ticker = Ticker([Job("broken", broken), Job("after-it", lambda: calls.append(1))], interval=0.05).start()
    try:
        ran_twice = wait_until(lambda: len(calls) >= 2, timeout=10)
    finally:
        stopped = ticker.stop()

    assert ran_twice
    assert stopped
    assert ticker.stats["broken"].failures == ticker.stats["broken"].runs >= 2
    assert ticker.stats["after-it"].failures == 0
    assert "periodic job broken failed" in caplog.text
    assert "the broker is down" in caplog.text  # with its traceback, for the demo log
    assert "broken" in ticker.summary()


def test_a_tick_runs_every_job_once_in_order() -> None:
    order: list[str] = []
    ticker = Ticker([Job(name, lambda name=name: order.append(name)) for name in ("a", "b", "c")])

    ticker.tick()
    ticker.tick()

    assert order == ["a", "b", "c", "a", "b", "c"]
    assert ticker.summary() == "a 2, b 2, c 2"
