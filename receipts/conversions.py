"""Conversions the product reports (an OTP entered, a link opened): recorded once per message
and kind, checked against the message's own times. The trust score reads them (honesty.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from receipts.models import Conversion, Message

# The product's clock may run a little ahead of ours, or its report be stamped before the
# message's registration reached us; more than this is a mistake, refused with the reason.
CLOCK_SKEW = timedelta(minutes=5)


class ConversionRefused(ValueError):
    """The report cannot be true of this message; the message says why."""


def conversion_record(
    *, message: Message, kind: str, converted_at: datetime | None = None, now: datetime | None = None
) -> tuple[Conversion, bool]:
    """(the conversion, created). The same kind reported again returns the first report
    unchanged: the product may retry a request whose answer it lost."""
    now = now or timezone.now()
    at = converted_at or now
    if at > now + CLOCK_SKEW:
        raise ConversionRefused("converted_at is in the future")
    if at < message.submitted_at - CLOCK_SKEW:
        raise ConversionRefused("converted_at is before the message was submitted")
    return Conversion.objects.get_or_create(
        message=message, kind=kind, defaults={"converted_at": at, "received_at": now}
    )
