"""The JSON API: register submitted messages, search them, read their timelines."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from dlrconsole import roles
from dlrconsole.api.permissions import ActionPermissions
from dlrconsole.timeline import message_timeline
from receipts.filters import MessageFilter
from receipts.models import Connection, Message
from receipts.phones import InvalidNumber, mask_number, parse_number
from receipts.selectors import message_list, receipt_error
from receipts.services import MessageRegistration, RegistrationConflict, message_register


class MessageFilterBackend(DjangoFilterBackend):
    """The FilterSet with the caller's permission to see numbers: without it, filtering or
    searching by number is refused (400 with the reason) rather than answered."""

    def get_filterset_kwargs(self, request: Request, queryset: QuerySet[Message], view: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_filterset_kwargs(request, queryset, view)
        return kwargs | {"see_numbers": roles.can_see_numbers(request.user)}


class MessageCursorPagination(CursorPagination):
    # Newest first by primary key: unique and indexed, so pages stay fast at any depth.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _shows_numbers(serializer: serializers.BaseSerializer) -> bool:
    request = serializer.context.get("request")
    return request is not None and roles.can_see_numbers(request.user)


class MessageSerializer(serializers.ModelSerializer):
    """A message; its recipient masked for callers without the see-full-numbers permission
    (and for any use without a request in the context)."""

    connection: serializers.SlugRelatedField[Connection] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    def to_representation(self, instance: Message) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if not _shows_numbers(self):
            data["recipient"] = mask_number(instance.recipient)
        return data

    class Meta:
        model = Message
        fields = [
            "id",
            "connection",
            "provider_message_id",
            "recipient",
            "country",
            "flow",
            "client_reference",
            "status",
            "error_code",
            "reason",
            "error_class",
            "catalog_class",
            "class_source",
            "submitted_at",
            "first_receipt_at",
            "final_at",
            "status_changed_at",
        ]
        read_only_fields = fields


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    summary = serializers.CharField()
    detail = serializers.DictField()


class MessageDetailSerializer(MessageSerializer):
    provider_disagrees = serializers.SerializerMethodField(
        help_text="The provider's own permanence flag set the class against the error catalog's."
    )
    retry_advice = serializers.SerializerMethodField(
        help_text="same_route, other_route, fallback_channel or never; empty without a failure."
    )
    explanation = serializers.SerializerMethodField(help_text="What support can tell the end user.")
    what_to_fix = serializers.SerializerMethodField(help_text="For failures that are ours to fix.")
    timeline = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [
            *MessageSerializer.Meta.fields,
            "provider_disagrees",
            "retry_advice",
            "explanation",
            "what_to_fix",
            "timeline",
        ]
        read_only_fields = fields

    def get_provider_disagrees(self, message: Message) -> bool:
        return bool(receipt_error(message)["provider_disagrees"])

    def get_retry_advice(self, message: Message) -> str:
        return str(receipt_error(message)["retry_advice"])

    def get_explanation(self, message: Message) -> str:
        return str(receipt_error(message)["explanation"])

    def get_what_to_fix(self, message: Message) -> str:
        return str(receipt_error(message)["what_to_fix"])

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    def get_timeline(self, message: Message) -> list[dict[str, Any]]:
        timeline = message_timeline(message, see_numbers=_shows_numbers(self))
        return TimelineEntrySerializer(timeline, many=True).data  # type: ignore[return-value]


class MessageRegisterSerializer(serializers.Serializer):
    connection = serializers.SlugRelatedField(slug_field="slug", queryset=Connection.objects.filter(enabled=True))
    provider_message_id = serializers.CharField(max_length=128)
    to = serializers.CharField(max_length=40, help_text="Recipient in any common format; E.164 preferred.")
    region = serializers.CharField(
        max_length=2, min_length=2, required=False, help_text="Country hint for a national-format number."
    )
    flow = serializers.SlugField(max_length=64, required=False, default="")
    client_reference = serializers.CharField(max_length=128, required=False, default="", allow_blank=True)
    submitted_at = serializers.DateTimeField(required=False)
    body = serializers.CharField(
        max_length=1600, required=False, default="", allow_blank=True, trim_whitespace=False,
        help_text="The text, kept only so that retries can resend it; erased after the retention period, "
        "never returned by the API.",
    )  # fmt: skip
    fallback_email = serializers.EmailField(
        required=False, default="", allow_blank=True, help_text="Where the e-mail fallback reaches the recipient."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["to"] = parse_number(attrs["to"], region=attrs.get("region", ""))
        except InvalidNumber as exc:
            raise ValidationError({"to": [str(exc)]}) from None
        return attrs


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages: register (POST), search (GET list), one message with its timeline (GET detail).

    Search is what the console's search page does (viewers too, numbers masked); a timeline
    is a message page's; registering is the sending product's (dlrconsole/roles.py, PRODUCT).
    """

    permission_classes = [ActionPermissions]
    action_permissions = {
        "list": (roles.USE_CONSOLE,),
        "retrieve": (roles.VIEW_TIMELINE,),
        "create": (roles.REGISTER_MESSAGES,),
    }
    filter_backends = [MessageFilterBackend]
    filterset_class = MessageFilter
    pagination_class = MessageCursorPagination

    def get_queryset(self) -> QuerySet[Message]:
        return message_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return MessageDetailSerializer if self.action == "retrieve" else MessageSerializer

    @extend_schema(
        request=MessageRegisterSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="Already registered with the same details."),
            409: OpenApiResponse(description="Already registered with a different recipient, flow or reference."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # `format` on /messages.json
        incoming = MessageRegisterSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            message, created = message_register(
                MessageRegistration(
                    connection=data["connection"],
                    provider_message_id=data["provider_message_id"],
                    recipient=data["to"],
                    flow=data["flow"],
                    client_reference=data["client_reference"],
                    submitted_at=data.get("submitted_at"),
                    body=data["body"],
                    fallback_email=data["fallback_email"],
                )
            )
        except RegistrationConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            MessageSerializer(message, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
