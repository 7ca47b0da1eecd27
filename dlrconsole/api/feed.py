"""Read-only API of the product feed: the delivery log and the endpoints (without secrets)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.pagination import CursorPagination

from dlrconsole import roles
from dlrconsole.api.permissions import ActionPermissions
from retries.feed.models import FeedDelivery, FeedEvent, ProductEndpoint


class FeedDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.NumberFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=FeedDelivery.Status.choices)
    event_type = django_filters.ChoiceFilter(field_name="event__type", choices=FeedEvent.Type.choices)
    message = django_filters.NumberFilter(field_name="message_id")

    class Meta:
        model = FeedDelivery
        fields = ["endpoint", "status", "event_type", "message"]


class FeedDeliverySerializer(serializers.ModelSerializer[FeedDelivery]):
    webhook_id = serializers.CharField(source="event.webhook_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    log = serializers.SerializerMethodField()

    class Meta:
        model = FeedDelivery
        fields = [
            "id", "webhook_id", "event_type", "endpoint", "message", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "last_duration_ms", "delivered_at", "log",
        ]  # fmt: skip

    def get_log(self, obj: FeedDelivery) -> list[dict[str, object]]:
        return [
            {"number": a.number, "attempted_at": a.attempted_at, "status_code": a.status_code,
             "error": a.error, "duration_ms": a.duration_ms}
            for a in obj.log.all()
        ]  # fmt: skip


class ProductEndpointSerializer(serializers.ModelSerializer[ProductEndpoint]):
    # Never the secret itself: its last 4 characters at most.
    secret_hint = serializers.CharField(read_only=True)

    class Meta:
        model = ProductEndpoint
        fields = [
            "id", "name", "url", "secret_hint", "event_types", "enabled", "disabled_reason",
            "consecutive_failures", "created_at", "updated_at",
        ]  # fmt: skip


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50


class FeedDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    # The product's service account and admins (Django's view permission on the model).
    permission_classes = [ActionPermissions]
    action_permissions = {"list": (roles.READ_FEED_DELIVERIES,), "retrieve": (roles.READ_FEED_DELIVERIES,)}
    serializer_class = FeedDeliverySerializer
    filterset_class = FeedDeliveryFilter
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[FeedDelivery]:
        return FeedDelivery.objects.select_related("event").prefetch_related("log")


class ProductEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [ActionPermissions]
    action_permissions = {"list": (roles.READ_FEED_ENDPOINTS,), "retrieve": (roles.READ_FEED_ENDPOINTS,)}
    serializer_class = ProductEndpointSerializer
    pagination_class = NewestFirst
    queryset = ProductEndpoint.objects.all()
