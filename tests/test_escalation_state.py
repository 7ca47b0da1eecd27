"""What the message page's "What happened / Next" reads: the chain's escalation as it stands,
from the decisions and attempts the rules recorded (retries.selectors.escalation_state)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from receipts.models import OutboxEvent
from receipts.statuses import Status
from retries.decisions import decide
from retries.models import Attempt, FallbackChannel
from retries.selectors import attempt_outcome, escalation_state
from tests.factories import ConnectionFactory, MessageFactory, rule_with_steps

# The shipped rules, as migrations install them: a transactional test run before in the same
# process (another file, under xdist) flushes them away.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_rules")]


def event_for(message, status: str = Status.UNDELIVERED) -> OutboxEvent:
    return OutboxEvent.objects.create(message=message, kind="status_changed", status=status, created_at=timezone.now())


def otp_failure(**fields):
    values = {"status": Status.UNDELIVERED, "reason": "absent_subscriber", "error_class": "temporary",
              "flow": "login-otp", "country": "FR"} | fields  # fmt: skip
    return MessageFactory(**values)


@pytest.fixture
def france_otp_rule():
    backup = ConnectionFactory(slug="backup")
    email = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    return rule_with_steps(
        "Login OTP, France",
        {"action": "retry_same", "count": 2, "delays": [30, 120]},
        {"action": "retry_other", "count": 1, "target_connection": backup},
        {"action": "fallback", "fallback_channel": email},
        {"action": "notify"},
        flows=["login-otp"], countries=["FR"], deadline_seconds=600,
    )  # fmt: skip


def test_a_first_failure_shows_the_retry_scheduled_the_steps_left_and_the_deadline(france_otp_rule):
    otp = otp_failure(fallback_email="u@example.com")
    now = timezone.now()
    decide(event_for(otp), now=now)
    state = escalation_state(otp)
    assert state.rule == france_otp_rule
    assert [(a.number, a.due_at) for a in state.scheduled] == [(1, now + timedelta(seconds=30))]
    assert [(left.step.position, left.attempts_left) for left in state.left] == [(1, 1), (2, 1), (3, 1), (4, 0)]
    assert state.left[1].label == "Retry on another connection (backup)"
    assert state.deadline == otp.submitted_at + timedelta(seconds=600)
    assert state.has_chain
    assert not state.delivered


def test_an_attempt_accepted_by_the_provider_is_told_apart_from_the_resends_own_status(france_otp_rule):
    otp = otp_failure(fallback_email="u@example.com")
    decide(event_for(otp))
    resend = MessageFactory(chain_root=otp, connection=otp.connection, status=Status.UNDELIVERED, flow="login-otp",
                            country="FR", reason="absent_subscriber", error_class="temporary")  # fmt: skip
    Attempt.objects.update(outcome=Attempt.Outcome.SUCCEEDED, resend=resend, finished_at=timezone.now())
    decide(event_for(resend))
    state = escalation_state(resend)  # the same story from any message of the chain
    assert [item.text for item in state.done] == [
        f"Attempt 1 through {otp.connection.slug}: accepted by the provider; the resend is undelivered."
    ]
    assert state.done[0].resend == resend
    assert [a.number for a in state.scheduled] == [2]
    assert [left.step.position for left in state.left] == [2, 3, 4]  # step 1 has its last attempt scheduled
    assert attempt_outcome(Attempt.objects.get(number=1)) == "accepted by the provider"


def test_a_step_the_message_lacks_input_for_is_told_as_skipped_with_its_reason():
    email = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps("E-mail then tell", {"action": "fallback", "fallback_channel": email}, {"action": "notify"},
                    flows=["otp"])  # fmt: skip
    otp = otp_failure(flow="otp")  # no fallback address registered
    decide(event_for(otp))
    texts = [item.text for item in escalation_state(otp).done]
    skipped = "Skipped step 1 (send through a fallback channel): no fallback e-mail"
    assert any(text.startswith(skipped) for text in texts)
    assert "The product was notified of the failure." in texts
    assert escalation_state(otp).left == []


def test_a_never_retried_failure_says_the_product_was_notified_and_nothing_is_left():
    opted_out = MessageFactory(status=Status.UNDELIVERED, reason="opted_out", error_class="permanent")
    decide(event_for(opted_out))
    state = escalation_state(opted_out)
    assert [item.text for item in state.done] == ["The product was notified of the failure."]
    assert state.scheduled == []
    assert state.left == []


def test_spent_steps_and_the_final_notice_are_told_when_every_step_was_taken():
    rule_with_steps("Once", {"action": "retry_same", "count": 1}, flows=["once"])
    message = otp_failure(flow="once", body="Code 1234")
    decide(event_for(message))
    Attempt.objects.update(outcome=Attempt.Outcome.FAILED, detail="the gateway refused the number",
                           finished_at=timezone.now())  # fmt: skip
    decide(event_for(MessageFactory(chain_root=message, status=Status.UNDELIVERED, flow="once")))
    state = escalation_state(message)
    assert state.left == []
    assert state.done[0].text.endswith("could not be sent (the gateway refused the number).")
    assert state.product_told_final


def test_a_delivered_chain_has_nothing_next():
    rule_with_steps("Retry", {"action": "retry_same", "count": 3}, flows=["otp"])
    otp = otp_failure(flow="otp")
    decide(event_for(otp))
    MessageFactory(chain_root=otp, status=Status.DELIVERED, flow="otp")
    state = escalation_state(otp)
    assert state.delivered
    assert state.left == []


def test_a_message_no_rule_acted_on_has_no_chain_to_tell():
    state = escalation_state(MessageFactory(status=Status.SENT))
    assert not state.has_chain
    assert state.rule is None
    assert state.done == []
