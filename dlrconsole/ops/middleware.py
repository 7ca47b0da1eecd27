"""Times the webhook: the one thing /metrics needs from the hot path."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from dlrconsole.lib.http import WEBHOOK_PREFIX
from dlrconsole.ops.webhook_latency import observe_webhook
from receipts.connection_cache import connection_cache


class WebhookLatencyMiddleware:
    """Observes every webhook's duration once, labelled by provider kind and status class.
    Other paths pass through untouched. The kind comes from the connection the view has just
    cached (`peek` never reads the database), "unknown" for a slug that names no connection:
    label values stay within the provider registry however many slugs are tried."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path_info.startswith(WEBHOOK_PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        observe_webhook(kind=_kind(request), status=response.status_code, seconds=time.perf_counter() - started)
        return response


def _kind(request: HttpRequest) -> str:
    match = request.resolver_match
    connection = connection_cache.peek(match.kwargs.get("slug", "")) if match is not None else None
    return connection.provider if connection is not None else "unknown"
