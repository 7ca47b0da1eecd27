"""API of the product feed: the delivery log, and the endpoints a product team manages itself.

Ownership: an endpoint created through the API belongs to the calling key's user (the account,
not the key, so rotating API keys keeps it); that account's keys manage it, nobody else's but
admins' (the change permission on endpoints). Another owner's endpoint, and its deliveries,
answer 404 as if they did not exist. Endpoints configured by admins in the Django admin have no
owner: product keys read them and their deliveries (as before endpoints had owners) but manage
them only through an admin (403, with that reason).

The secret is in the answer of create and of rotate-secret only, never again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from dlrconsole import roles
from dlrconsole.api.fields import NOT_BLANK, NOT_BLANK_REFUSAL, StrictCharField
from dlrconsole.api.params import MAX_ID, NewestFirstPagination, RefusesEmptyParameters
from dlrconsole.api.permissions import ActionPermissions
from dlrconsole.api.schema import ApiSchema, Detail
from dlrconsole.audit.services import audit_action
from dlrconsole.lib.outbound import validate_outbound_url
from retries.feed.models import FeedAttempt, FeedDelivery, FeedEvent, ProductEndpoint
from retries.feed.selectors import product_endpoints_for
from retries.feed.services import (
    ROTATION_GRACE_DEFAULT,
    ROTATION_GRACE_MAX,
    FeedRefused,
    feed_delivery_replay,
    feed_endpoint_create,
    feed_endpoint_pause,
    feed_endpoint_resume,
    feed_endpoint_rotate_secret,
)

ADMIN_CONFIGURED = (
    "this endpoint was configured by an admin: an admin manages it (Django admin → Product endpoints); "
    "a key manages the endpoints its account created"
)


def readable_endpoints(user: Any) -> QuerySet[ProductEndpoint]:
    return product_endpoints_for(user_id=user.pk, sees_all=user.has_perm(roles.CONFIGURE_FEED_ENDPOINTS))


def check_manages(user: Any, endpoint: ProductEndpoint) -> None:
    """403 on an admin-configured endpoint for a product key (it can read it, so saying why
    reveals nothing); another owner's never gets here (404)."""
    if endpoint.owner_id != user.pk and not user.has_perm(roles.CONFIGURE_FEED_ENDPOINTS):
        raise PermissionDenied(ADMIN_CONFIGURED)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A primary key: a whole number PostgreSQL's bigint can hold."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)

    def get_max_validator(self) -> None:
        return None  # max_value above says it


class FeedDeliveryFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id", help_text="A product endpoint's id.")
    status = django_filters.ChoiceFilter(choices=FeedDelivery.Status.choices)
    event_type = django_filters.ChoiceFilter(field_name="event__type", choices=FeedEvent.Type.choices)
    message = IdFilter(field_name="message_id", help_text="A message's id.")

    class Meta:
        model = FeedDelivery
        fields = ["endpoint", "status", "event_type", "message"]


class FeedAttemptSerializer(serializers.ModelSerializer[FeedAttempt]):
    class Meta:
        model = FeedAttempt
        fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class FeedDeliverySerializer(serializers.ModelSerializer[FeedDelivery]):
    webhook_id = serializers.CharField(source="event.webhook_id", read_only=True)
    event_type = serializers.ChoiceField(source="event.type", choices=FeedEvent.Type.choices, read_only=True)
    log = FeedAttemptSerializer(many=True, read_only=True, help_text="Each POST to the endpoint, first first.")

    class Meta:
        model = FeedDelivery
        fields = [
            "id", "webhook_id", "event_type", "endpoint", "message", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "last_duration_ms", "delivered_at", "log",
        ]  # fmt: skip
        read_only_fields = fields


class ProductEndpointSerializer(serializers.ModelSerializer[ProductEndpoint]):
    # Never the secret itself: its last 4 characters at most.
    secret_hint = serializers.CharField(read_only=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=FeedEvent.Type.choices),
        read_only=True,
        help_text="The events it receives; empty: all of them.",
    )
    owned = serializers.SerializerMethodField(help_text="Whether the calling account owns (manages) it.")
    paused = serializers.SerializerMethodField(help_text="Paused by its owner: deliveries are held, not lost.")

    class Meta:
        model = ProductEndpoint
        fields = [
            "id", "name", "url", "secret_hint", "event_types", "enabled", "disabled_reason", "paused", "paused_at",
            "previous_secret_expires_at", "owned", "consecutive_failures", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_owned(self, endpoint: ProductEndpoint) -> bool:
        request = self.context.get("request")
        return request is not None and endpoint.owner_id == request.user.pk

    def get_paused(self, endpoint: ProductEndpoint) -> bool:
        return endpoint.paused_at is not None


class ProductEndpointWithSecretSerializer(ProductEndpointSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_…): shown in this answer only, never again. Keep it now."
    )

    class Meta(ProductEndpointSerializer.Meta):
        fields = [*ProductEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, endpoint: ProductEndpoint) -> str:
        return str(self.context["secret"])


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "enum": FeedEvent.Type.values},
        "uniqueItems": True,
        "maxItems": len(FeedEvent.Type.values),
        "description": "The events it receives, each once; empty or left out: all of them.",
    }
)
class EventTypesField(serializers.ListField):
    """Event types, each refused item named in a flat list of reasons, as every refusal of the
    API is (dlrconsole/api/schema.py): DRF would nest them under the item's index."""

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        try:
            return super().run_child_validation(data)
        except ValidationError as exc:
            details = exc.detail if isinstance(exc.detail, dict) else {}
            raise ValidationError(
                [f"item {index}: {reason}" for index, reasons in details.items() for reason in reasons]
            ) from None


class ProductEndpointCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120, pattern=NOT_BLANK, refusal=NOT_BLANK_REFUSAL)
    url = serializers.URLField(
        max_length=500,
        help_text="http(s); never a private, loopback or link-local address (refused with the reason).",
    )
    event_types = EventTypesField(
        child=serializers.ChoiceField(choices=FeedEvent.Type.choices),
        required=False,
        default=list,
        max_length=len(FeedEvent.Type.choices),
        help_text="The events it receives; empty or left out: all of them.",
    )

    def validate_url(self, value: str) -> str:
        try:
            validate_outbound_url(value)
        except DjangoValidationError as exc:
            raise ValidationError(exc.messages) from None
        return value

    def validate_event_types(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValidationError("each event type once")
        return value


class RotateSecretSerializer(serializers.Serializer):
    keep_previous_seconds = serializers.IntegerField(
        min_value=0,
        max_value=int(ROTATION_GRACE_MAX.total_seconds()),
        default=int(ROTATION_GRACE_DEFAULT.total_seconds()),
        help_text="How long the old secret keeps signing beside the new one (both signatures in "
        "webhook-signature), so every instance of the product can switch; 0: stop at once.",
    )


class FeedDeliveryViewSet(
    RefusesEmptyParameters, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    # The product's service account and admins (Django's view permission on the model), each
    # the deliveries of the endpoints it may read.
    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    action_permissions = {
        "list": (roles.READ_FEED_DELIVERIES,),
        "retrieve": (roles.READ_FEED_DELIVERIES,),
        "replay": (roles.READ_FEED_DELIVERIES, roles.MANAGE_FEED_ENDPOINTS),
    }
    serializer_class = FeedDeliverySerializer
    filterset_class = FeedDeliveryFilter
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[FeedDelivery]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator, without a caller
            return FeedDelivery.objects.none()
        readable = readable_endpoints(self.request.user)
        return FeedDelivery.objects.filter(endpoint__in=readable).select_related("event").prefetch_related("log")

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(FeedDeliverySerializer, description="Queued again: due now, same webhook-id."),
            409: OpenApiResponse(Detail, description="The endpoint is disabled: resume it first."),
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Send a delivery again now (delivered, abandoned or still failing), under the event's
        same webhook-id, retried on the schedule from its start; audited. To a paused endpoint
        it waits for the resume."""
        delivery = self.get_object()
        check_manages(request.user, delivery.endpoint)
        was = delivery.status
        try:
            delivery = feed_delivery_replay(delivery=delivery)
        except FeedRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        audit_action(
            user=request.user,
            instance=delivery,
            changes=[{"field": "status", "label": "replayed", "old": was, "new": delivery.status}],
        )
        delivery = self.get_queryset().get(pk=delivery.pk)
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)


MANAGE = (roles.READ_FEED_ENDPOINTS, roles.MANAGE_FEED_ENDPOINTS)


class ProductEndpointViewSet(
    RefusesEmptyParameters, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The feed's endpoints: a product team registers and manages its own (see the module)."""

    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    action_permissions = {
        "list": (roles.READ_FEED_ENDPOINTS,),
        "retrieve": (roles.READ_FEED_ENDPOINTS,),
        "create": MANAGE,
        "rotate_secret": MANAGE,
        "pause": MANAGE,
        "resume": MANAGE,
    }
    serializer_class = ProductEndpointSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[ProductEndpoint]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator, without a caller
            return ProductEndpoint.objects.none()
        return readable_endpoints(self.request.user)

    def _managed(self) -> ProductEndpoint:
        endpoint = self.get_object()
        check_manages(self.request.user, endpoint)
        return endpoint

    def _answer(self, endpoint: ProductEndpoint, *, secret: str = "", code: int = status.HTTP_200_OK) -> Response:
        endpoint.refresh_from_db()
        context = {**self.get_serializer_context(), "secret": secret}
        serializer = ProductEndpointWithSecretSerializer if secret else ProductEndpointSerializer
        return Response(serializer(endpoint, context=context).data, status=code)

    @extend_schema(
        request=ProductEndpointCreateSerializer,
        responses={201: OpenApiResponse(ProductEndpointWithSecretSerializer, description="Created; the secret once.")},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Register an endpoint owned by the calling account; its signing secret is generated
        and shown in this answer only."""
        incoming = ProductEndpointCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            endpoint, secret = feed_endpoint_create(
                owner=request.user, name=data["name"], url=data["url"], event_types=data["event_types"]
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None
        return self._answer(endpoint, secret=secret, code=status.HTTP_201_CREATED)

    @extend_schema(
        request=RotateSecretSerializer,
        responses={200: OpenApiResponse(ProductEndpointWithSecretSerializer, description="The new secret, once.")},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new signing secret, shown once. The old one keeps signing beside it for
        `keep_previous_seconds` (24 h by default), until `previous_secret_expires_at`."""
        endpoint = self._managed()
        incoming = RotateSecretSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        grace = timedelta(seconds=incoming.validated_data["keep_previous_seconds"])
        secret = feed_endpoint_rotate_secret(endpoint=endpoint, grace=grace)
        return self._answer(endpoint, secret=secret)

    @extend_schema(request=None, responses={200: ProductEndpointSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Hold deliveries: events are still recorded for it and sent when it resumes."""
        endpoint = self._managed()
        feed_endpoint_pause(endpoint=endpoint)
        return self._answer(endpoint)

    @extend_schema(request=None, responses={200: ProductEndpointSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Unpause, and enable again if the feed disabled it (410 Gone, a delivery abandoned):
        held and failing deliveries are sent at once."""
        endpoint = self._managed()
        feed_endpoint_resume(endpoint=endpoint)
        return self._answer(endpoint)
