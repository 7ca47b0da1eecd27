"""/metrics for Prometheus, refused to anyone but the configured scraper."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from dlrconsole.lib.http import client_address
from dlrconsole.ops.metrics import exposition

logger = logging.getLogger(__name__)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    try:
        body = exposition()
    except Exception:
        # Every reading already survives the database; this is a bug, and a scraper is better
        # told "try later" than shown a traceback page.
        logger.exception("metrics: exposition failed")
        return HttpResponse("metrics unavailable\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token: str = settings.DLR_METRICS_TOKEN
    allowed = settings.DLR_METRICS_ALLOW
    if not token and not allowed:
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    if allowed and not _allowed_address(client_address(request), allowed):
        return HttpResponse("address not allowed\n", status=403, content_type="text/plain")
    if token and not _bearer_matches(request.headers.get("Authorization", ""), token):
        response = HttpResponse("bearer token missing or wrong\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


def _allowed_address(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    # Digests of equal length, compared in constant time: neither the token's characters nor
    # its length can be found by timing refusals.
    given_digest = hashlib.sha256(given.strip().encode()).digest()
    return scheme.lower() == "bearer" and hmac.compare_digest(given_digest, hashlib.sha256(token.encode()).digest())
