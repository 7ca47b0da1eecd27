"""Read-only API of the product feed: the delivery log and the endpoints (without secrets)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets

from dlrconsole import roles
from dlrconsole.api.params import MAX_ID, NewestFirstPagination, RefusesEmptyParameters
from dlrconsole.api.permissions import ActionPermissions
from dlrconsole.api.schema import ApiSchema
from retries.feed.models import FeedAttempt, FeedDelivery, FeedEvent, ProductEndpoint


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

    class Meta:
        model = ProductEndpoint
        fields = [
            "id", "name", "url", "secret_hint", "event_types", "enabled", "disabled_reason",
            "consecutive_failures", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class FeedDeliveryViewSet(
    RefusesEmptyParameters, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    # The product's service account and admins (Django's view permission on the model).
    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    action_permissions = {"list": (roles.READ_FEED_DELIVERIES,), "retrieve": (roles.READ_FEED_DELIVERIES,)}
    serializer_class = FeedDeliverySerializer
    filterset_class = FeedDeliveryFilter
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[FeedDelivery]:
        return FeedDelivery.objects.select_related("event").prefetch_related("log")


class ProductEndpointViewSet(
    RefusesEmptyParameters, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    action_permissions = {"list": (roles.READ_FEED_ENDPOINTS,), "retrieve": (roles.READ_FEED_ENDPOINTS,)}
    serializer_class = ProductEndpointSerializer
    pagination_class = NewestFirstPagination
    queryset = ProductEndpoint.objects.all()
