"""/metrics: refused to all but the configured scraper, a valid Prometheus exposition of what
the database holds and of the webhooks' latency, summed over every process that observed it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Alert
from dlrconsole.ops.metrics import exposition
from receipts.models import OutboxEvent
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_publish
from retries.models import Attempt, Decision
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory
from tests.settings_probe import ROOT, refusal_with
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db

TOKEN = "metrics-scraper-token-0123456789abcdef"


def scrape(client: Client, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition by (sample name, labels), parsed as Prometheus would."""
    response = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped[(name, frozenset(labels.items()))]


def post_webhook(client: Client, message, status: str) -> int:
    body = generic_body(message.provider_message_id, status)
    headers = generic_headers(message.connection, body)
    content_type = headers.pop("content-type")
    url = f"/hooks/{message.connection.slug}/"
    return client.post(url, data=body, content_type=content_type, headers=headers).status_code


# Who may scrape


def test_metrics_do_not_exist_until_a_token_or_an_allowlist_is_set(client):
    assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
def test_a_missing_or_wrong_bearer_token_is_refused_401(client, settings, authorization):
    settings.DLR_METRICS_TOKEN = TOKEN
    headers = {"authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert TOKEN not in response.content.decode()


def test_the_right_bearer_token_is_answered(client, settings):
    settings.DLR_METRICS_TOKEN = TOKEN
    assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_an_address_outside_the_allowlist_is_refused_403_and_one_inside_answered(client, settings):
    import ipaddress

    settings.DLR_METRICS_ALLOW = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_with_both_set_the_scraper_needs_the_address_and_the_token(client, settings):
    import ipaddress

    settings.DLR_METRICS_TOKEN = TOKEN
    settings.DLR_METRICS_ALLOW = [ipaddress.ip_network("10.1.0.0/16")]
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7", headers=bearer).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", headers=bearer).status_code == 200


def test_metrics_answer_only_get(client, settings):
    settings.DLR_METRICS_TOKEN = TOKEN
    assert client.post("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 405


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DLR_METRICS_ALLOW": "10.0.0.0/8,not-a-network"}, "DLR_METRICS_ALLOW must be comma-separated IP networks"),
        ({"DLR_METRICS_ALLOW": "10.0.0.1/8"}, "DLR_METRICS_ALLOW must be comma-separated IP networks"),
        ({"DLR_METRICS_TOKEN": "short"}, "DLR_METRICS_TOKEN must be at least 32 random characters"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/dir"}, "PROMETHEUS_MULTIPROC_DIR='/nonexistent/dir' must be"),
    ],
)
def test_metrics_settings_are_checked_when_the_process_starts(env, says):
    assert says in refusal_with(env)


# What a scrape says


@pytest.fixture
def scraper(settings) -> Client:
    settings.DLR_METRICS_TOKEN = TOKEN
    return Client()


def test_refused_webhooks_are_exposed_by_connection_and_reason(client, scraper):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")
    headers = generic_headers(message.connection, body)
    headers["webhook-signature"] = "v1,AAAA"
    content_type = headers.pop("content-type")
    url = f"/hooks/{message.connection.slug}/"
    assert client.post(url, data=body, content_type=content_type, headers=headers).status_code == 401
    assert client.post(url, data=b"{", content_type="application/json", headers=headers).status_code == 401
    scraped = scrape(scraper)
    assert value(scraped, "dlr_webhooks_refused_recent", connection=message.connection.slug, reason="signature") == 2


def test_receipts_are_counted_by_connection_and_status_after_real_webhooks(client, scraper):
    first, second = MessageFactory(), MessageFactory()
    idle = ConnectionFactory(slug="idle")
    assert post_webhook(client, first, "delivered") == 200
    assert post_webhook(client, second, "undelivered") == 200
    scraped = scrape(scraper)
    assert value(scraped, "dlr_receipts_recent", connection=first.connection.slug, status="delivered") == 1
    assert value(scraped, "dlr_receipts_recent", connection=second.connection.slug, status="undelivered") == 1
    assert value(scraped, "dlr_receipts_recent", connection=first.connection.slug, status="undelivered") == 0
    assert value(scraped, "dlr_receipts_recent", connection=idle.slug, status="delivered") == 0


def test_receipts_older_than_the_window_are_not_counted(client, scraper, time_machine):
    message = MessageFactory()
    time_machine.move_to(timezone.now() - timedelta(minutes=6), tick=False)
    assert post_webhook(client, message, "delivered") == 200
    time_machine.move_to(timezone.now() + timedelta(minutes=6), tick=False)
    assert value(scrape(scraper), "dlr_receipts_recent", connection=message.connection.slug, status="delivered") == 0


