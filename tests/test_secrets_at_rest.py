"""Secrets are encrypted at rest: the database holds Fernet tokens for connection secrets,
send-API credentials, fallback-channel settings and feed signing secrets; the application reads
them back as they were; keys rotate without losing one; a missing key fails loudly."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from dlrconsole import roles
from dlrconsole.lib.secrets_at_rest import UnreadableSecret
from receipts.models import Connection
from retries.feed.models import ProductEndpoint
from retries.models import ConnectionSender, FallbackChannel
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory, user_in_role

pytestmark = pytest.mark.django_db

CREDENTIAL = "sk_live_credential_0123456789"


def stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test constants
        return str(cursor.fetchone()[0])


@pytest.fixture
def secrets_everywhere() -> dict[str, object]:
    conn = ConnectionFactory(secrets=[GENERIC_SECRET, "whsec_" + "b" * 40])
    sender = ConnectionSender.objects.create(
        connection=conn, kind="generic-http", sender_id="ACME",
        config={"url": "http://127.0.0.1:9/send", "token": CREDENTIAL, "read_timeout": 5},
    )  # fmt: skip
    channel = FallbackChannel.objects.create(
        slug="hook", kind="generic-webhook", config={"url": "http://127.0.0.1:9/hook", "secret": GENERIC_SECRET}
    )
    endpoint = ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    return {"connection": conn, "sender": sender, "channel": channel, "endpoint": endpoint}


def test_the_database_holds_tokens_and_the_application_reads_the_secrets_back(secrets_everywhere):
    conn, sender = secrets_everywhere["connection"], secrets_everywhere["sender"]
    channel, endpoint = secrets_everywhere["channel"], secrets_everywhere["endpoint"]
    raw = [
        stored("receipts_connection", "secrets", conn.pk),
        stored("retries_connectionsender", "config", sender.pk),
        stored("retries_fallbackchannel", "config", channel.pk),
        stored("feed_productendpoint", "secret", endpoint.pk),
    ]
    for value in raw:
        assert value.startswith("gAAAAA")
        assert GENERIC_SECRET not in value
        assert CREDENTIAL not in value
    assert Connection.objects.get(pk=conn.pk).secrets == [GENERIC_SECRET, "whsec_" + "b" * 40]
    # JSON comes back as it went in: numbers stay numbers.
    assert ConnectionSender.objects.get(pk=sender.pk).config["read_timeout"] == 5
    assert FallbackChannel.objects.values_list("config", flat=True).get(pk=channel.pk)["secret"] == GENERIC_SECRET
    assert ProductEndpoint.objects.get(pk=endpoint.pk).secret == GENERIC_SECRET


def test_the_history_of_a_send_configuration_is_encrypted_too(secrets_everywhere):
    sender = secrets_everywhere["sender"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM retries_historicalconnectionsender WHERE id = %s", [sender.pk])
        (token,) = cursor.fetchone()
    assert token.startswith("gAAAAA")
    assert sender.history.get().config["token"] == "(secret)"


def test_a_new_key_is_rotated_in_without_losing_a_secret(settings, secrets_everywhere):
    old = settings.DLR_SECRETS_KEYS[0]
    new = Fernet.generate_key().decode()
    endpoint = secrets_everywhere["endpoint"]
    before = stored("feed_productendpoint", "secret", endpoint.pk)
    with override_settings(DLR_SECRETS_KEYS=[new, old]):
        call_command("rotate_secrets_key", stdout=io.StringIO())
        assert stored("feed_productendpoint", "secret", endpoint.pk) != before
    with override_settings(DLR_SECRETS_KEYS=[new]):  # the old key dropped
        assert ProductEndpoint.objects.get(pk=endpoint.pk).secret == GENERIC_SECRET
        assert Connection.objects.get(pk=secrets_everywhere["connection"].pk).secrets[0] == GENERIC_SECRET
        assert ConnectionSender.objects.get(pk=secrets_everywhere["sender"].pk).config["token"] == CREDENTIAL


def test_a_secret_whose_key_is_gone_fails_loudly_rather_than_being_used_as_garbage(secrets_everywhere):
    with override_settings(DLR_SECRETS_KEYS=[Fernet.generate_key().decode()]), pytest.raises(UnreadableSecret):
        ProductEndpoint.objects.get(pk=secrets_everywhere["endpoint"].pk)


def test_a_secret_read_before_its_key_was_dropped_is_not_read_from_memory_after(settings, secrets_everywhere):
    # Decrypted tokens are remembered (they are read with every batch); dropping the key must
    # still make the next read fail, not hand back what was decrypted under it.
    pk, old, new = secrets_everywhere["endpoint"].pk, settings.DLR_SECRETS_KEYS[0], Fernet.generate_key().decode()
    with override_settings(DLR_SECRETS_KEYS=[new, old]):
        assert ProductEndpoint.objects.get(pk=pk).secret == GENERIC_SECRET
    assert ProductEndpoint.objects.get(pk=pk).secret == GENERIC_SECRET
    with override_settings(DLR_SECRETS_KEYS=[new]), pytest.raises(UnreadableSecret):
        ProductEndpoint.objects.get(pk=pk)


def test_searching_messages_never_decrypts_the_connections_secrets(secrets_everywhere):
    message = MessageFactory(connection=secrets_everywhere["connection"])
    support = Client()
    support.force_login(user_in_role(roles.SUPPORT))
    # With the key gone, reading a secret fails (above); a search and the API's list do not read them.
    with override_settings(DLR_SECRETS_KEYS=[Fernet.generate_key().decode()]):
        page = support.get("/console/messages/")
        listed = support.get("/api/v1/messages/")
    assert page.status_code == 200
    assert message.provider_message_id in page.content.decode()
    assert listed.status_code == 200
