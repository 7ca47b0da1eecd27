"""Resending from the console: a confirmation step, then a real attempt through a real gateway."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from retries.attempts import attempts_run_due
from retries.models import Attempt
from tests.factories import MessageFactory
from tests.send_api import FakeGateway

pytestmark = pytest.mark.django_db


def _confirmation_key(support: Client, message_pk: int) -> str:
    page = support.get(reverse("console:resend", args=[message_pk])).content.decode()
    match = re.search(r'name="request_key" value="([0-9a-f]{32})"', page)
    assert match, "the confirmation form carries a one-time key"
    return match[1]


def test_the_confirmation_page_asks_before_resending(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(body="Your code is 123456")
    gateway.configure(message.connection)
    response = support.get(reverse("console:resend", args=[message.pk]))
    assert response.status_code == 200
    assert 'data-testid="confirm-resend"' in response.content.decode()
    assert Attempt.objects.count() == 0


def test_confirming_resends_through_the_gateway_and_the_chain_shows_it(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(body="Your code is 123456")
    gateway.configure(message.connection)
    response = support.post(
        reverse("console:resend", args=[message.pk]), {"request_key": _confirmation_key(support, message.pk)}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("console:message", args=[message.pk])
    attempt = Attempt.objects.get()
    assert attempt.decision.requested_by.username == "support-user"
    assert attempts_run_due() == 1
    assert len(gateway.sends) == 1
    page = support.get(response["Location"]).content.decode()
    assert "Resend scheduled: attempt 1" in page
    assert "Resend 1" in page  # the chain lists the new message
    assert "asked by support-user" in page
    attempt.refresh_from_db()
    assert f'href="{reverse("console:message", args=[attempt.resend_id])}"' in page


def test_a_double_posted_confirmation_resends_once(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(body="hi")
    gateway.configure(message.connection)
    key = _confirmation_key(support, message.pk)
    url = reverse("console:resend", args=[message.pk])
    assert support.post(url, {"request_key": key}).status_code == 302
    assert support.post(url, {"request_key": key}).status_code == 302
    assert Attempt.objects.count() == 1


def test_a_message_that_cannot_be_resent_says_why_before_confirmation(support: Client) -> None:
    message = MessageFactory(body="")  # text never kept: nothing to resend
    page = support.get(reverse("console:resend", args=[message.pk])).content.decode()
    assert "cannot be resent: no message text is kept" in page
    assert "confirm-resend" not in page


def test_a_refused_resend_answers_409_with_the_reason(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(body="hi")
    gateway.configure(message.connection)
    url = reverse("console:resend", args=[message.pk])
    support.post(url, {"request_key": _confirmation_key(support, message.pk)})
    response = support.post(url, {"request_key": "f" * 32})
    assert response.status_code == 409
    assert "already scheduled or running" in response.content.decode()
    assert Attempt.objects.count() == 1


def test_a_post_without_the_confirmation_key_is_refused(support: Client) -> None:
    message = MessageFactory(body="hi")
    response = support.post(reverse("console:resend", args=[message.pk]), {"request_key": "<x>"})
    assert response.status_code == 400
    assert Attempt.objects.count() == 0


def test_the_message_page_offers_resend_only_to_roles_that_may(
    support: Client, django_user_model, gateway: FakeGateway
) -> None:
    from django.contrib.auth.models import Permission

    from receipts.models import Receipt

    message = MessageFactory(recipient="+33612345678", body="Your code is 123456")
    gateway.configure(message.connection)
    Receipt.objects.create(
        connection=message.connection, message=message, provider_message_id=message.provider_message_id,
        dedupe_key="r1", provider_status="delivered", status="delivered", received_at=message.submitted_at,
        outcome="applied", raw_body="To=%2B33612345678&MessageStatus=delivered", headers={"x-to": "33612345678"},
    )  # fmt: skip
    assert 'data-testid="resend-button"' in support.get(reverse("console:message", args=[message.pk])).content.decode()
    reader = django_user_model.objects.create_user(username="reader", password="unused")
    reader.user_permissions.add(*Permission.objects.filter(codename__in=["use_console", "view_timeline"]))
    client = Client()
    client.force_login(reader)
    page = client.get(reverse("console:message", args=[message.pk])).content.decode()
    assert "resend-button" not in page
    assert "+336" in page
    assert "•" in page  # no numbers permission: the recipient is masked here too
    assert "12345678" not in page  # ... in the raw receipt and its headers as well
