"""Logs keep no secret and no full phone number: the main flows run with DEBUG logging through
the handler production configures (settings.LOGGING, with its redacting filter), and no line
it writes holds a connection secret, a path token, a sender's credential, a feed secret, an
API token, a password, a session id or the recipient's number.

SQL is left at the WARNING level settings give django.db.backends: its DEBUG lines are the
statements with their parameters, which hold everything, and are never turned on.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dlrconsole import roles
from dlrconsole.log_filters import RedactSecrets
from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from retries.attempts import attempts_run_due
from retries.feed.models import FeedDelivery, ProductEndpoint
from retries.feed.services import feed_deliver_due
from retries.models import ConnectionSender
from tests.factories import (
    GENERIC_SECRET,
    TWILIO_TOKEN,
    ConnectionFactory,
    TwilioConnectionFactory,
    api_client_for,
    user_in_role,
)
from tests.product_endpoint import ProductEndpointServer
from tests.send_api import FakeGateway
from tests.webhooks import generic_body, generic_headers, twilio_form, twilio_signed

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"
SPELLINGS = (NUMBER, NUMBER[1:], "0033612345678", "0612345678", "%2B33612345678")
PATH_TOKEN = "tok-in-the-path-7d1c9e5a3b"
HEADER_TOKEN = "tok-in-a-header-2f8a6c4e1d"
SENDER_TOKEN = "sender-credential-5b3e9a1c7f"
FEED_SECRET = "whsec_" + base64.b64encode(b"feed-secret-for-the-log-scan-01").decode()
PASSWORD = "Correct-Horse-Battery-77"


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What the configured console handler writes, at DEBUG for every logger but SQL."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if any(isinstance(f, RedactSecrets) for f in h.filters))
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    previous_stream = handler.setStream(written)
    loggers = [root, logging.getLogger("django"), logging.getLogger("django.server")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield written
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
    handler.setStream(previous_stream)


def webhooks(client: Client, generic, twilio, infobip) -> None:
    """Several providers, accepted and refused, tokens in the path and in headers."""
    body = generic_body("gw-1", "undelivered", error_code="27", recipient=NUMBER)
    headers = generic_headers(generic, body)
    client.post(f"/hooks/{generic.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers)
    forged = generic_headers(generic, body, secret="whsec_" + base64.b64encode(b"x" * 32).decode())
    client.post(f"/hooks/{generic.slug}/", data=body, content_type=forged.pop("content-type"), headers=forged)
    url = f"http://testserver/hooks/{twilio.slug}/"
    form, signed = twilio_signed(twilio, url, twilio_form("SM1", "undelivered", To=NUMBER, ErrorCode="30003"))
    client.post(f"/hooks/{twilio.slug}/", data=form, content_type=signed.pop("content-type"), headers=signed)
    status = {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"}
    report = {"results": [{"messageId": "ib-1", "to": NUMBER[1:], "status": status}]}
    for token in (PATH_TOKEN, "a-wrong-token-in-the-path"):
        client.post(f"/hooks/{infobip.slug}/{token}/", data=json.dumps(report), content_type="application/json")
    client.post(
        f"/hooks/{infobip.slug}/",
        data="{not json",
        content_type="application/json",
        headers={"x-dlr-token": HEADER_TOKEN},
    )
    client.post(f"/hooks/no-such-connection/{PATH_TOKEN}/", data=b"{}", content_type="application/json")


def retried_and_told(generic, gateway: FakeGateway, product_endpoint: ProductEndpointServer) -> Message:
    """A temporary failure decided into a retry through the send API, the product told."""
    ConnectionSender.objects.create(
        connection=generic, kind="generic-http", config={"url": gateway.url, "token": SENDER_TOKEN}
    )
    ProductEndpoint.objects.create(name="product", url=product_endpoint.url, secret=FEED_SECRET)
    message = Message.objects.get(provider_message_id="gw-1")
    for event in OutboxEvent.objects.filter(processed_at__isnull=True):
        outbox_process(event.pk)
    assert attempts_run_due(now=timezone.now() + timedelta(hours=1)) == 1
    feed_deliver_due(timezone.now() + timedelta(hours=1))
    assert FeedDelivery.objects.filter(status="delivered").exists()
    return message


def sign_in_search_and_resend(message: Message) -> str:
    """A support agent signs in (after one wrong password), searches the number, resends."""
    user = user_in_role(roles.SUPPORT, "agent", password=PASSWORD)
    assert user.check_password(PASSWORD)
    console = Client()
    console.post(reverse("login"), {"username": "agent", "password": PASSWORD + "-wrong"})
    assert console.post(reverse("login"), {"username": "agent", "password": PASSWORD}).status_code == 302
    assert console.get(reverse("console:search"), {"q": NUMBER}).status_code == 200
    console.get(reverse("console:search"), {"recipient": NUMBER, "submitted_after": "2026-01-01T00:00:00+16:00"})
    page = console.get(reverse("console:resend", args=[message.pk])).content.decode()
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', page)
    assert key
    console.post(reverse("console:resend", args=[message.pk]), {"request_key": key[1]})
    attempts_run_due(now=timezone.now() + timedelta(hours=1))
    return console.cookies["sessionid"].value


def test_no_secret_and_no_full_number_reaches_the_logs(
    client, log_text, gateway, product, default_rules, django_user_model
):
    generic = ConnectionFactory(slug="gateway")
    twilio = TwilioConnectionFactory(slug="twilio-eu")
    infobip = ConnectionFactory(slug="infobip-eu", provider="infobip", secrets=[PATH_TOKEN, HEADER_TOKEN])
    api = api_client_for(user_in_role(roles.PRODUCT, "product"))
    api_token = api._credentials["HTTP_AUTHORIZATION"].split()[1]  # type: ignore[attr-defined]
    registration = {"connection": generic.slug, "provider_message_id": "gw-1", "to": NUMBER, "body": "code 1234"}
    assert api.post("/api/v1/messages/", registration, format="json").status_code == 201
    api.post("/api/v1/messages/", {**registration, "to": "+3361234567800000"}, format="json")
    api.get("/api/v1/messages/", {"recipient": NUMBER, "submitted_after": "2026-01-01T00:00:00+16:00"})
    webhooks(client, generic, twilio, infobip)
    message = retried_and_told(generic, gateway, product)
    session_id = sign_in_search_and_resend(message)

    text = log_text.getvalue()
    assert "webhook" in text  # the scan read real lines
    secrets = {
        "connection secret": GENERIC_SECRET,
        "Twilio auth token": TWILIO_TOKEN,
        "token in a path": PATH_TOKEN,
        "token in a header": HEADER_TOKEN,
        "sender credential": SENDER_TOKEN,
        "feed secret": FEED_SECRET,
        "feed secret's key": FEED_SECRET.removeprefix("whsec_"),
        "API token": api_token,
        "password": PASSWORD,
        "session id": session_id,
    }
    leaked = {what: line for what, value in secrets.items() for line in text.splitlines() if value in line}
    assert not leaked, leaked
    numbers = [line for line in text.splitlines() if any(spelling in line for spelling in SPELLINGS)]
    assert not numbers, numbers


def test_a_line_keeps_a_numbers_ends_and_drops_a_path_token():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "GET %s", ("/hooks/a/tok/?to=%2B33612345678 +447700900123",), None
    )
    RedactSecrets().filter(record)
    assert record.getMessage() == "GET /hooks/a/…/?to=%2B336•••678 +447•••123"


def test_template_context_dumps_are_dropped():
    record = logging.LogRecord("django.template", logging.DEBUG, __file__, 1, "Failed lookup in %s", ("ctx",), None)
    assert RedactSecrets().filter(record) is False
