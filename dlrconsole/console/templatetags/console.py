"""Template helpers of the console pages: badges, masked numbers, payloads, durations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext_lazy

from dlrconsole import roles
from receipts.models import Message
from receipts.phones import international, mask_number
from receipts.reasons import REASONS, ErrorClass
from receipts.reasons import reason_label as reason_words
from receipts.sla import NO_RECEIPT_LABEL, display_status
from receipts.statuses import NO_RECEIPT, STATUS_COLOURS, Status
from retries.models import Attempt
from retries.selectors import EscalationState, attempt_outcome

register = template.Library()


@register.simple_tag
def status_badge(status: str) -> SafeString:
    if status == NO_RECEIPT:
        label, colour = str(NO_RECEIPT_LABEL), "amber"
    else:
        label = str(Status(status).label) if status in Status.values else status
        colour = STATUS_COLOURS.get(status, "grey")
    return format_html('<span class="badge badge-{}" data-testid="status-badge">{}</span>', colour, label)


@register.filter
def phone(number: str, see_numbers: bool) -> str:
    """The number as the viewer may see it: whole (in international format) for roles that talk
    to end users, masked for the others."""
    return international(number) if see_numbers else mask_number(number)


@register.filter
def shown_status(message: Message) -> str:
    """The status a person should read: "no receipt" for one pending past its receipt SLA."""
    return display_status(message, timezone.now())


@register.filter
def reason_label(slug: str) -> str:
    """A reason in words ("unknown subscriber"), not its code, in the reader's language."""
    return reason_words(slug) if slug else ""


@register.filter
def reason_applies(slug: str) -> str:
    known = REASONS.get(slug)
    return known.applies if known else ""


@register.simple_tag
def when(value: datetime | None, fmt: str = "Y-m-d H:i:s") -> SafeString | str:
    """A time in the viewer's time zone (their profile's), with UTC on hover."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} <span class="tz">{}</span></time>',
        utc.isoformat(), format_date(utc, "Y-m-d H:i:s"), format_date(local, fmt), local.tzname() or "",
    )  # fmt: skip


@register.simple_tag
def clock_behind(provider_time: datetime | None, submitted_at: datetime) -> str:
    """A provider time before our submission time can only be the provider's clock: say so."""
    if provider_time is None or provider_time >= submitted_at:
        return ""
    seconds = round((submitted_at - provider_time).total_seconds())
    return gettext(
        "This provider time is before we submitted the message: the provider's clock is %(seconds)s s behind ours."
    ) % {"seconds": seconds}


@register.simple_tag
def role_of(user: Any) -> str:
    return roles.user_role(user)


@register.filter
def pretty_payload(raw: str) -> str:
    """A receipt's raw body made readable: JSON indented, a form one field per line, anything
    else as received. Escaped by the template like any text."""
    text = raw.strip()
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):
        # RecursionError: nesting the webhook accepted (json.loads there ran on a shorter
        # stack) can be too deep to parse again inside template rendering. Shown as received.
        pass
    if text and "\n" not in text and "=" in text:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return raw
        return "\n".join(f"{key} = {value}" for key, value in pairs)
    return raw


@register.filter
def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (ValueError, RecursionError):
        return gettext("(too deeply nested to show)")


@register.filter
def duration(value: timedelta | None) -> str:
    """A delivery time as people read it: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


@register.filter
def share(part: int, whole: int) -> int:
    """A bar's length in percent of the largest bar."""
    return round(100 * part / whole) if whole else 0


@register.filter
def seconds_words(seconds: int) -> str:
    return duration(timedelta(seconds=seconds))


@register.filter
def deadline_passed(state: EscalationState, now: datetime) -> bool:
    return state.deadline_passed(now)


@register.filter(name="attempt_outcome")
def attempt_outcome_words(attempt: Attempt) -> str:
    return attempt_outcome(attempt)


@register.filter
def status_label(status: str) -> str:
    """A status in words for a sentence ("undelivered"), in the reader's language."""
    return str(Status(status).label).lower() if status in Status.values else status


@register.filter
def class_label(error_class: str) -> str:
    """An error class in words for a sentence ("temporary"), in the reader's language."""
    return str(ErrorClass(error_class).label).lower() if error_class in ErrorClass.values else error_class


# A timeline entry's kind as the reader says it; the API keeps the codes.
ENTRY_KINDS = {
    "registered": pgettext_lazy("timeline entry", "registered"),
    "receipt": pgettext_lazy("timeline entry", "receipt"),
    "decision": pgettext_lazy("timeline entry", "decision"),
    "attempt": pgettext_lazy("timeline entry", "attempt"),
    "notification": pgettext_lazy("timeline entry", "notification"),
}


@register.filter
def entry_kind(kind: str) -> str:
    return str(ENTRY_KINDS.get(kind, kind))


# A fallback test's evidence kind (receipts/flows FallbackTest.evidence) as the reader says it.
EVIDENCE_KINDS = {
    "sent": pgettext_lazy("fallback test evidence", "sent"),
    "received": pgettext_lazy("fallback test evidence", "received"),
    "decided": pgettext_lazy("fallback test evidence", "decided"),
    "note": pgettext_lazy("fallback test evidence", "note"),
}


@register.filter
def evidence_kind(kind: str) -> str:
    return str(EVIDENCE_KINDS.get(kind, kind))
