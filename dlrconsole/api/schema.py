"""What the OpenAPI schema says of every API operation beyond its success: each refusal it can
answer, and each query parameter's limits as the FilterSet enforces them.

The schema is a contract the product's client is generated from and that tests fuzz
(tests/test_api_schema_fuzz.py): an answer it does not list, or a value it allows that the
API refuses, is a bug in one or the other.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from dlrconsole.api.fields import NO_NUL

Detail = inline_serializer("ApiError", {"detail": serializers.CharField(help_text="Why, in words.")})
# DRF's validation errors: each refused field (or `non_field_errors`) with its reasons, or
# `detail` alone for a body that is not JSON.
FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
    "example": {"submitted_after": ["the time zone offset must be between -15:59 and +15:59"]},
}


def errors(*codes: int, not_found: str = "") -> dict[int, OpenApiResponse]:
    """The refusals for `codes`, described once for every operation."""
    described = {
        400: OpenApiResponse(FIELD_ERRORS, description="A parameter or field refused, with the reasons."),
        401: OpenApiResponse(Detail, description="No token, or an unknown one."),
        403: OpenApiResponse(Detail, description="The caller lacks this action's permission."),
        404: OpenApiResponse(Detail, description=not_found or "Not found."),
        409: OpenApiResponse(Detail, description="Conflicts with what is stored."),
        415: OpenApiResponse(Detail, description="A body in a media type this operation does not read."),
        503: OpenApiResponse(Detail, description="The database is unreachable: retry later."),
    }
    return {code: described[code] for code in codes}


# LocaleMiddleware reads it (settings.LANGUAGES); the codes and values stay English.
ACCEPT_LANGUAGE = OpenApiParameter(
    "Accept-Language",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The language of the texts written for people: a message's `explanation` and `what_to_fix`, "
    "its timeline's summaries and the standard refusals (sign-in, permission). `en`, `fr` or `es`, with "
    "weights as browsers send them; a regional variant falls back to its language (`fr-CA` is answered in "
    "French), any other language in English. Codes (statuses, reasons, classes, advice) are never "
    "translated. The answer's `Content-Language` says which was used.",
)


class ApiSchema(AutoSchema):
    """The refusals every API operation can answer are added to those it declares, and the
    Accept-Language header to its parameters."""

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), ACCEPT_LANGUAGE]

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        for code, response in self._refusals().items():
            if str(code) not in bodies:
                bodies[str(code)] = self._get_response_for_code(response, str(code), direction=direction)
        return bodies

    def _refusals(self) -> dict[int, OpenApiResponse]:
        if self.method == "POST":
            if "{" in self.path:  # an action on one record (a feed endpoint's pause, ...)
                return errors(400, 401, 403, 404, 415, 503, not_found="No such record.")
            return errors(400, 401, 403, 415, 503)
        if self._is_list_view():
            return errors(400, 401, 403, 404, 503, not_found="The cursor is not a page link of this list.")
        # 400 too: query parameters are read (and an empty one refused) on every operation.
        return errors(400, 401, 403, 404, 503, not_found="No such record.")

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_filter_parameters()
        filterset_class = getattr(self.view, "filterset_class", None)
        filters = filterset_class.base_filters if filterset_class else {}
        for parameter in parameters:
            limit_parameter(parameter, filters.get(parameter["name"]))
        return parameters


def limit_parameter(parameter: dict[str, Any], filter_field: Any) -> None:
    """A filter's limits in its parameter's schema: never empty (the API refuses it), as long as
    its form field allows, matching its pattern."""
    schema = parameter["schema"]
    values = schema["items"] if schema.get("type") == "array" else schema
    extra = getattr(filter_field, "extra", {})
    choices = extra.get("choices")
    if values.get("type") != "string" or "enum" in values:
        return
    if choices:  # given as a callable (the error catalog's reasons), which the schema generator skips
        values["enum"] = [value for value, _ in (choices() if callable(choices) else choices)]
        return
    values.setdefault("minLength", 1)
    if extra.get("max_length"):
        values["maxLength"] = extra["max_length"]
    values.setdefault("pattern", NO_NUL)  # Django's form fields refuse NUL
    for validator in extra.get("validators", []):
        if isinstance(validator, RegexValidator) and not isinstance(validator.regex, str):
            values["pattern"] = validator.regex.pattern.replace(r"\Z", "$")