def test_webhook_latency_is_observed_once_per_request_by_kind_and_status_class(client, scraper):
    message = MessageFactory()
    before = scrape(scraper)
    assert post_webhook(client, message, "delivered") == 200
    assert client.post("/hooks/no-such-connection/", data=b"{}", content_type="application/json").status_code == 404
    after = scrape(scraper)

    def added(**labels: str) -> float:
        key = ("dlr_webhook_duration_seconds_count", frozenset(labels.items()))
        return after[key] - before.get(key, 0.0)

    assert added(kind="standard-webhooks", status_class="2xx") == 1
    assert added(kind="unknown", status_class="4xx") == 1
    assert value(after, "dlr_webhook_duration_seconds_sum", kind="standard-webhooks", status_class="2xx") > 0


def test_other_paths_are_not_timed(client, scraper):
    before = scrape(scraper)
    client.get("/healthz")
    after = scrape(scraper)
    assert {k: v for k, v in after.items() if k[0].startswith("dlr_webhook")} == {
        k: v for k, v in before.items() if k[0].startswith("dlr_webhook")
    }


def test_outbox_lag_is_the_age_of_the_oldest_unprocessed_event(scraper):
    message = MessageFactory()
    now = timezone.now()
    changed = {"message": message, "kind": "status_changed", "status": "sent"}
    OutboxEvent.objects.create(**changed, created_at=now - timedelta(minutes=3))
    OutboxEvent.objects.create(**changed, created_at=now - timedelta(hours=2), processed_at=now)
    OutboxEvent.objects.create(**changed, created_at=now - timedelta(hours=1), failed_at=now)
    scraped = scrape(scraper)
    assert 180 <= value(scraped, "dlr_outbox_lag_seconds") < 240
    assert value(scraped, "dlr_outbox_pending") == 1
    assert value(scraped, "dlr_outbox_parked") == 1


def test_an_empty_outbox_has_no_lag(scraper):
    scraped = scrape(scraper)
    assert value(scraped, "dlr_outbox_lag_seconds") == 0
    assert value(scraped, "dlr_outbox_pending") == 0


def test_decisions_and_attempts_are_counted_by_outcome_and_overdue_attempts_found(scraper):
    message = MessageFactory()
    now = timezone.now()
    scheduled = Decision.objects.create(message=message, action="retry_same", state="scheduled", why="r",
                                        created_at=now)  # fmt: skip
    Decision.objects.create(message=message, action="notify", state="recorded", why="r", created_at=now)
    Decision.objects.create(message=message, action="notify", state="recorded", why="r",
                            created_at=now - timedelta(hours=1))  # fmt: skip

    def attempt(key: str, outcome: str, due_at, finished_at=None) -> None:
        Attempt.objects.create(decision=scheduled, chain_root=message, number=1, idempotency_key=key, due_at=due_at,
                               outcome=outcome, finished_at=finished_at)  # fmt: skip

    attempt("due-later", "scheduled", now + timedelta(minutes=5))
    attempt("stuck", "scheduled", now - timedelta(minutes=10))
    attempt("lease-ran-out", "running", now - timedelta(minutes=2))
    attempt("done", "succeeded", now - timedelta(minutes=3), finished_at=now - timedelta(minutes=1))
    attempt("failed-long-ago", "failed", now - timedelta(hours=3), finished_at=now - timedelta(hours=2))
    scraped = scrape(scraper)
    assert value(scraped, "dlr_decisions_recent", outcome="scheduled") == 1
    assert value(scraped, "dlr_decisions_recent", outcome="recorded") == 1
    assert value(scraped, "dlr_decisions_recent", outcome="skipped") == 0
    assert value(scraped, "dlr_attempts_open", outcome="scheduled") == 2
    assert value(scraped, "dlr_attempts_open", outcome="running") == 1
    assert value(scraped, "dlr_attempts_finished_recent", outcome="succeeded") == 1
    assert value(scraped, "dlr_attempts_finished_recent", outcome="failed") == 0
    assert value(scraped, "dlr_attempts_overdue") == 2


def test_the_decisions_window_is_found_among_many_older_decisions(scraper):
    # More rows than the first probes step over: the window's start is found by probing back.
    message = MessageFactory()
    now = timezone.now()

    def decisions(count: int, created_at) -> list[Decision]:
        return [
            Decision(message=message, action="notify", state="recorded", why="r", created_at=created_at)
            for _ in range(count)
        ]

    Decision.objects.bulk_create(decisions(1500, now - timedelta(hours=1)))
    Decision.objects.bulk_create(decisions(700, now - timedelta(minutes=1)))
    assert value(scrape(scraper), "dlr_decisions_recent", outcome="recorded") == 700


