"""A resend asked for from the console: an attempt like any retry, once per confirmation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from retries.attempts import attempts_run_due
from retries.feed.models import FeedEvent
from retries.models import Attempt
from retries.resend import ResendRefused, resend_refusal, resend_request
from tests.factories import MessageFactory
from tests.send_api import FakeGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return get_user_model().objects.create_user(username="agent")


def test_a_resend_runs_at_once_and_names_who_asked(gateway: FakeGateway, agent):
    message = MessageFactory(body="Your code is 777")
    gateway.configure(message.connection)
    attempt = resend_request(message=message, user=agent, request_key="form-1")
    assert attempt.decision.requested_by == agent
    assert attempt.decision.why == "resend requested by agent"
    assert attempts_run_due() == 1
    attempt.refresh_from_db()
    assert attempt.outcome == "succeeded"
    assert attempt.resend.chain_root == message
    assert list(FeedEvent.objects.values_list("type", flat=True)) == ["message.retry_scheduled"]


def test_the_same_confirmation_twice_resends_once(gateway: FakeGateway, agent):
    message = MessageFactory(body="hi")
    gateway.configure(message.connection)
    first = resend_request(message=message, user=agent, request_key="form-1")
    again = resend_request(message=message, user=agent, request_key="form-1")
    assert first.pk == again.pk
    assert Attempt.objects.count() == 1


def test_a_second_resend_is_refused_while_one_is_pending(gateway: FakeGateway, agent):
    message = MessageFactory(body="hi")
    gateway.configure(message.connection)
    resend_request(message=message, user=agent, request_key="form-1")
    with pytest.raises(ResendRefused, match="already scheduled or running"):
        resend_request(message=message, user=agent, request_key="form-2")


def test_a_resend_of_a_resend_joins_the_original_chain(gateway: FakeGateway, agent):
    original = MessageFactory(body="hi")
    gateway.configure(original.connection)
    resend_request(message=original, user=agent, request_key="a")
    attempts_run_due()
    resent = Attempt.objects.get().resend
    second = resend_request(message=resent, user=agent, request_key="b")
    assert (second.chain_root, second.number) == (original, 2)


@pytest.mark.parametrize(
    ("body", "configured", "reason"),
    [("", True, "no message text is kept"), ("hi", False, "has no send API configured")],
)
def test_a_resend_that_cannot_happen_is_refused_with_the_reason(gateway: FakeGateway, agent, body, configured, reason):
    message = MessageFactory(body=body)
    if configured:
        gateway.configure(message.connection)
    with pytest.raises(ResendRefused, match=reason):
        resend_refusal(message)
    with pytest.raises(ResendRefused, match=reason):
        resend_request(message=message, user=agent)
    assert not Attempt.objects.exists()
