"""Phone numbers: parsing any common spelling into E.164 with its country (phonenumbers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.utils.translation import gettext


class InvalidNumber(ValueError):
    """The text is not a phone number we can place; the message says why."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    country: str  # ISO 3166 alpha-2, "" for non-geographic numbers


def parse_number(text: str, *, region: str = "") -> PhoneNumber:
    """Parse '+33 6 12 34 56 78', '0033612345678', '06 12 34 56 78' (with region FR), ...

    A leading 00 is the international prefix in most of the world; phonenumbers only knows
    that from a region, so it is rewritten to + when no region is given.
    """
    cleaned = text.strip()
    if not cleaned:
        raise InvalidNumber(gettext("empty phone number"))
    if cleaned.startswith("00") and not region:
        cleaned = "+" + cleaned[2:]
    try:
        parsed = phonenumbers.parse(cleaned, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(gettext("not a phone number: %(why)s") % {"why": exc._msg}) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(gettext("not a possible phone number for its country"))
    region_code = phonenumbers.region_code_for_number(parsed) or ""
    return PhoneNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        country=region_code if region_code.isalpha() else "",  # "001" is non-geographic
    )


def mask_number(e164: str) -> str:
    """+33612345678 → +336•••••678: enough to recognise, not enough to call."""
    if len(e164) < 8:
        return "•" * len(e164)
    return e164[:4] + "•" * (len(e164) - 7) + e164[-3:]


# A run of digits, with what may stand before an international number: +, URL-encoded +, 00.
_DIGIT_RUN = re.compile(r"(\+|%2[Bb]|00)?(\d+)")


def mask_number_in(value: Any, e164: str) -> Any:
    """`value` (text, or lists and dicts of text) with every spelling of `e164` masked.

    For raw provider payloads shown to someone who may not see numbers: providers write the
    recipient as E.164, without the +, URL-encoded, with 00 or in national form, so any run of
    digits that ends with the number's national digits is masked. Spellings split by spaces
    or dashes are not recognised; providers do not send those.
    """
    national = _national_digits(e164)
    if not national:
        return value

    def mask(match: re.Match[str]) -> str:
        prefix, digits = match.group(1) or "", match.group(2)
        if not digits.endswith(national):
            return match.group(0)
        return prefix + digits[:3] + "•" * max(len(digits) - 6, 1) + digits[-3:]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _DIGIT_RUN.sub(mask, item)
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


def _national_digits(e164: str) -> str:
    try:
        return str(phonenumbers.parse(e164, None).national_number)
    except phonenumbers.NumberParseException:
        return ""


def international(e164: str) -> str:
    """+33612345678 → +33 6 12 34 56 78: how people read a number; stored as E.164."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
