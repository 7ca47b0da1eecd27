"""The webhook endpoint: providers post receipts here. Its HTTP status is a contract:

401 signature or token missing or wrong (nothing stored) · 403 source address not allowed ·
400 malformed body, with the reason (nothing stored) · 404 unknown or disabled connection ·
413 body too large · 200 for new, duplicate, late, unknown-message and unmapped-status
receipts, and for provider handshakes · 503 only when the database could not store.
Providers retry on non-2xx, so a 5xx is an explicit request to send again.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from dlrconsole.lib.tasks import task_by_name
from receipts.connection_cache import connection_cache
from receipts.ingestion import ingest
from receipts.models import Connection
from receipts.providers.base import ControlMessage, PayloadError, SignatureError, TemporaryError, WebhookRequest
from receipts.providers.registry import get_adapter

logger = logging.getLogger(__name__)


def _refuse(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, slug: str, token: str = "") -> JsonResponse:
    limit = settings.DLR_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refuse(400, "invalid Content-Length")
    if declared > limit:
        return _refuse(413, f"body larger than {limit} bytes")
    try:
        connection = connection_cache.get(slug)
    except DatabaseError:
        logger.exception("webhook %s: database unavailable", slug)
        return _refuse(503, "temporarily unable to store receipts")
    if connection is None:
        return _refuse(404, "no enabled connection with this slug")
    remote_addr = client_address(request)
    if not connection.allows_address(remote_addr):
        logger.info("webhook %s refused: source %s not allowed", slug, remote_addr)
        return _refuse(403, "source address not allowed for this connection")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refuse(413, f"body larger than {limit} bytes")
    hook = WebhookRequest(
        method=request.method or "POST",
        url=request.build_absolute_uri(),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        remote_addr=remote_addr,
        path_token=token,
    )
    return receive(connection, hook)


def receive(connection: Connection, hook: WebhookRequest) -> JsonResponse:
    adapter = get_adapter(connection.provider)
    body = hook.body
    try:
        adapter.verify(hook, connection.secrets, public_url=connection.public_url, options=connection.options)
        # PostgreSQL text cannot hold NUL; the raw body and kept headers are stored as text.
        if b"\x00" in body or any("\x00" in value for value in hook.headers.values()):
            raise PayloadError("body or headers contain NUL bytes")
        events = adapter.parse(hook)
    except TemporaryError as exc:
        logger.warning("webhook %s not checked: %s", connection.slug, exc)
        return _refuse(503, str(exc))
    except SignatureError as exc:
        logger.info("webhook %s refused: %s", connection.slug, exc)
        return _refuse(401, str(exc))
    except ControlMessage as control:
        return acknowledge_control(connection, control)
    except PayloadError as exc:
        logger.info("webhook %s malformed: %s", connection.slug, exc)
        return _refuse(400, str(exc))
    except Exception:
        # An adapter bug met an input it did not foresee. The input is what is odd, and the
        # provider must not be told to retry it forever: 400, and the traceback for us.
        logger.exception("webhook %s: adapter failed on this input", connection.slug)
        return _refuse(400, "the body could not be read as a receipt")
    try:
        result = ingest(connection=connection, request=hook, events=events, headers=adapter.headers_to_keep(hook))
    except DatabaseError:
        logger.exception("webhook %s: receipts not stored", connection.slug)
        return _refuse(503, "temporarily unable to store receipts")
    except Exception:
        # A bug, not the input (it was verified and parsed): nothing was stored (the
        # transaction rolled back), so ask the provider to send again rather than answer 500.
        logger.exception("webhook %s: ingestion failed", connection.slug)
        return _refuse(503, "temporarily unable to store receipts")
    return JsonResponse(result.as_dict(), status=200)


def acknowledge_control(connection: Connection, control: ControlMessage) -> JsonResponse:
    if control.task:
        try:
            task_by_name(control.task).apply_async(args=control.args_for_task)
        except Exception:
            # Could not queue the follow-up: ask the provider to send the handshake again.
            logger.warning("webhook %s: %s not queued", connection.slug, control.task, exc_info=True)
            return _refuse(503, "temporarily unable to complete the handshake")
    logger.info("webhook %s: %s", connection.slug, control.reason)
    return JsonResponse({"control": control.reason}, status=200)


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind proxies listed in DLR_TRUSTED_PROXIES, the right-most
    X-Forwarded-For entry that is not one of them (entries left of it can be forged)."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = settings.DLR_TRUSTED_PROXIES
    if not trusted or not _in_networks(address, trusted):
        return address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _in_networks(hop, trusted):
            return hop
    return address


def _in_networks(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
