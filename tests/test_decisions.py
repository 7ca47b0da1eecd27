"""Rules take status changes and move their escalation once per event: steps that send nothing
are taken at once, a sending step schedules its next attempt after its wait, a spent step gives
way to the next, and a delivery anywhere in the chain cancels what is scheduled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from receipts.models import OutboxEvent
from receipts.outbox import outbox_process
from receipts.statuses import Status
from retries.decisions import decide
from retries.feed.models import FeedEvent, ProductEndpoint
from retries.models import Attempt, Decision, FallbackChannel, Rule, Step
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory, rule_with_steps

# The shipped rules, as migrations install them: a transactional test run before in the same
# process (another file, under xdist) flushes them away.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_rules")]


def event_for(message, status: str, kind: str = OutboxEvent.Kind.STATUS_CHANGED) -> OutboxEvent:
    return OutboxEvent.objects.create(message=message, kind=kind, status=status, created_at=timezone.now())


def failed(reason: str, error_class: str, **fields):
    return MessageFactory(status=Status.UNDELIVERED, reason=reason, error_class=error_class, **fields)


def resend_of(original, status: str = Status.UNDELIVERED, **fields):
    fields = {"connection": original.connection, "reason": "absent_subscriber", "error_class": "temporary", **fields}
    return MessageFactory(chain_root=original, status=status, body="", **fields)


def states(decisions: list[Decision]) -> list[tuple[str, str, str]]:
    return [(d.action, d.state, d.skip_reason) for d in decisions]


def test_the_default_rule_set_ships_as_escalations():
    shipped = [(rule.name, [step.action for step in rule.steps.all()]) for rule in Rule.objects.order_by("position")]
    assert shipped == [
        ("Delivered: tell the product", ["notify"]),
        ("No receipt: tell the product", ["notify"]),
        ("Number or opt-out problem: never retry, tell the product", ["notify"]),
        ("Route problem: tell the product", ["notify"]),  # never a retry on a connection it cannot name
        ("Temporary failure: retry on the same connection with backoff", ["retry_same"]),
        ("Other permanent failure: tell the product", ["notify"]),
    ]


def test_a_temporary_failure_schedules_a_retry_after_the_steps_first_wait():
    message = failed("absent_subscriber", "temporary")
    now = timezone.now()
    assert states(decide(event_for(message, "undelivered"), now=now)) == [("retry_same", "scheduled", "")]
    attempt = Attempt.objects.get()
    assert (attempt.number, attempt.chain_root, attempt.due_at) == (1, message, now + timedelta(seconds=60))
    assert attempt.idempotency_key == f"retry-of-message-{message.pk}"
    assert attempt.step == Step.objects.get(action="retry_same")


def test_opt_outs_and_number_problems_are_never_retried_and_the_product_is_told():
    for reason in ("opted_out", "unknown_subscriber", "landline"):
        assert states(decide(event_for(failed(reason, "permanent"), "undelivered"))) == [("notify", "recorded", "")]
    assert not Attempt.objects.exists()


def test_the_france_login_otp_escalation_retries_twice_then_reroutes_then_falls_back_then_tells_the_product():
    backup = ConnectionFactory(slug="backup")
    email = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps(
        "Login OTP, France",
        {"action": "retry_same", "count": 2, "delays": [30, 120]},
        {"action": "retry_other", "count": 1, "target_connection": backup},
        {"action": "fallback", "fallback_channel": email},
        {"action": "notify"},
        flows=["login-otp"], countries=["FR"], error_classes=["temporary"], deadline_seconds=600,
    )  # fmt: skip
    otp = failed("absent_subscriber", "temporary", flow="login-otp", country="FR", fallback_email="u@example.com")
    now = timezone.now()
    decide(event_for(otp, "undelivered"), now=now)
    first = resend_of(otp, flow="login-otp", country="FR")
    decide(event_for(first, "undelivered"), now=now)
    second = resend_of(otp, flow="login-otp", country="FR")
    decide(event_for(second, "undelivered"), now=now)
    third = resend_of(otp, flow="login-otp", country="FR", connection=backup)
    decide(event_for(third, "undelivered"), now=now)
    plan = [(a.action, a.connection_id, a.channel_id, a.due_at - now) for a in Attempt.objects.order_by("id")]
    assert plan == [
        ("retry_same", otp.connection_id, None, timedelta(seconds=30)),
        ("retry_same", otp.connection_id, None, timedelta(seconds=120)),
        ("retry_other", backup.pk, None, timedelta(0)),
        ("fallback", None, email.pk, timedelta(0)),
    ]
    assert [a.number for a in Attempt.objects.order_by("id")] == [1, 2, 3, 4]


def test_a_fallback_sent_moves_on_to_telling_the_product_that_the_sms_failed(settings):
    from retries.attempts import attempts_run_due

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    email = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps("OTP", {"action": "fallback", "fallback_channel": email}, {"action": "notify"}, flows=["otp"])
    otp = failed("absent_subscriber", "temporary", flow="otp", fallback_email="u@example.com", body="Code 1234")
    decide(event_for(otp, "undelivered"))
    assert attempts_run_due() == 1
    assert Attempt.objects.get().outcome == "succeeded"
    after = Decision.objects.get(after_attempt__isnull=False)
    assert (after.action, after.state, after.step.position) == ("notify", "recorded", 2)
    assert list(FeedEvent.objects.order_by("id").values_list("type", flat=True)) == [
        "message.retry_scheduled", "message.fallback_sent", "message.failed",
    ]  # fmt: skip


def test_a_step_the_message_lacks_input_for_is_skipped_with_the_reason_and_the_next_one_runs():
    email = FallbackChannel.objects.create(slug="email", kind="email", config={"from_email": "otp@acme.test"})
    rule_with_steps(
        "OTP", {"action": "fallback", "fallback_channel": email}, {"action": "retry_same", "delays": [0]},
        flows=["otp"],
    )  # fmt: skip
    otp = failed("absent_subscriber", "temporary", flow="otp", body="Code 1234")  # no fallback address
    decisions = decide(event_for(otp, "undelivered"))
    assert states(decisions) == [("fallback", "skipped", "missing_input"), ("retry_same", "scheduled", "")]
    assert "no fallback e-mail address" in decisions[0].why


def test_a_step_without_its_target_is_skipped_once_and_says_so():
    rule_with_steps("Route", {"action": "retry_other"}, {"action": "notify"}, reasons=["unroutable"])
    message = failed("unroutable", "permanent")
    decisions = decide(event_for(message, "rejected"))
    assert states(decisions) == [("retry_other", "skipped", "no_target"), ("notify", "recorded", "")]
    assert "no other connection" in decisions[0].why


def test_when_every_step_is_spent_the_product_hears_the_failure_is_final():
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    original = failed("absent_subscriber", "temporary")
    failing = original
    for _ in range(3):  # each attempt's resend fails again
        decide(event_for(failing, "undelivered"))
        failing = resend_of(original)
    assert states(decide(event_for(failing, "undelivered"))) == [("none", "skipped", "max_attempts")]
    assert Attempt.objects.count() == 3
    assert FeedEvent.objects.filter(type="message.failed").count() == 1


def test_nothing_more_is_sent_past_the_deadline():
    message = failed("absent_subscriber", "temporary", submitted_at=timezone.now() - timedelta(minutes=59, seconds=30))
    decisions = decide(event_for(message, "undelivered"))
    assert states(decisions) == [("retry_same", "skipped", "deadline")]
    assert "deadline" in decisions[0].why
    assert not Attempt.objects.exists()


def test_delivered_anywhere_in_the_chain_cancels_scheduled_attempts():
    original = failed("absent_subscriber", "temporary")
    decide(event_for(original, "undelivered"))
    resend = resend_of(original, status=Status.DELIVERED)
    assert states(decide(event_for(resend, "delivered"))) == [("notify", "recorded", "")]
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.decision.state) == ("cancelled", Decision.State.CANCELLED)


def test_a_late_failure_after_delivery_schedules_nothing():
    message = MessageFactory(status=Status.DELIVERED, reason="absent_subscriber", error_class="temporary")
    assert states(decide(event_for(message, "undelivered"))) == [("none", "skipped", "chain_delivered")]


def test_a_second_failure_status_of_the_same_message_takes_no_second_step():
    message = failed("absent_subscriber", "temporary")
    first, second = decide(event_for(message, "failed")), decide(event_for(message, "undelivered"))
    assert (states(first), states(second)) == (
        [("retry_same", "scheduled", "")],
        [("none", "skipped", "already_retried")],
    )
    assert Attempt.objects.count() == 1


def test_a_chain_stays_with_the_rule_that_took_its_first_failure():
    backup = ConnectionFactory(slug="backup")
    rule = rule_with_steps("EU", {"action": "retry_other", "target_connection": backup, "count": 2}, flows=["otp"])
    original = failed("absent_subscriber", "temporary", flow="otp")
    decide(event_for(original, "undelivered"))
    resend = resend_of(original, flow="otp", connection=backup)  # another connection, same chain
    [decision] = decide(event_for(resend, "undelivered"))
    assert (decision.rule, decision.state) == (rule, "scheduled")


def test_an_event_processed_twice_is_decided_once():
    message = failed("absent_subscriber", "temporary")
    event = event_for(message, "undelivered")
    assert outbox_process(event.pk) is True
    assert outbox_process(event.pk) is False
    assert Decision.objects.filter(outbox_event=event).count() == 1
    assert Attempt.objects.count() == 1


def test_a_missing_receipt_is_a_decision_too():
    message = MessageFactory(status=Status.SENT)
    [decision] = decide(event_for(message, "sent", kind=OutboxEvent.Kind.NO_RECEIPT))
    assert (decision.action, decision.rule.name) == ("notify", "No receipt: tell the product")


def test_rule_conditions_narrow_what_matches():
    Rule.objects.all().delete()
    rule = rule_with_steps("FR OTP", {"action": "alert"}, flows=["login-otp"], countries=["FR"])
    assert decide(event_for(MessageFactory(flow="login-otp", country="FR"), "sent"))[0].rule == rule
    assert decide(event_for(MessageFactory(flow="login-otp", country="GB"), "sent"))[0].rule is None
    rule.connections.add(ConnectionFactory())
    assert decide(event_for(MessageFactory(flow="login-otp", country="FR"), "sent"))[0].rule is None


@pytest.mark.parametrize(("index", "expected"), [(0, 60), (1, 300), (2, 900), (5, 900)])
def test_a_steps_waits_take_their_entry_and_repeat_the_last(index, expected):
    assert Step(delays=[60, 300, 900]).delay_before(index) == expected
    assert Step(delays=[]).delay_before(index) == 0


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
        ({"flows": "login-otp"}, "flows"),
    ],
)
def test_rules_refuse_what_cannot_match_with_a_reason(fields, field):
    with pytest.raises(ValidationError) as refused:
        Rule(name="r", **fields).full_clean()
    assert field in refused.value.message_dict


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"delays": [60, "soon"]}, "delays"),
        ({"count": 0}, "count"),
        ({"count": 11}, "count"),
        ({"delays": [-1]}, "delays"),
    ],
)
def test_steps_refuse_waits_and_counts_out_of_range(fields, field):
    rule = Rule.objects.create(name="r")
    with pytest.raises(ValidationError) as refused:
        Step(rule=rule, action="retry_same", **fields).full_clean()
    assert field in refused.value.message_dict


def test_a_wanted_retry_that_cannot_happen_tells_the_product_and_a_needless_one_does_not():
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    rule_with_steps("Route", {"action": "retry_other"}, reasons=["unroutable"])
    unroutable = failed("unroutable", "permanent")
    decide(event_for(unroutable, "rejected"))  # no target, nothing after it: the failure is final
    delivered = MessageFactory(status=Status.DELIVERED, reason="absent_subscriber", error_class="temporary")
    decide(event_for(delivered, "undelivered"))  # already delivered: nothing is owed
    assert list(FeedEvent.objects.values_list("message", "type")) == [(unroutable.pk, "message.failed")]


def test_an_action_an_app_registers_is_chosen_and_run_like_the_shipped_ones():
    from alerts.models import Alert
    from retries.actions.registry import action_choices

    assert ("alert", "Raise a support alert") in action_choices()
    rule_with_steps("tell support", {"action": "alert"}, reasons=["blocked_content"])
    [decision] = decide(event_for(failed("blocked_content", "permanent"), "rejected"))
    assert (decision.action, decision.state) == ("alert", "recorded")
    assert Alert.objects.get().decision == decision
