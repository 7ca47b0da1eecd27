"""The JSON API: register submitted messages, search them, read their timelines."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from dlrconsole import roles
from dlrconsole.api.conversions import ConversionActions
from dlrconsole.api.fields import (
    NOT_BLANK,
    NOT_BLANK_REFUSAL,
    SLUG_PATTERN,
    InstantField,
    SlugReferenceField,
    StrictCharField,
)
from dlrconsole.api.params import NewestFirstPagination, RefusesEmptyParameters
from dlrconsole.api.permissions import ActionPermissions
from dlrconsole.api.schema import ApiSchema, Detail
from dlrconsole.timeline import message_timeline
from receipts.filters import MessageFilter
from receipts.models import ClassSource, Connection, ErrorClass, Message
from receipts.phones import InvalidNumber, mask_number, parse_number
from receipts.selectors import message_list, receipt_error
from receipts.services import MessageRegistration, RegistrationConflict, message_register
from receipts.statuses import Status


class MessageFilterBackend(DjangoFilterBackend):
    """The FilterSet with the caller's permission to see numbers: without it, filtering or
    searching by number is refused (400 with the reason) rather than answered."""

    def get_filterset_kwargs(self, request: Request, queryset: QuerySet[Message], view: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_filterset_kwargs(request, queryset, view)
        return kwargs | {"see_numbers": roles.can_see_numbers(request.user)}


class MessageCursorPagination(NewestFirstPagination):
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
    flow = serializers.CharField(read_only=True, help_text="The product's use case; empty when not given.")
    flow_not_live = serializers.BooleanField(
        read_only=True,
        help_text="Registered for a described flow that had no go decision yet: accepted, and flagged.",
    )
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    # Empty until a receipt carries an error: the blank value is part of each enum.
    error_class = serializers.ChoiceField(
        choices=ErrorClass.choices, allow_blank=True, read_only=True, help_text="Effective class; empty without error."
    )
    catalog_class = serializers.ChoiceField(
        choices=ErrorClass.choices,
        allow_blank=True,
        read_only=True,
        help_text="The class the error catalog gives; empty without error.",
    )
    class_source = serializers.ChoiceField(
        choices=ClassSource.choices,
        allow_blank=True,
        read_only=True,
        help_text="Which of the catalog or the provider's own flag set the class; empty without error.",
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
            "flow_not_live",
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
    # Every field's limits are its column's: longer values are refused here, never by the database.
    connection = SlugReferenceField(
        slug_field="slug",
        queryset=Connection.objects.filter(enabled=True),
        help_text="An enabled connection's slug; 400 when there is none.",
    )
    provider_message_id = StrictCharField(max_length=128, pattern=NOT_BLANK, refusal=NOT_BLANK_REFUSAL)
    to = StrictCharField(
        max_length=40,
        pattern=NOT_BLANK,
        refusal=NOT_BLANK_REFUSAL,
        help_text="Recipient in any common format; E.164 preferred. 400 when it is not a possible number.",
    )
    region = StrictCharField(
        max_length=2,
        min_length=2,
        required=False,
        pattern=r"^[A-Za-z]{2}$",
        refusal="must be a two-letter ISO 3166 code, e.g. FR",
        help_text="Country hint (ISO alpha-2) for a national-format number.",
    )
    flow = StrictCharField(
        max_length=64,
        required=False,
        default="",
        trim_whitespace=False,
        pattern=SLUG_PATTERN,
        refusal="a slug: letters, digits, - and _",
    )
    client_reference = StrictCharField(max_length=128, required=False, default="", allow_blank=True)
    submitted_at = InstantField(required=False)
    body = StrictCharField(
        max_length=1600, required=False, default="", allow_blank=True, trim_whitespace=False,
        help_text="The text, kept only so that retries can resend it; erased after the retention period, "
        "never returned by the API.",
    )  # fmt: skip
    fallback_email = serializers.EmailField(
        max_length=254,
        required=False,
        default="",
        allow_blank=True,
        help_text="Where the e-mail fallback reaches the recipient.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["to"] = parse_number(attrs["to"], region=attrs.get("region", ""))
        except InvalidNumber as exc:
            raise ValidationError({"to": [str(exc)]}) from None
        return attrs


class MessageViewSet(
    ConversionActions, RefusesEmptyParameters, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Messages: register (POST), search (GET list), one message with its timeline (GET detail),
    report a conversion (POST …/conversions/, dlrconsole/api/conversions.py).

    Search is what the console's search page does (viewers too, numbers masked); a timeline
    is a message page's; registering is the sending product's (dlrconsole/roles.py, PRODUCT).
    """

    schema = ApiSchema()
    permission_classes = [ActionPermissions]
    action_permissions = {
        "list": (roles.USE_CONSOLE,),
        "retrieve": (roles.VIEW_TIMELINE,),
        "create": (roles.REGISTER_MESSAGES,),
        # What the recipient did: the product reports it, as it registers messages.
        "conversions": (roles.REGISTER_MESSAGES,),
        "conversions_by_reference": (roles.REGISTER_MESSAGES,),
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
            409: OpenApiResponse(
                Detail, description="Already registered with a different recipient, flow or reference."
            ),
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
