"""Management commands are non-interactive and refuse bad input with a reason."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dlrconsole.accounts.models import UserAPIKey
from receipts.models import Connection
from tests.factories import GENERIC_SECRET

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_connection_prints_its_webhook_url(settings):
    settings.PUBLIC_BASE_URL = "https://dlr.example.com"
    output = run("create_connection", "twilio-eu", "--provider", "twilio", "--secret", "tok-1", "--secret", "tok-2")
    assert "Webhook URL: https://dlr.example.com/hooks/twilio-eu/" in output
    assert "tok-1" not in output
    assert Connection.objects.get(slug="twilio-eu").secrets == ["tok-1", "tok-2"]


def test_create_connection_can_generate_a_standard_webhooks_secret():
    output = run("create_connection", "generic", "--provider", "standard-webhooks", "--generate-secret")
    secret = Connection.objects.get(slug="generic").secrets[0]
    assert secret.startswith("whsec_")
    assert secret in output  # shown once, so it can be configured at the sender


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--provider", "twilio"], "--secret"),
        (["--provider", "standard-webhooks", "--secret", "not base64!"], "base64"),
        (["--provider", "standard-webhooks", "--secret", "whsec_c2hvcnQ="], "24 to 64 bytes"),
        (["--provider", "twilio", "--secret", "x", "--public-url", "not a url"], "public_url"),
    ],
)
def test_create_connection_refuses_bad_input_with_a_reason(args, reason):
    with pytest.raises(CommandError, match=reason):
        run("create_connection", "bad", *args)
    assert not Connection.objects.exists()


def test_create_connection_refuses_a_taken_slug():
    run("create_connection", "taken", "--provider", "standard-webhooks", "--secret", GENERIC_SECRET)
    with pytest.raises(CommandError, match="slug"):
        run("create_connection", "taken", "--provider", "standard-webhooks", "--secret", GENERIC_SECRET)


def test_create_api_token_creates_the_user_and_a_new_key_each_time():
    first = run("create_api_token", "product-backend", "--create-user").strip()
    again = run("create_api_token", "product-backend").strip()
    assert first != again
    assert UserAPIKey.objects.filter(user__username="product-backend").count() == 2


def test_create_api_token_for_a_missing_user_needs_the_flag():
    with pytest.raises(CommandError, match="--create-user"):
        run("create_api_token", "nobody")


def test_create_connection_takes_provider_options_and_allowed_sources():
    run(
        "create_connection",
        "vonage-main",
        "--provider",
        "vonage",
        "--secret",
        "sig-secret-0001",
        "--option",
        "signature_method=sha256",
        "--allow-ip",
        "203.0.113.0/24",
    )
    connection = Connection.objects.get(slug="vonage-main")
    assert (connection.options, connection.allowed_ips) == ({"signature_method": "sha256"}, ["203.0.113.0/24"])


@pytest.mark.parametrize(
    ("args", "reason"),
    [(["--option", "novalue"], "KEY=VALUE"), (["--allow-ip", "not-a-network"], "allowed_ips")],
)
def test_create_connection_refuses_bad_options_with_a_reason(args, reason):
    with pytest.raises(CommandError, match=reason):
        run("create_connection", "bad", "--provider", "twilio", "--secret", "tok-1", *args)
    assert not Connection.objects.exists()
