"""Providers that cannot sign: a per-connection token, optional source allowlist, and the
token never reaching the logs."""

from __future__ import annotations

import base64
import ipaddress
import logging

import pytest
from django.test import override_settings

from dlrconsole.log_filters import RedactSecrets
from receipts.providers.base import SignatureError, TokenAuthenticated, WebhookRequest
from tests.factories import ConnectionFactory

TOKEN = "tok-0123456789abcdef"


def request(**kw) -> WebhookRequest:
    headers = kw.pop("headers", {})
    return WebhookRequest(method="POST", url="https://dlr.example.com/hooks/x/", headers=headers, body=b"", **kw)


@pytest.mark.parametrize(
    "presented",
    [
        {"path_token": TOKEN},
        {"headers": {"x-dlr-token": TOKEN}},
        {"headers": {"authorization": f"Bearer {TOKEN}"}},
        {"headers": {"authorization": "Basic " + base64.b64encode(f"infobip:{TOKEN}".encode()).decode()}},
    ],
)
def test_token_is_accepted_wherever_the_provider_can_put_it(presented):
    # Basic credentials match a secret written as user:password; the others the bare token.
    TokenAuthenticated().verify(request(**presented), ["old-token", TOKEN, f"infobip:{TOKEN}"])


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        ({}, "missing token"),
        ({"path_token": "wrong"}, "does not match"),
        ({"headers": {"authorization": "Basic !!!not-base64"}}, "missing token"),
        ({"headers": {"authorization": f"Digest {TOKEN}"}}, "missing token"),
    ],
)
def test_missing_or_wrong_token_is_refused(presented, reason):
    with pytest.raises(SignatureError, match=reason):
        TokenAuthenticated().verify(request(**presented), [TOKEN])


def test_no_configured_token_refuses_everything():
    with pytest.raises(SignatureError):
        TokenAuthenticated().verify(request(path_token=""), [])


@pytest.mark.django_db
@pytest.mark.parametrize(("remote", "allowed"), [("203.0.113.7", True), ("198.51.100.1", False)])
def test_source_allowlist_is_enforced_before_anything_is_read(client, remote, allowed):
    connection = ConnectionFactory(allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    response = client.post(
        f"/hooks/{connection.slug}/", data=b"{}", content_type="application/json", REMOTE_ADDR=remote
    )
    assert response.status_code == (401 if allowed else 403)  # allowed, then refused for its missing signature


@pytest.mark.django_db
def test_allowlist_behind_a_trusted_proxy_uses_the_forwarded_address(client):
    connection = ConnectionFactory(allowed_ips=["203.0.113.7/32"])
    with override_settings(DLR_TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")]):
        forwarded = client.post(
            f"/hooks/{connection.slug}/",
            data=b"{}",
            content_type="application/json",
            REMOTE_ADDR="10.1.2.3",
            HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.7",
        )
        spoofed = client.post(
            f"/hooks/{connection.slug}/",
            data=b"{}",
            content_type="application/json",
            REMOTE_ADDR="10.1.2.3",
            HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.9",
        )
    assert (forwarded.status_code, spoofed.status_code) == (401, 403)


def test_hook_tokens_are_redacted_from_log_lines():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Unauthorized: %s", ("/hooks/infobip-eu/s3cr3t-token/",), None
    )
    RedactSecrets().filter(record)
    assert record.getMessage() == "Unauthorized: /hooks/infobip-eu/…/"


def test_request_loggers_go_through_the_redacting_handler(settings):
    for name in ("django", "django.server"):
        handlers = settings.LOGGING["loggers"][name]["handlers"]
        assert all("redact" in settings.LOGGING["handlers"][h]["filters"] for h in handlers)
