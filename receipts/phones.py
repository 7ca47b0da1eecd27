"""Phone numbers: parsing any common spelling into E.164 with its country (phonenumbers)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers


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
        raise InvalidNumber("empty phone number")
    if cleaned.startswith("00") and not region:
        cleaned = "+" + cleaned[2:]
    try:
        parsed = phonenumbers.parse(cleaned, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc._msg}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber("not a possible phone number for its country")
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
