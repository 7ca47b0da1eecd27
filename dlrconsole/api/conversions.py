"""Conversions the product reports for its messages (an OTP entered, a link opened): the proof
that a "delivered" reached a person, which the route trust score weighs (receipts/honesty.py).

Two ways to name the message, as the product knows it: our id (the registration's answer),
or the connection and the provider's message id it registered. Idempotent: the same kind
reported again answers 200 with the first report.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from dlrconsole.api.fields import NOT_BLANK, NOT_BLANK_REFUSAL, InstantField, SlugReferenceField, StrictCharField
from dlrconsole.api.schema import Detail
from receipts.conversions import ConversionRefused, conversion_record
from receipts.models import Connection, Conversion, Message


class ConversionSerializer(serializers.ModelSerializer):
    message: serializers.PrimaryKeyRelatedField[Message] = serializers.PrimaryKeyRelatedField(read_only=True)
    kind = serializers.ChoiceField(choices=Conversion.Kind.choices, read_only=True)

    class Meta:
        model = Conversion
        fields = ["message", "kind", "converted_at", "received_at"]
        read_only_fields = fields


class ConversionReportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Conversion.Kind.choices, help_text="What the recipient did.")
    converted_at = InstantField(
        required=False, help_text="When, by the product's clock; now when not given. Not before the submission."
    )


class ConversionByReferenceSerializer(ConversionReportSerializer):
    connection = SlugReferenceField(
        slug_field="slug", queryset=Connection.objects.all(), help_text="The connection the message was sent through."
    )
    provider_message_id = StrictCharField(max_length=128, pattern=NOT_BLANK, refusal=NOT_BLANK_REFUSAL)


def _record(message: Message, data: dict[str, Any]) -> Response:
    try:
        conversion, created = conversion_record(
            message=message, kind=data["kind"], converted_at=data.get("converted_at")
        )
    except ConversionRefused as exc:
        raise ValidationError({"converted_at": [str(exc)]}) from None
    return Response(
        ConversionSerializer(conversion).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


REPORTED = {
    201: ConversionSerializer,
    200: OpenApiResponse(ConversionSerializer, description="This kind was already reported: the first report."),
}


class ConversionActions:
    """Mixed into the messages' viewset: POST …/messages/<id>/conversions/ and
    POST …/messages/conversions/ (by connection and provider message id)."""

    @extend_schema(
        request=ConversionReportSerializer,
        responses=REPORTED,
        summary="Report a conversion",
        operation_id="api_v1_messages_conversions_create",
    )
    @action(detail=True, methods=["post"], url_path="conversions")
    def conversions(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:  # `format`
        incoming = ConversionReportSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        message = self.get_object()  # type: ignore[attr-defined]
        return _record(message, incoming.validated_data)

    @extend_schema(
        request=ConversionByReferenceSerializer,
        responses={**REPORTED, 404: OpenApiResponse(Detail, description="No such message on that connection.")},
        summary="Report a conversion by connection and provider message id",
        operation_id="api_v1_messages_conversions_by_reference_create",
    )
    @action(detail=False, methods=["post"], url_path="conversions")
    def conversions_by_reference(self, request: Request, **kwargs: Any) -> Response:  # `format`
        incoming = ConversionByReferenceSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        message = Message.objects.filter(
            connection=data["connection"], provider_message_id=data["provider_message_id"]
        ).first()
        if message is None:
            raise NotFound("No message with this provider message id on this connection.")
        return _record(message, data)