def test_feed_posts_are_counted_by_outcome_and_open_deliveries_as_backlog(scraper):
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    now = timezone.now()
    for _ in range(3):
        feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    first, second, third = FeedDelivery.objects.order_by("id")
    FeedAttempt.objects.create(delivery=first, number=1, attempted_at=now, status_code=502, duration_ms=9)
    FeedAttempt.objects.create(delivery=first, number=2, attempted_at=now, status_code=204, duration_ms=9)
    FeedAttempt.objects.create(delivery=second, number=1, attempted_at=now, error="refused", duration_ms=9)
    FeedDelivery.objects.filter(pk=first.pk).update(status="delivered", delivered_at=now)
    FeedDelivery.objects.filter(pk=second.pk).update(status="failed")
    scraped = scrape(scraper)
    assert value(scraped, "dlr_feed_deliveries_recent", outcome="delivered") == 1
    assert value(scraped, "dlr_feed_deliveries_recent", outcome="failed") == 2
    assert value(scraped, "dlr_feed_backlog", status="pending") == 1
    assert value(scraped, "dlr_feed_backlog", status="failed") == 1
    assert third.status == "pending"


def test_beat_age_is_the_time_since_its_last_recorded_run(scraper):
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    now = timezone.now()
    PeriodicTask.objects.create(name="attempts-run", task="retries.tasks.run_due_attempts", interval=every,
                                last_run_at=now - timedelta(seconds=90))  # fmt: skip
    PeriodicTask.objects.create(name="paused", task="retries.tasks.erase_message_bodies", interval=every,
                                enabled=False, last_run_at=now - timedelta(seconds=5))  # fmt: skip
    assert 90 <= value(scrape(scraper), "dlr_beat_last_run_age_seconds") < 150


def test_beat_that_never_ran_is_infinitely_old(scraper):
    assert value(scrape(scraper), "dlr_beat_last_run_age_seconds") == float("inf")


def test_open_alerts_are_the_unacknowledged_ones(scraper):
    now = timezone.now()
    Alert.objects.create(source="rule", title="look", created_at=now)
    Alert.objects.create(source="rule", title="seen", created_at=now, acknowledged_at=now)
    assert value(scrape(scraper), "dlr_alerts_open", source="rule") == 1


def test_every_reading_is_up_and_labels_carry_no_number_secret_or_id(client, scraper):
    message = MessageFactory()
    assert post_webhook(client, message, "delivered") == 200
    response = scraper.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    text = response.content.decode()
    for part in ("receipts", "outbox", "decisions", "attempts", "feed", "beat", "alerts"):
        assert value(samples(text), "dlr_metrics_reading_up", part=part) == 1
    for hidden in (message.recipient, message.recipient[1:], message.provider_message_id, GENERIC_SECRET, TOKEN):
        assert hidden not in text
    label_names = {name for (_, labels) in samples(text) for name, _ in labels}
    assert label_names <= {"connection", "status", "outcome", "kind", "status_class", "source", "part", "le"}


@pytest.mark.django_db(transaction=True)
def test_a_reading_the_database_cannot_answer_is_left_out_and_the_scrape_still_answers(scraper):
    # Another session holds the alerts table: the alerts reading waits out its statement
    # timeout while every other reading is reported.
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or None, user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=connection.settings_dict["NAME"]) as holder:  # fmt: skip
        holder.execute("LOCK TABLE alerts_alert IN ACCESS EXCLUSIVE MODE")
        scraped = scrape(scraper)
        holder.rollback()
    assert value(scraped, "dlr_metrics_reading_up", part="alerts") == 0
    assert not any(name == "dlr_alerts_open" for name, _ in scraped)
    assert value(scraped, "dlr_metrics_reading_up", part="outbox") == 1
    assert value(scraped, "dlr_outbox_pending") == 0


# Several processes


OBSERVE = """
import sys
from dlrconsole.ops.webhook_latency import observe_webhook
for _ in range(int(sys.argv[1])):
    observe_webhook(kind="twilio", status=200, seconds=0.004)
observe_webhook(kind="twilio", status=503, seconds=1.5)
"""


def test_latency_observed_by_separate_processes_is_summed_by_one_scrape(tmp_path):
    # Two workers as gunicorn runs them: separate interpreters sharing PROMETHEUS_MULTIPROC_DIR.
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [subprocess.Popen([sys.executable, "-c", OBSERVE, str(count)], cwd=ROOT, env=env) for count in (3, 4)]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    assert len(list(tmp_path.glob("histogram_*.db"))) == 2  # one file per process
    scraped = samples(exposition(multiprocess_dir=str(tmp_path)).decode())
    assert value(scraped, "dlr_webhook_duration_seconds_count", kind="twilio", status_class="2xx") == 7
    assert value(scraped, "dlr_webhook_duration_seconds_sum", kind="twilio", status_class="2xx") == pytest.approx(0.028)
    assert value(scraped, "dlr_webhook_duration_seconds_bucket", kind="twilio", status_class="2xx", le="0.005") == 7
    assert value(scraped, "dlr_webhook_duration_seconds_count", kind="twilio", status_class="5xx") == 2
    assert value(scraped, "dlr_webhook_duration_seconds_bucket", kind="twilio", status_class="5xx", le="1.0") == 0
    # The database's readings are in the same exposition.
    assert value(scraped, "dlr_metrics_reading_up", part="receipts") == 1
