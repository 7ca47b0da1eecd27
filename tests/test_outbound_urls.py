"""Peer URLs are checked when saved, so an admin learns at once: send APIs and fallback channels
(the models' clean, the admin forms) and product endpoints (the model's field, the admin form);
and checked again on every call (tests/test_outbound.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from retries.feed.models import FeedAttempt, ProductEndpoint
from retries.feed.services import feed_deliver_due, feed_publish
from retries.models import ConnectionSender, FallbackChannel
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory
from tests.product_endpoint import ProductEndpointServer

pytestmark = pytest.mark.django_db

METADATA = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
def admin() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_a_connection_sender_on_the_metadata_address_is_refused_with_a_clear_message() -> None:
    sender = ConnectionSender(connection=ConnectionFactory(), kind="generic-http", config={"url": METADATA})
    with pytest.raises(ValidationError) as caught:
        sender.full_clean()
    assert "url is refused: 169.254.169.254 is a link-local address" in str(caught.value)


def test_a_fallback_webhook_on_a_private_address_is_refused() -> None:
    channel = FallbackChannel(
        slug="voice", kind="generic-webhook", config={"url": "https://10.0.0.1/hook", "secret": GENERIC_SECRET}
    )
    with pytest.raises(ValidationError, match=r"10\.0\.0\.1 is a private address"):
        channel.full_clean()


def test_a_product_endpoint_on_a_private_address_is_refused() -> None:
    endpoint = ProductEndpoint(name="p", url="http://[::ffff:10.0.0.1]/feed", secret=GENERIC_SECRET)
    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()
    assert "::ffff:a00:1 (10.0.0.1) is a private address" in str(caught.value.message_dict["url"])


def test_the_admin_refuses_a_send_api_on_loopback_without_the_allowlist(admin: Client, settings: Any) -> None:
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    connection = ConnectionFactory()
    response = admin.post(
        "/admin/retries/connectionsender/add/",
        {
            "connection": connection.pk, "kind": "generic-http", "settings": '{"url": "http://localhost:8000/send"}',
            "credential": "", "sender_id": "", "enabled": "on",
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert "localhost is a loopback name" in response.content.decode()
    assert not ConnectionSender.objects.exists()


def test_the_admin_refuses_a_product_endpoint_on_the_metadata_address(admin: Client) -> None:
    response = admin.post(
        "/admin/feed/productendpoint/add/",
        {"name": "x", "url": METADATA, "secret": GENERIC_SECRET, "event_types": "[]", "enabled": "on"},
    )
    assert response.status_code == 200
    assert "169.254.169.254 is a link-local address" in response.content.decode()
    assert not ProductEndpoint.objects.exists()


def test_a_feed_endpoint_that_became_internal_is_refused_on_delivery_and_nothing_is_posted(
    product: ProductEndpointServer, settings: Any
) -> None:
    ProductEndpoint.objects.create(name="p", url=product.url, secret=GENERIC_SECRET)
    feed_publish(message=MessageFactory(), event_type="message.delivered")
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    assert feed_deliver_due() == 1
    [attempt] = FeedAttempt.objects.all()
    assert (attempt.status_code, attempt.error[:45]) == (None, "refused: 127.0.0.1 is a loopback address, whi")
    assert product.received == []
