"""Rules turn status changes into decisions, once per event; retries are scheduled as
attempts with due times, and a delivery anywhere in the chain cancels them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from receipts.models import OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.decisions import backoff_delay, decide
from retries.models import Attempt, Decision, Rule
from tests.factories import ConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db


def event_for(message, status: str, kind: str = OutboxEvent.Kind.STATUS_CHANGED) -> OutboxEvent:
    return OutboxEvent.objects.create(message=message, kind=kind, status=status, created_at=timezone.now())


def failed(reason: str, error_class: str, **fields):
    return MessageFactory(status=Status.UNDELIVERED, reason=reason, error_class=error_class, **fields)


def test_the_default_rule_set_ships():
    assert list(Rule.objects.values_list("action", flat=True)) == [
        "notify", "notify", "notify", "retry_other", "retry_same", "notify",
    ]  # fmt: skip


def test_a_temporary_failure_schedules_a_retry_after_the_backoff():
    message = failed("absent_subscriber", "temporary")
    now = timezone.now()
    decision = decide(event_for(message, "undelivered"), now=now)
    assert (decision.action, decision.state) == ("retry_same", "scheduled")
    attempt = Attempt.objects.get()
    assert (attempt.number, attempt.chain_root, attempt.due_at) == (1, message, now + timedelta(seconds=60))
    assert attempt.idempotency_key == f"retry-of-message-{message.pk}"


def test_opt_outs_and_number_problems_are_never_retried_and_the_product_is_told():
    for reason in ("opted_out", "unknown_subscriber", "landline"):
        decision = decide(event_for(failed(reason, "permanent"), "undelivered"))
        assert (decision.action, decision.state) == ("notify", "recorded"), reason
    assert not Attempt.objects.exists()


def test_a_route_problem_without_another_connection_says_so():
    decision = decide(event_for(failed("unroutable", "permanent"), "rejected"))
    assert (decision.action, decision.state, decision.skip_reason) == ("retry_other", "skipped", "no_target")
    assert "no other connection" in decision.why


def test_a_route_problem_is_retried_on_the_rules_other_connection():
    Rule.objects.filter(action="retry_other").update(target_connection=ConnectionFactory(slug="backup-route"))
    decision = decide(event_for(failed("carrier_rejected", "permanent"), "rejected"))
    assert (decision.action, decision.state) == ("retry_other", "scheduled")
    assert Attempt.objects.get().due_at <= timezone.now()


def test_retries_stop_after_max_attempts():
    original = failed("absent_subscriber", "temporary")
    failing = original
    for _ in range(3):  # each attempt's resend fails again
        decide(event_for(failing, "undelivered"))
        failing = failed("absent_subscriber", "temporary", connection=original.connection, chain_root=original)
    decision = decide(event_for(failing, "undelivered"))
    assert (decision.state, decision.skip_reason, decision.why) == (
        "skipped", "max_attempts", "3 of 3 attempts already made",
    )  # fmt: skip
    assert Attempt.objects.count() == 3


def test_no_retry_past_the_deadline():
    message = failed("absent_subscriber", "temporary", submitted_at=timezone.now() - timedelta(minutes=59, seconds=30))
    decision = decide(event_for(message, "undelivered"))
    assert (decision.state, decision.skip_reason) == ("skipped", "deadline")
    assert "deadline" in decision.why


def test_delivered_anywhere_in_the_chain_cancels_scheduled_attempts():
    original = failed("absent_subscriber", "temporary")
    decide(event_for(original, "undelivered"))
    resend = MessageFactory(connection=original.connection, chain_root=original, status=Status.DELIVERED)
    decision = decide(event_for(resend, "delivered"))
    assert decision.action == "notify"
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.decision.state) == ("cancelled", Decision.State.CANCELLED)


def test_a_late_failure_after_delivery_schedules_nothing():
    message = MessageFactory(status=Status.DELIVERED, reason="absent_subscriber", error_class="temporary")
    decision = decide(event_for(message, "undelivered"))
    assert (decision.state, decision.skip_reason) == ("skipped", "chain_delivered")


def test_a_second_failure_status_of_the_same_message_sends_no_second_copy():
    message = failed("absent_subscriber", "temporary")
    first, second = decide(event_for(message, "failed")), decide(event_for(message, "undelivered"))
    assert (first.state, second.state) == ("scheduled", "skipped")
    assert second.skip_reason == "already_retried"
    assert Attempt.objects.count() == 1


def test_an_event_processed_twice_is_decided_once():
    message = failed("absent_subscriber", "temporary")
    event = event_for(message, "undelivered")
    assert outbox_process(event.pk) is True
    assert outbox_process(event.pk) is False
    assert Decision.objects.filter(outbox_event=event).count() == 1
    assert Attempt.objects.count() == 1


def test_a_missing_receipt_is_a_decision_too():
    message = MessageFactory(status=Status.SENT)
    decision = decide(event_for(message, "sent", kind=OutboxEvent.Kind.NO_RECEIPT))
    assert (decision.action, decision.rule.name) == ("notify", "No receipt: tell the product")


def test_rule_criteria_narrow_what_matches():
    Rule.objects.all().delete()
    rule = Rule.objects.create(name="FR OTP", position=1, flows=["login-otp"], countries=["FR"], action="alert")
    assert decide(event_for(MessageFactory(flow="login-otp", country="FR"), "sent")).rule == rule
    assert decide(event_for(MessageFactory(flow="login-otp", country="GB"), "sent")).rule is None
    other = ConnectionFactory()
    rule.connections.add(other)
    assert decide(event_for(MessageFactory(flow="login-otp", country="FR"), "sent")).rule is None


@pytest.mark.parametrize(("made", "expected"), [(0, 60), (1, 300), (2, 900), (5, 900)])
def test_backoff_takes_the_schedules_entry_and_repeats_the_last(made, expected):
    assert backoff_delay([60, 300, 900], made) == expected
    assert backoff_delay([], made) == 0


def test_decisions_and_attempts_are_on_the_message_timeline(client):
    from tests.factories import product_token

    message = failed("absent_subscriber", "temporary")
    decide(event_for(message, "undelivered"))
    token = product_token()
    timeline = client.get(f"/api/v1/messages/{message.pk}/", HTTP_AUTHORIZATION=f"Token {token}").json()["timeline"]
    assert [e["kind"] for e in timeline if e["kind"] in {"decision", "attempt"}] == ["decision", "attempt"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"statuses": ["delivred"]}, "statuses"),
        ({"reasons": ["bad_luck"]}, "reasons"),
        ({"error_classes": ["fatal"]}, "error_classes"),
        ({"backoff_seconds": [60, "soon"]}, "backoff_seconds"),
        ({"flows": "login-otp"}, "flows"),
    ],
)
def test_rules_refuse_what_cannot_match_with_a_reason(fields, field):
    from django.core.exceptions import ValidationError

    rule = Rule(name="r", **{"action": "notify", **fields})
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert field in refused.value.message_dict


def test_a_wanted_retry_that_cannot_happen_tells_the_product_and_a_needless_one_does_not():
    from retries.feed.models import FeedEvent, ProductEndpoint
    from tests.factories import GENERIC_SECRET

    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    unroutable = failed("unroutable", "permanent")
    decide(event_for(unroutable, "rejected"))  # no target: the failure is final
    delivered = MessageFactory(status=Status.DELIVERED, reason="absent_subscriber", error_class="temporary")
    decide(event_for(delivered, "undelivered"))  # already delivered: nothing is owed
    assert list(FeedEvent.objects.values_list("message", "type")) == [(unroutable.pk, "message.failed")]


def test_an_action_an_app_registers_is_chosen_and_run_like_the_shipped_ones():
    from alerts.models import Alert
    from retries.actions.registry import action_choices

    assert ("alert", "Raise a support alert") in action_choices()
    Rule.objects.create(name="tell support", position=1, reasons=["blocked_content"], action="alert")
    decision = decide(event_for(failed("blocked_content", "permanent"), "rejected"))
    assert (decision.action, decision.state) == ("alert", "recorded")
    assert Alert.objects.get().decision == decision
