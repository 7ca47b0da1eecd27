"""Input fields that refuse, with a reason, what the database or the code could not take.

DRF's own fields let through what a JSON client should not send (a number where text is
expected) and what PostgreSQL refuses only once a query runs (a NUL byte in a looked-up slug,
a time-zone offset past ±15:59): the first breaks the documented contract, the second became
a 503 that told the caller to try again a request that could never succeed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from receipts.filters import INSTANT_PATTERN, check_offset

# A registration's time is stored, then read back through Python, which holds years 1 to 9999
# in UTC only: years 2 to 9998 hold whatever the offset.
STORED_YEARS = range(2, 9999)
STORED_INSTANT_PATTERN = INSTANT_PATTERN.replace(
    r"^\d{4}", r"^(000[2-9]|00[1-9]\d|0[1-9]\d{2}|[1-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])"
)

SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


# PostgreSQL's text cannot hold NUL; written as a pattern so that the schema says it too.
NO_NUL = r"^[^\x00]*$"
# Surrounding spaces are trimmed, so such text must hold more than spaces.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
NOT_BLANK_REFUSAL = "may not be blank nor contain NUL characters"


class StrictCharField(serializers.CharField):
    """Text only: DRF would turn a JSON number or boolean into text, which the schema refuses.
    Its pattern (no NUL, by default) is in the schema."""

    def __init__(self, *, pattern: str = NO_NUL, refusal: str = "may not contain NUL characters", **kwargs: Any):
        super().__init__(**kwargs)
        # One validator says it all: DRF's own NUL check would repeat the refusal.
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]
        self.validators.append(RegexValidator(pattern, refusal))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "date-time", "pattern": STORED_INSTANT_PATTERN})
class InstantField(serializers.DateTimeField):
    """A date and time, refused with a reason when PostgreSQL could not store it or Python
    could not read it back."""

    def to_internal_value(self, value: Any) -> datetime:
        # Checked as written: DRF converts to UTC, and the offset is lost.
        try:
            written = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:
            written = None  # not a date: DRF refuses it below, in its own words
        if written is not None:
            try:
                check_offset(written)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc), code="out_of_range") from None
            if written.year not in STORED_YEARS:
                raise serializers.ValidationError("the date is out of range: years 2 to 9998", code="out_of_range")
        return super().to_internal_value(value)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 64, "pattern": SLUG_PATTERN})
class SlugReferenceField(serializers.SlugRelatedField):
    """A related object named by its slug, checked for a slug's shape before it is looked up:
    PostgreSQL refuses a NUL byte in the query itself."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not SLUG.fullmatch(data):
            raise serializers.ValidationError("not a slug: 1 to 64 letters, digits, - or _", code="invalid")
        return super().to_internal_value(data)
