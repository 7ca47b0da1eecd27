"""Providers' webhooks are served by a WSGI handler of their own, whose middleware is only what a
machine's callback needs (settings.DLR_WEBHOOK_MIDDLEWARE); every other path by Django's handler
with the whole of settings.MIDDLEWARE.

A provider's POST has no session, user, CSRF token, flash messages, time zone, frame or content
policy, htmx or change history: those middlewares did nothing for it but still ran, about a
seventh of a web worker's Python time under 300 receipts/s (sampled holding the GIL during
bench/decision_latency.py, 2026-12-07). The webhook view relies on none of them; the ones that
kept a webhook branch (the locale, the latency metric) stay in its list.

Tests post webhooks through Django's test client, which always runs the whole list: each kept
middleware's webhook branch stays, so both ways answer the same (tests/test_webhook_lane.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

from dlrconsole.lib.http import WEBHOOK_PREFIX

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WebhookHandler(WSGIHandler):
    """Django's WSGI handler with the webhooks' middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds a handler's chain from settings.MIDDLEWARE and takes no other list; this
        # handler's chain is built once, when the process starts, before any request.
        with override_settings(MIDDLEWARE=settings.DLR_WEBHOOK_MIDDLEWARE):
            super().load_middleware(is_async)


def by_path(*, pages: WSGIApplication, webhooks: WSGIApplication) -> WSGIApplication:
    """One WSGI application: webhooks' paths to `webhooks`, the rest to `pages`."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = webhooks if environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX) else pages
        return handler(environ, start_response)

    return application
