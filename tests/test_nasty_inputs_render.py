"""Whatever the webhook accepts, every page and API answer shows: each provider's nastiest
accepted receipt (ids as long as their column, right-to-left marks, combining characters,
zero-width joiners, emoji, text that looks like HTML and JavaScript, nesting as deep as the
webhook takes, many events in one request) is posted through the real, signed webhook, then
the message page, the search page, the CSV export and the API list and detail must answer
200 with that text escaped, never 500.

AWS SNS is left out: its receipts verify only against a certificate served from an SNS host
(tests/providers/test_aws_sns.py stands one up); its JSON reaches the same pages as the
others' here.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from django.test import Client

from dlrconsole import roles
from dlrconsole.lib import standard_webhooks
from receipts.models import Connection, Message, Receipt
from receipts.providers import messagebird, plivo, telnyx, twilio
from tests.console.conftest import client_as
from tests.factories import GENERIC_SECRET, TWILIO_TOKEN, ConnectionFactory, api_client_for, user_in_role
from tests.providers.test_messagebird import SECRET as MESSAGEBIRD_SECRET
from tests.providers.test_plivo import TOKEN as PLIVO_TOKEN
from tests.providers.test_telnyx import PRIVATE_KEY as TELNYX_PRIVATE_KEY
from tests.providers.test_telnyx import PUBLIC_KEY as TELNYX_PUBLIC_KEY
from tests.providers.test_vonage import SECRET as VONAGE_SECRET
from tests.providers.test_vonage import sig_for
from tests.providers.token_suite import TOKEN

pytestmark = pytest.mark.django_db

# Right-to-left override and mark, a letter with three combining accents, a zero-width
# joiner inside an emoji sequence, a zero-width space, and markup: no spaces, so that it is one
# token in the providers' text formats too.
ODD = "\u202e<script>alert(1)</script>\u200fe\u0301\u0301\u0301👩\u200d💻\u200b<img/src=x/onerror=alert(2)>'\"&"
MARKUP = ("<script>", "<img/src=x")


def longest(seed: str, limit: int) -> str:
    """`seed` padded to `limit` characters (a column's length)."""
    return (seed + "x" * limit)[:limit]


MESSAGE_ID = longest(ODD, 128)
DESCRIPTION = longest(ODD + " " + ODD, 255)
HTTP = "http://testserver"


def deep(depth: int) -> str:
    """JSON nested `depth` lists deep, written out: encoding it would recurse as deep."""
    return "[" * depth + '"bottom"' + "]" * depth


def post_generic(client: Client, connection: Connection) -> int:
    """Nested as deep as the webhook takes (the JSON parser's limit depends on the stack), with a
    batch of events in the same request."""
    for depth in (990, 960, 930, 900, 850, 800):
        events = [
            {"message_id": MESSAGE_ID, "status": status, "error_code": "1", "error_description": DESCRIPTION}
            for status in ("sent", "undelivered")
        ]
        body = f'{{"type": "message.status", "data": {json.dumps(events)}, "extra": {deep(depth)}}}'.encode()
        msg_id, now = f"msg_{time.monotonic_ns()}", int(time.time())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": standard_webhooks.sign(GENERIC_SECRET, msg_id, now, body),
        }
        response = client.post(
            f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers
        )
        if response.status_code == 200:
            return 200
    pytest.fail("no nesting depth was accepted")


def post_twilio(client: Client, connection: Connection) -> int:
    url = f"{HTTP}/hooks/{connection.slug}/"
    form = {"MessageSid": MESSAGE_ID, "MessageStatus": "undelivered", "ErrorCode": "30003", "ErrorMessage": DESCRIPTION}
    signature = twilio.signature(TWILIO_TOKEN, url, {k: [v] for k, v in form.items()})
    body = urlencode(form).encode()
    return post_form(client, connection, body, {"x-twilio-signature": signature})


