"""A fallback channel's test send from the console goes through its real sender (here a
signed webhook to a real local HTTP server) and keeps the outcome on the channel."""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse
from django.utils import timezone

from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from retries.models import FallbackChannel
from retries.policy_services import channel_test_send
from tests.console.conftest import client_as
from tests.senders.http_server import ScriptedServer

pytestmark = pytest.mark.django_db
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_a_test_send_through_a_webhook_channel_keeps_its_success(provider_api: ScriptedServer, admin_user) -> None:
    channel = FallbackChannel.objects.create(slug="push", kind="generic-webhook",
                                             config={"url": provider_api.url, "secret": SECRET})  # fmt: skip
    provider_api.reply(200, {"private": "reply text"})
    channel_test_send(channel=channel, to="+33612345678", user=admin_user, now=timezone.now())
    channel.refresh_from_db()
    assert channel.test_ok is True
    assert channel.tested_by == admin_user
    assert channel.test_summary == "sent: HTTP 200"
    assert provider_api.requests[0].json()["data"]["to"] == "+33612345678"


def test_a_failed_test_send_keeps_the_reason_never_the_reply(provider_api: ScriptedServer, admin_user) -> None:
    channel = FallbackChannel.objects.create(slug="push", kind="generic-webhook",
                                             config={"url": provider_api.url, "secret": SECRET})  # fmt: skip
    provider_api.reply(403, {"error": "secret-looking reply body"})
    channel_test_send(channel=channel, to="+33612345678", user=admin_user, now=timezone.now())
    channel.refresh_from_db()
    assert channel.test_ok is False
    assert channel.test_summary == "failed: HTTP 403"
    assert "reply body" not in channel.test_summary


def test_the_consoles_test_button_sends_and_the_audit_log_names_who(provider_api: ScriptedServer) -> None:
    channel = FallbackChannel.objects.create(slug="push", kind="generic-webhook",
                                             config={"url": provider_api.url, "secret": SECRET})  # fmt: skip
    provider_api.reply(204, b"")
    admin = client_as(roles.ADMIN)
    response = admin.post(reverse("console:channel-test", args=[channel.pk]), {"to": "+33 6 12 34 56 78"}, follow=True)
    assert "Test sent: HTTP 204" in response.content.decode()
    assert provider_api.requests[0].json()["data"]["to"] == "+33612345678"
    entry = AuditEntry.objects.filter(model="retries.fallbackchannel", object_id=str(channel.pk)).latest("id")
    assert entry.username == "admin-user"
    assert "test_summary" in str(entry.changes)
