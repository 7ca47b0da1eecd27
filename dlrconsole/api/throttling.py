"""API throttling: each user's requests per window, counted in the shared cache.

Two scopes, with rates from settings (DLR_API_THROTTLE_RATES): `read` (search, timelines, the
feed, the schema) and `write` (registering messages, the product's send rate). Over the rate
the answer is 429 with Retry-After (DRF's Throttled), documented on every operation of the
schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from dlrconsole.lib.rate_limit import window_hit

if TYPE_CHECKING:  # DRF imports its throttle classes while rest_framework.views loads
    from rest_framework.request import Request
    from rest_framework.views import APIView

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class UserRateThrottle(SimpleRateThrottle):
    """DRF's rate parsing and Retry-After; counted with one atomic increment per request
    (dlrconsole/lib/rate_limit.py) instead of DRF's per-request history list."""

    def __init__(self) -> None:
        # Read when a request comes, not at import: rates are settings like any other.
        self._wait = 0

    def get_rate(self) -> str | None:
        rate: str | None = settings.DLR_API_THROTTLE_RATES.get(self.scope or "")
        return rate

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None  # refused before this runs: permissions come first
        return f"api:{self.scope}:{request.user.pk}"

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = "read" if request.method in SAFE_METHODS else "write"
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        limit, window = self.parse_rate(self.rate)
        key = self.get_cache_key(request, view)
        if key is None or limit is None or window is None:
            return True
        self._wait = window_hit(key, limit=limit, window=window)
        return self._wait == 0

    def wait(self) -> float | None:
        return self._wait or None


TOO_MANY = {
    "description": "Over this user's request rate (DLR_API_THROTTLE_RATES); send again after Retry-After.",
    "headers": {"Retry-After": {"description": "Seconds to wait before sending again.", "schema": {"type": "integer"}}},
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}


def document_throttling(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every API operation may answer 429."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", TOO_MANY)
    return result
