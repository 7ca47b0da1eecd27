"""Providers' webhooks run through a handler of their own with only the middleware a machine's
callback needs; pages keep the whole list. Called as gunicorn calls it: the WSGI application."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from django.conf import settings

from dlrconsole.wsgi import application
from receipts.models import Receipt
from receipts.statuses import Status
from tests.factories import MessageFactory
from tests.webhooks import generic_body, generic_headers

# Without a test transaction around it: the handler closes and opens connections as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def call(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)), "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    answered: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answered["status"] = int(status.split()[0])
        answered["headers"] = {name.lower(): value for name, value in response_headers}

    response = application(environ, start_response)
    try:
        content = b"".join(response)
    finally:
        response.close()
    return answered["status"], answered["headers"], content


def test_a_webhook_is_stored_with_its_request_id_and_none_of_the_pages_middleware():
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "delivered")

    status, headers, content = call(
        "POST", f"/hooks/{message.connection.slug}/", body, {**generic_headers(message.connection, body)}
    )

    assert status == 200, content
    assert json.loads(content)["received"] == 1
    assert Receipt.objects.get().message == message
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert headers["x-request-id"]  # the request id middleware ran
    assert headers["x-content-type-options"] == "nosniff"  # so did the security middleware
    # No session, CSRF, frame policy, content policy or language choice for a machine.
    assert "set-cookie" not in headers
    assert "x-frame-options" not in headers
    assert "content-security-policy" not in headers
    assert "vary" not in headers


def test_pages_keep_the_whole_middleware():
    status, headers, _ = call("GET", "/login/", headers={"Accept-Language": "fr"})
    assert status == 200
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert "csrftoken" in headers["set-cookie"]
    assert headers["content-language"] == "fr"


def test_the_webhooks_middleware_is_the_pages_own_in_the_same_order():
    kept = settings.DLR_WEBHOOK_MIDDLEWARE
    assert [path for path in settings.MIDDLEWARE if path in kept] == kept
    assert kept[0] == "dlrconsole.ops.middleware.WebhookLatencyMiddleware"  # times the whole of it
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in kept