def post_infobip(client: Client, connection: Connection) -> int:
    """A batch of 100 reports, the most Infobip sends at once."""
    report = {
        "messageId": MESSAGE_ID,
        "to": "33612345678",
        "doneAt": "2026-11-26T10:01:07.000+0000",
        "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED"},
        "error": {"groupId": 1, "id": 27, "name": ODD, "description": DESCRIPTION, "permanent": False},
        "callbackData": ODD,
    }
    body = json.dumps({"results": [{**report, "bulkId": f"bulk-{n}"} for n in range(100)]}).encode()
    return post_token(client, connection, body, "application/json")


def post_sinch(client: Client, connection: Connection) -> int:
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": MESSAGE_ID,
        "recipient": "+33612345678",
        "code": 402,
        "status": "Failed",
        "at": "2026-11-26T10:05:12.004Z",
        "client_reference": ODD,
    }
    return post_token(client, connection, json.dumps(report).encode(), "application/json")


def post_smpp_text(client: Client, connection: Connection) -> int:
    dates = "submit date:261126100000 done date:261126100512"
    text = f"id:{MESSAGE_ID} sub:001 dlvrd:000 {dates} stat:UNDELIV err:027 Text:{ODD}"
    return post_token(client, connection, text.encode(), "text/plain")


def post_kannel(client: Client, connection: Connection) -> int:
    answer = (
        f"id:{MESSAGE_ID} sub:001 dlvrd:000 submit date:2611261000 done date:2611261001 stat:UNDELIV err:027 text:{ODD}"
    )
    query = urlencode({"id": MESSAGE_ID, "type": "2", "answer": answer, "smsc": ODD, "ts": "1795687260"})
    return client.get(f"/hooks/{connection.slug}/{TOKEN}/?{query}").status_code


def post_telnyx(client: Client, connection: Connection) -> int:
    payload = {
        "id": MESSAGE_ID,
        "record_type": "message",
        "direction": "outbound",
        "to": [{"phone_number": "+33612345678", "status": "delivery_failed"}],
        "text": ODD,
        "errors": [{"code": "40008", "title": ODD, "detail": DESCRIPTION}],
    }
    event = {"event_type": "message.finalized", "id": "evt-1", "occurred_at": "2026-11-26T10:02:15.330+00:00"}
    envelope = {"data": {**event, "payload": payload, "record_type": "event"}}
    body, now = json.dumps(envelope).encode(), int(time.time())
    headers = {"telnyx-signature-ed25519": telnyx.sign(TELNYX_PRIVATE_KEY, now, body), "telnyx-timestamp": str(now)}
    return client.post(
        f"/hooks/{connection.slug}/", data=body, content_type="application/json", headers=headers
    ).status_code


def post_plivo(client: Client, connection: Connection) -> int:
    form = {"MessageUUID": MESSAGE_ID, "Status": "undelivered", "ErrorCode": "30", "To": "+33612345678"}
    body = urlencode(form).encode()
    url = f"{HTTP}/hooks/{connection.slug}/"
    nonce = "12345678901234567890"
    signature = plivo.signature_v3(PLIVO_TOKEN, url, nonce, method="POST", params={k: [v] for k, v in form.items()})
    return post_form(client, connection, body, {"x-plivo-signature-v3": signature, "x-plivo-signature-v3-nonce": nonce})


def post_vonage(client: Client, connection: Connection) -> int:
    fields = {"messageId": MESSAGE_ID, "status": "failed", "err-code": "2", "msisdn": "33612345678",
              "client-ref": ODD, "timestamp": str(int(time.time()))}  # fmt: skip
    body = urlencode({**fields, "sig": sig_for(VONAGE_SECRET, fields, "md5hash")}).encode()
    return post_form(client, connection, body, {})


def post_messagebird(client: Client, connection: Connection) -> int:
    query = urlencode({"id": MESSAGE_ID, "reference": ODD, "recipient": "33612345678", "status": "delivery_failed",
                       "statusReason": DESCRIPTION, "statusErrorCode": "1"})  # fmt: skip
    url = f"{HTTP}/hooks/{connection.slug}/?{query}"
    token = messagebird.sign(MESSAGEBIRD_SECRET, url, b"", now=int(time.time()), jti=f"jti-{time.monotonic_ns()}")
    return client.get(url, headers={"messagebird-signature-jwt": token}).status_code


