"""The webhook endpoint: providers post receipts here. Its HTTP status is a contract:

401 signature or token missing or wrong (nothing stored but a count of refusals per connection,
minute and reason: receipts/refusals.py) · 403 source address not allowed ·
400 malformed body, with the reason (nothing stored) · 404 unknown or disabled connection ·
413 body too large · 429 over the connection's rate limit, with Retry-After (nothing stored) ·
200 for new, duplicate, late, unknown-message and unmapped-status receipts, and for provider
handshakes · 503 only when the database could not store. Providers retry on non-2xx, so a 5xx
or a 429 is an explicit request to send again.

A DRF view for its place in the API schema, but nothing DRF would do per request that a
provider's callback does not need: no authentication (the adapter verifies the provider's own
signature or token), no parsers (the adapter reads the raw body it verified), no content
negotiation, no DRF throttling (a connection's own rate limit is counted only when it has one),
and a plain JsonResponse rather than a rendered Response. Measured with bench/profile_ingest.py,
DRF's Response rendering cost 0.085 ms of a 2 ms request and its request authentication
0.02 ms; the hot path does without both.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from dlrconsole.lib.http import client_address
from dlrconsole.lib.rate_limit import window_hit
from dlrconsole.lib.tasks import task_by_name
from receipts.connection_cache import connection_cache
from receipts.ingestion import ingest
from receipts.models import Connection, WebhookRefusal
from receipts.providers.base import ControlMessage, PayloadError, SignatureError, TemporaryError, WebhookRequest
from receipts.providers.registry import get_adapter
from receipts.refusals import refusal_count
from receipts.statuses import ReceiptOutcome

logger = logging.getLogger(__name__)


class JsonOnly(BaseContentNegotiation):
    """A provider's Accept header changes nothing: the answer is always JSON."""

    def select_parser(self, request: Request, parsers: Any) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


Refusal = inline_serializer("WebhookRefusal", {"error": serializers.CharField(help_text="Why, in words.")})
Stored = inline_serializer(
    "WebhookStored",
    {
        "received": serializers.IntegerField(help_text="Receipts the request carried."),
        "duplicates": serializers.IntegerField(help_text="Of those, stored before (a provider's retry)."),
        **{
            outcome.value: serializers.IntegerField(required=False, help_text=str(outcome.label))
            for outcome in ReceiptOutcome
        },
    },
)
Control = inline_serializer("WebhookControl", {"control": serializers.CharField(help_text="The handshake handled.")})
CONTRACT = {
    200: OpenApiResponse(Stored, description="Stored (new, duplicate, late, parked for an unknown message)."),
    400: OpenApiResponse(Refusal, description="Not this provider's receipt; nothing stored. Do not retry."),
    401: OpenApiResponse(Refusal, description="Signature or token missing or wrong; nothing stored."),
    403: OpenApiResponse(Refusal, description="The source address is not allowed for this connection."),
    404: OpenApiResponse(Refusal, description="No enabled connection with this slug."),
    413: OpenApiResponse(Refusal, description="Body larger than DLR_WEBHOOK_MAX_BYTES."),
    429: OpenApiResponse(
        Refusal,
        description="Over the connection's rate limit (requests per second, if it has one); nothing stored. "
        "Send again after the Retry-After header's seconds.",
    ),
    503: OpenApiResponse(Refusal, description="Could not store now; send again later."),
}


@extend_schema(
    tags=["webhooks"],
    summary="Receive a provider's delivery receipts",
    description="Each connection has its own URL; the body is its provider's own callback format, "
    "verified by the provider's signature or by the connection's token (in the path for "
    "providers that cannot sign). AWS SNS handshakes are answered 200 with `control`.",
    request={
        "application/json": OpenApiTypes.OBJECT,
        "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
        "text/plain": OpenApiTypes.STR,
    },
    responses={**CONTRACT, 200: OpenApiResponse(Stored, description=CONTRACT[200].description)},
    auth=[],
)
@extend_schema_view(get=extend_schema(operation_id="webhook_get"), post=extend_schema(operation_id="webhook_post"))
class WebhookView(APIView):
    http_method_names = ["get", "post"]
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes: list[type] = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnly
    throttle_classes: list[type] = []

    def perform_authentication(self, request: Request) -> None:
        """Nobody signs in here: the connection's adapter authenticates the provider."""

    def get(self, request: Request, slug: str, token: str = "") -> JsonResponse:
        return self.post(request, slug, token)

    def post(self, request: Request, slug: str, token: str = "") -> JsonResponse:
        django_request = request._request
        limit = settings.DLR_WEBHOOK_MAX_BYTES
        try:
            declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
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
        remote_addr = client_address(django_request)
        if not connection.allows_address(remote_addr):
            logger.info("webhook %s refused: source %s not allowed", slug, remote_addr)
            refusal_count(connection_id=connection.pk, reason=WebhookRefusal.Reason.ADDRESS)
            return _refuse(403, "source address not allowed for this connection")
        body = django_request.read(limit + 1)
        if len(body) > limit:
            return _refuse(413, f"body larger than {limit} bytes")
        hook = WebhookRequest(
            method=django_request.method or "POST",
            url=django_request.build_absolute_uri(),
            headers={name.lower(): value for name, value in django_request.headers.items()},
            body=body,
            remote_addr=remote_addr,
            path_token=token,
        )
        return receive(connection, hook)


@extend_schema_view(
    get=extend_schema(operation_id="webhook_with_token_get", summary="Receive receipts (token in the path)"),
    post=extend_schema(operation_id="webhook_with_token_post", summary="Receive receipts (token in the path)"),
)
class WebhookWithTokenView(WebhookView):
    """For providers that cannot sign: the connection's secret token in the path."""


def _refuse(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


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
        refusal_count(connection_id=connection.pk, reason=WebhookRefusal.Reason.SIGNATURE)
        return _refuse(401, str(exc))
    except ControlMessage as control:
        return acknowledge_control(connection, control)
    except PayloadError as exc:
        logger.info("webhook %s malformed: %s", connection.slug, exc)
        refusal_count(connection_id=connection.pk, reason=WebhookRefusal.Reason.MALFORMED)
        return _refuse(400, str(exc))
    except Exception:
        # An adapter bug met an input it did not foresee. The input is what is odd, and the
        # provider must not be told to retry it forever: 400, and the traceback for us.
        logger.exception("webhook %s: adapter failed on this input", connection.slug)
        refusal_count(connection_id=connection.pk, reason=WebhookRefusal.Reason.MALFORMED)
        return _refuse(400, "the body could not be read as a receipt")
    # Counted once the request is known to be the provider's: forged posts cannot use up a
    # connection's allowance. Unset (the default), it costs one attribute read, no round trip.
    if connection.rate_limit and (wait := over_rate_limit(connection)):
        refusal_count(connection_id=connection.pk, reason=WebhookRefusal.Reason.RATE_LIMITED)
        response = _refuse(429, f"over this connection's limit of {connection.rate_limit} requests per second")
        response["Retry-After"] = str(wait)
        return response
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


def over_rate_limit(connection: Connection) -> int:
    """0 within the connection's rate limit, else the seconds to wait; counted in the shared
    cache across all web processes (a cache that cannot be reached lets the request by)."""
    return window_hit(f"hook:{connection.pk}", limit=connection.rate_limit or 0, window=1)


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
