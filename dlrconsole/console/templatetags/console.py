"""Template helpers of the console pages: badges, masked numbers, payloads, durations."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dlrconsole import roles
from receipts.phones import mask_number
from receipts.statuses import STATUS_COLOURS, Status

register = template.Library()


@register.simple_tag
def status_badge(status: str) -> SafeString:
    label = Status(status).label if status in Status.values else status
    colour = STATUS_COLOURS.get(status, "grey")
    return format_html('<span class="badge badge-{}" data-testid="status-badge">{}</span>', colour, label)


@register.filter
def phone(number: str, see_numbers: bool) -> str:
    """The number as the viewer may see it: whole for roles that talk to end users."""
    return number if see_numbers else mask_number(number)


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
        return "(too deeply nested to show)"


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