def post_form(client: Client, connection: Connection, body: bytes, headers: dict[str, str]) -> int:
    content_type = "application/x-www-form-urlencoded"
    return client.post(f"/hooks/{connection.slug}/", data=body, content_type=content_type, headers=headers).status_code


def post_token(client: Client, connection: Connection, body: bytes, content_type: str) -> int:
    return client.post(f"/hooks/{connection.slug}/{TOKEN}/", data=body, content_type=content_type).status_code


PROVIDERS: dict[str, tuple[dict[str, object], Callable[[Client, Connection], int]]] = {
    "standard-webhooks": ({"secrets": [GENERIC_SECRET]}, post_generic),
    "twilio": ({"secrets": [TWILIO_TOKEN]}, post_twilio),
    "infobip": ({"secrets": [TOKEN]}, post_infobip),
    "sinch": ({"secrets": [TOKEN]}, post_sinch),
    "smpp-text": ({"secrets": [TOKEN]}, post_smpp_text),
    "kannel": ({"secrets": [TOKEN]}, post_kannel),
    "telnyx": ({"secrets": [TELNYX_PUBLIC_KEY]}, post_telnyx),
    "plivo": ({"secrets": [PLIVO_TOKEN]}, post_plivo),
    "vonage": ({"secrets": [VONAGE_SECRET], "options": {"signature_method": "md5hash"}}, post_vonage),
    "messagebird": ({"secrets": [MESSAGEBIRD_SECRET]}, post_messagebird),
}


def assert_shown_escaped(response: object, *, html: bool = True) -> str:
    assert response.status_code == 200, response.content[:2000]  # type: ignore[attr-defined]
    text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()  # type: ignore[attr-defined]
    if html:
        assert not any(markup in text for markup in MARKUP)
        assert "&lt;script&gt;" in text
    return text


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_nastiest_accepted_receipt_of_each_provider_renders_everywhere_escaped(client, provider):
    settings, post = PROVIDERS[provider]
    connection = ConnectionFactory(slug=f"nasty-{provider}", provider=provider, **settings)
    product = api_client_for(user_in_role(roles.PRODUCT, "product"))
    registered = product.post(
        "/api/v1/messages/",
        {"connection": connection.slug, "provider_message_id": MESSAGE_ID, "to": "+33612345678",
         "client_reference": longest(ODD, 128), "body": longest(ODD, 1600)},
        format="json",
    )  # fmt: skip
    assert registered.status_code == 201, registered.content
    assert post(client, connection) == 200
    message = Message.objects.get(connection=connection)
    assert Receipt.objects.filter(message=message).exists()

    support, viewer = client_as(roles.SUPPORT), client_as(roles.VIEWER)
    page = assert_shown_escaped(support.get(f"/console/messages/{message.pk}/"))
    assert "e\u0301\u0301\u0301👩\u200d💻" in page
    for who in (support, viewer):
        assert_shown_escaped(who.get("/console/messages/", {"q": MESSAGE_ID}))
        assert_shown_escaped(who.get("/console/messages/", {"q": MESSAGE_ID}, HTTP_HX_REQUEST="true"))
    exported = assert_shown_escaped(support.get("/console/messages/export.csv", {"q": MESSAGE_ID}), html=False)
    assert MESSAGE_ID in [row[3] for row in csv.reader(io.StringIO(exported))]
    listed = product.get("/api/v1/messages/", {"provider_message_id": MESSAGE_ID})
    assert [m["provider_message_id"] for m in listed.json()["results"]] == [MESSAGE_ID]
    detail = product.get(f"/api/v1/messages/{message.pk}/")
    assert detail.status_code == 200
    assert detail.json()["timeline"][-1]["detail"]["raw_body"]
