"""Attempts run through real senders (a local gateway on loopback): one resend per attempt,
registered into the chain; sender errors rescheduled or final; the product told what happened."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlrconsole.queues import SENDS, queue_name
from dlrconsole.timeline import message_timeline
from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.attempts import attempts_run_due
from retries.bodies import message_bodies_erase
from retries.feed.models import FeedEvent
from retries.models import Attempt, ConnectionSender, Decision, FallbackChannel
from tests.factories import ConnectionFactory, MessageFactory, rule_with_steps
from tests.send_api import FakeGateway
from tests.worker import queued_task_names

# The shipped rules, as migrations install them: a transactional test run before in the same
# process (another file, under xdist) flushes them away.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_rules")]


def fail(message: Message, reason: str = "absent_subscriber", error_class: str = "temporary") -> Decision:
    Message.objects.filter(pk=message.pk).update(status=Status.UNDELIVERED, reason=reason, error_class=error_class)
    event = OutboxEvent.objects.create(message=message, kind="status_changed", status="undelivered",
                                       created_at=timezone.now())  # fmt: skip
    outbox_process(event.pk)
    return Decision.objects.filter(outbox_event=event).order_by("id").first()


def events(message: Message | None = None) -> list[str]:
    found = FeedEvent.objects.order_by("id")
    return list((found.filter(message=message) if message else found).values_list("type", flat=True))


def run_later(seconds: int = 600) -> int:
    return attempts_run_due(now=timezone.now() + timedelta(seconds=seconds))


@pytest.fixture
def otp(gateway: FakeGateway, default_rules: None) -> Message:
    message = MessageFactory(body="Your code is 123456", fallback_email="user@example.com")
    gateway.configure(message.connection, sender_id="ACME")
    return message


def test_a_temporary_failure_is_resent_after_the_backoff_as_a_new_message_in_the_chain(otp, gateway):
    fail(otp)
    assert attempts_run_due() == 0  # not due before its backoff
    assert run_later() == 1
    attempt = Attempt.objects.get()
    resend = attempt.resend
    assert (attempt.outcome, attempt.tries, attempt.detail) == ("succeeded", 1, f"resent as message {resend.pk}")
    assert attempt.response_summary == "HTTP 200: id gw-1"
    assert attempt.duration_ms is not None
    assert (resend.chain_root, resend.provider_message_id, resend.connection) == (otp, "gw-1", otp.connection)
    assert (resend.recipient, resend.flow, resend.status) == (otp.recipient, otp.flow, Status.QUEUED)
    [sent] = gateway.sends.values()
    assert (sent["to"], sent["body"], sent["sender_id"]) == (otp.recipient, "Your code is 123456", "ACME")
    assert sent["status_callback_url"].endswith(f"/hooks/{otp.connection.slug}/")
    assert events() == ["message.retry_scheduled"]
    assert run_later() == 0  # nothing runs twice


def test_a_pass_sends_its_resends_over_one_connection_to_the_provider(otp, gateway):
    # Over HTTPS a new connection per resend is a TLS handshake per resend.
    other = MessageFactory(connection=otp.connection, body="Your code is 654321")
    fail(otp)
    fail(other)
    assert run_later() == 2
    assert len(gateway.sends) == 2
    assert len(set(gateway.connections)) == 1
    assert run_later() == 0


def test_the_provider_sees_the_attempts_idempotency_key(otp, gateway):
    fail(otp)
    run_later()
    assert [r["key"] for r in gateway.requests] == [f"retry-of-message-{otp.pk}"]


def test_a_late_delivery_cancels_the_scheduled_retry_and_nothing_is_sent(otp, gateway):
    fail(otp)
    Message.objects.filter(pk=otp.pk).update(status=Status.DELIVERED)
    outbox_process(OutboxEvent.objects.create(message=otp, kind="status_changed", status="delivered",
                                              created_at=timezone.now()).pk)  # fmt: skip
    assert run_later() == 0
    assert Attempt.objects.get().outcome == "cancelled"
    assert gateway.requests == []
    assert events() == ["message.retry_scheduled", "message.delivered"]


def test_a_temporary_sender_error_runs_the_same_attempt_again_later(otp, gateway):
    gateway.fail_next(503)
    fail(otp)
    assert run_later(60) == 1
    attempt = Attempt.objects.get()
    # The status only: the gateway's words ({"error": "try later"}) are not ours to show.
    assert (attempt.outcome, attempt.detail) == ("scheduled", "temporary: HTTP 503")
    assert run_later(60) == 0  # waits its own delay
    assert run_later(120) == 1
    attempt.refresh_from_db()
    assert (attempt.outcome, attempt.tries) == ("succeeded", 2)
    assert len(gateway.sends) == 1
    assert Message.objects.filter(chain_root=otp).count() == 1


def test_a_permanent_sender_error_fails_the_attempt_and_tells_the_product_once(otp, gateway):
    gateway.fail_next(400)
    fail(otp)
    run_later()
    attempt = Attempt.objects.get()
    assert attempt.outcome == "failed"
    assert attempt.detail.startswith("permanent: HTTP 400")
    assert events() == ["message.retry_scheduled", "message.failed"]
    failed = FeedEvent.objects.get(type="message.failed").payload["data"]
    assert failed["final"] is True
    assert failed["reason"] == "absent_subscriber"
    assert failed["explanation"]
    assert not Message.objects.filter(chain_root=otp).exists()


def test_a_connection_without_a_send_api_fails_the_attempt_with_the_reason():
    message = MessageFactory(body="hello")
    fail(message)
    run_later()
    assert Attempt.objects.get().detail == f"connection {message.connection.slug} has no send API configured"
    assert events() == ["message.retry_scheduled", "message.failed"]


def test_without_the_text_there_is_nothing_to_resend_and_the_step_is_skipped_with_the_reason(gateway, default_rules):
    message = MessageFactory(body="")
    gateway.configure(message.connection)
    decision = fail(message)
    assert (decision.state, decision.skip_reason) == ("skipped", "missing_input")
    assert "no message text" in decision.why
    assert not Attempt.objects.exists()
    assert events() == ["message.failed"]  # nothing else to try: the failure stands
    assert gateway.requests == []


def test_an_attempt_past_its_deadline_is_cancelled_and_the_failure_stands(otp, gateway):
    fail(otp)
    assert run_later(2 * 3600) == 1  # the default temporary rule's deadline is an hour
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.detail) == ("cancelled", "its deadline passed")
    assert gateway.requests == []
    assert events() == ["message.retry_scheduled", "message.failed"]


def test_a_route_problem_is_resent_on_the_other_connection(otp, gateway):
    backup = ConnectionFactory(slug="backup")
    gateway.configure(backup)
    rule_with_steps(
        "Route problem: retry on the backup", {"action": "retry_other", "target_connection": backup},
        reasons=["carrier_rejected"],
    )  # fmt: skip
    fail(otp, reason="carrier_rejected", error_class="permanent")
    assert attempts_run_due() == 1
    resend = Attempt.objects.get().resend
    assert (resend.connection, resend.chain_root) == (backup, otp)


def test_a_fallback_channel_sends_an_email_and_tells_the_product(otp, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps("Fallback", {"action": "fallback", "fallback_channel": channel}, statuses=["undelivered"])
    fail(otp)
    assert attempts_run_due() == 1
    [email] = mail.outbox
    assert (email.to, email.body, email.from_email) == (["user@example.com"], "Your code is 123456", "otp@acme.test")
    attempt = Attempt.objects.get()
    assert attempt.outcome == "succeeded"
    assert attempt.resend is None
    assert events() == ["message.retry_scheduled", "message.fallback_sent"]


def test_a_claim_whose_runner_died_is_taken_over_after_its_lease(otp, gateway, settings):
    settings.DLR_ATTEMPT_LEASE_SECONDS = 30
    fail(otp)
    later = timezone.now() + timedelta(hours=0, seconds=120)
    Attempt.objects.update(outcome="running", due_at=later - timedelta(seconds=1), tries=1)  # a dead claim
    assert attempts_run_due(now=later) == 1
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.tries) == ("succeeded", 2)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_claim_was_taken_over_during_the_send_records_nothing(otp, gateway):
    from django.db import connection

    def another_runner_takes_over() -> None:
        Attempt.objects.update(tries=F("tries") + 1)
        connection.close()  # the gateway's thread: its own connection

    gateway.on_send = another_runner_takes_over
    fail(otp)
    assert run_later() == 1
    assert Attempt.objects.get().outcome == "running"
    assert not Message.objects.filter(chain_root=otp).exists()


def test_message_text_is_erased_after_the_retention_unless_a_retry_still_needs_it(gateway, settings):
    settings.DLR_MESSAGE_BODY_RETENTION_SECONDS = 60
    old = timezone.now() - timedelta(minutes=5)
    kept_for_retry = MessageFactory(body="code 1", submitted_at=old)
    gateway.configure(kept_for_retry.connection)
    fail(kept_for_retry)
    Attempt.objects.update(deadline_at=None)
    erased = MessageFactory(body="code 2", submitted_at=old)
    recent = MessageFactory(body="code 3")
    assert message_bodies_erase() == 1
    bodies = Message.objects.filter(pk__in=[kept_for_retry.pk, erased.pk, recent.pk]).order_by("pk")
    assert [m.body for m in bodies] == ["code 1", "", "code 3"]


def test_the_sender_admin_never_shows_the_credential_and_blank_keeps_it(admin_client, otp):
    configured = ConnectionSender.objects.get(connection=otp.connection)
    configured.config = {"url": "https://gw.example/send", "token": "tok-secret-value-1234"}
    configured.save()
    url = f"/admin/retries/connectionsender/{configured.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "tok-secret-value-1234" not in page
    assert "…1234" in page
    response = admin_client.post(url, {
        "connection": otp.connection.pk, "kind": "generic-http", "settings": '{"url": "https://gw2.example/send"}',
        "credential": "", "sender_id": "ACME", "enabled": "on",
    })  # fmt: skip
    assert response.status_code == 302
    configured.refresh_from_db()
    assert configured.config == {"url": "https://gw2.example/send", "token": "tok-secret-value-1234"}


def test_the_sender_admin_refuses_an_incomplete_configuration_with_the_reason(admin_client, otp):
    response = admin_client.post("/admin/retries/fallbackchannel/add/", {
        "slug": "hook", "kind": "generic-webhook", "settings": '{"url": "https://product.example/hook"}',
        "credential": "", "sender_id": "", "enabled": "on",
    })  # fmt: skip
    assert response.status_code == 200
    assert "Sender settings: missing required setting(s): secret." in response.content.decode()
    assert not FallbackChannel.objects.exists()


def test_an_attempt_is_stamped_when_the_reply_arrives(otp, gateway):
    fail(otp)
    Attempt.objects.update(due_at=timezone.now())
    assert attempts_run_due() == 1  # production's clock: no `now` given
    [request] = gateway.requests
    assert Attempt.objects.get().finished_at.timestamp() >= request["at"]


def test_the_timeline_never_shows_what_a_send_api_answered(otp, gateway):
    gateway.fail_next(503, 400)  # each answered with {"error": "try later"}
    fail(otp)
    run_later(60)
    run_later(600)
    shown = json.dumps([entry.detail for entry in message_timeline(otp)], default=str)
    assert "permanent: HTTP 400" in shown
    assert "try later" not in shown
    assert "try later" not in json.dumps([e.payload for e in FeedEvent.objects.all()])


def test_a_pass_claims_several_attempts_at_once_and_sends_each(otp, gateway):
    chain = [otp, *(MessageFactory(connection=otp.connection, body="Your code is 654321") for _ in range(2))]
    for message in chain:
        fail(message)

    with CaptureQueriesContext(db_connection) as queries:
        assert run_later() == 3

    claims = [
        q
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "retries_attempt" SET "outcome" = \'running\'')
    ]
    assert len(claims) == 1
    assert len(gateway.sends) == 3
    assert set(Attempt.objects.values_list("outcome", "tries")) == {("succeeded", 1)}


def test_a_pass_gives_back_the_claims_it_could_not_run(otp, gateway):
    for message in [otp, MessageFactory(connection=otp.connection, body="Your code is 654321")]:
        fail(message)
    later = timezone.now() + timedelta(seconds=600)

    # Too little time left for any send: the first is released before it starts, the rest after.
    assert attempts_run_due(now=later, deadline=time.monotonic() + 1) == 0

    assert not gateway.sends
    assert list(Attempt.objects.values_list("outcome", "tries", "due_at")) == [("scheduled", 0, later)] * 2
    assert run_later() == 2  # the next pass runs them


def test_a_run_that_reaches_its_limit_asks_for_another_and_the_last_run_does_not(
    otp, gateway, redis_client, monkeypatch
):
    # The other resends due would otherwise wait for the next kick or beat tick.
    from retries import tasks

    monkeypatch.setattr(tasks, "ATTEMPTS_PER_RUN", 2)
    for message in [otp, *(MessageFactory(connection=otp.connection, body="code") for _ in range(2))]:
        fail(message)
    Attempt.objects.update(due_at=timezone.now())
    assert tasks.run_due_attempts() == 2
    sends = [queue_name(SENDS)]
    assert queued_task_names(redis_client, sends) == ["retries.tasks.run_due_attempts"]
    assert tasks.run_due_attempts() == 1
    assert queued_task_names(redis_client, sends) == ["retries.tasks.run_due_attempts"]  # nothing more asked
    assert len(gateway.sends) == 3


def recordings(queries: CaptureQueriesContext) -> int:
    """Statements that record attempts as succeeded (one per batch of sends recorded together)."""
    return sum(q["sql"].startswith('UPDATE "retries_attempt" SET "outcome" = v.') for q in queries.captured_queries)


def test_a_claims_resends_are_recorded_together_in_the_statements_of_one(otp, gateway):
    def pass_of(count: int) -> int:
        for _ in range(count):
            fail(MessageFactory(connection=otp.connection, body="Your code is 654321"))
        with CaptureQueriesContext(db_connection) as queries:
            assert run_later() == count
        assert recordings(queries) == 1
        return len(queries.captured_queries)

    assert pass_of(8) == pass_of(2)
    resends = Attempt.objects.values_list("resend__chain_root", "decision__message", "outcome")
    assert all(root == message and outcome == "succeeded" for root, message, outcome in resends)
    assert Message.objects.filter(chain_root__isnull=False).count() == len(gateway.sends) == 10


def test_sends_through_a_peer_that_keeps_no_idempotency_keys_are_recorded_one_by_one(otp, gateway, monkeypatch):
    # A worker killed before recording would send those again, and such a peer sends twice.
    from retries.senders.generic_http import GenericHttpSender

    monkeypatch.setattr(GenericHttpSender, "deduplicates", False)
    for message in [otp, *(MessageFactory(connection=otp.connection, body="code") for _ in range(2))]:
        fail(message)
    with CaptureQueriesContext(db_connection) as queries:
        assert run_later() == 3
    assert recordings(queries) == 3
    assert set(Attempt.objects.values_list("outcome", flat=True)) == {"succeeded"}


def test_a_send_that_cannot_be_recorded_holds_up_none_of_the_others(otp, gateway, monkeypatch):
    from retries.actions.retry_same import RetrySame

    other = MessageFactory(connection=otp.connection, body="Your code is 654321")
    real = RetrySame.sent_together

    def breaks_on_otp(self, sends):
        if any(attempt.chain_root_id == otp.pk for attempt, _result, _at in sends):
            raise RuntimeError("cannot record this one")
        return real(self, sends)

    monkeypatch.setattr(RetrySame, "sent_together", breaks_on_otp)
    fail(otp)
    fail(other)
    assert run_later() == 2

    broken, fine = Attempt.objects.get(chain_root=otp), Attempt.objects.get(chain_root=other)
    assert (fine.outcome, fine.resend.chain_root) == ("succeeded", other)
    assert broken.outcome == "scheduled"
    assert broken.detail.startswith("temporary: internal error: RuntimeError")
    assert broken.resend is None  # sent again after its delay, with the same idempotency key


def test_a_resend_whose_id_is_another_messages_is_recorded_and_the_others_join_their_chains(otp, gateway):
    other = MessageFactory(connection=otp.connection, body="Your code is 654321")
    MessageFactory(connection=otp.connection, provider_message_id="gw-2", recipient="+447700900999")
    fail(otp)
    fail(other)
    assert run_later() == 2
    first, second = Attempt.objects.get(chain_root=otp, number=1), Attempt.objects.get(chain_root=other, number=1)
    assert (first.outcome, first.resend.provider_message_id) == ("succeeded", "gw-1")
    assert (second.outcome, second.resend) == ("succeeded", None)
    assert second.detail == "sent as gw-2, an id already registered for another message"


@pytest.mark.django_db(transaction=True)
def test_a_chain_delivered_while_its_claim_waits_is_seen_once_the_claim_is_old(otp, gateway, monkeypatch):
    from django.db import connection

    from retries import attempts

    other = MessageFactory(connection=otp.connection, body="Your code is 654321")
    fail(otp)
    fail(other)

    def other_is_delivered_meanwhile() -> None:
        Message.objects.filter(pk=other.pk).update(status=Status.DELIVERED)
        connection.close()  # the gateway's thread: its own connection

    gateway.on_send = other_is_delivered_meanwhile
    monkeypatch.setattr(attempts, "FRESH_SECONDS", 0.0)  # as if the first send had been slow
    assert run_later() == 2
    assert Attempt.objects.get(chain_root=otp).outcome == "succeeded"
    assert (Attempt.objects.get(chain_root=other).outcome, Attempt.objects.get(chain_root=other).detail) == (
        "cancelled",
        "the chain was delivered meanwhile",
    )
    assert len(gateway.sends) == 1
