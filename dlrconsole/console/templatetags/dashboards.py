"""Template helpers of the dashboard pages: times from histograms, changes, money."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import template

from dlrconsole.console.templatetags.console import duration

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """A time read from a histogram, in seconds, as people read it (4.2 s, 3 min 5 s)."""
    return duration(None if value is None else timedelta(seconds=value))


@register.filter
def points(value: float | None) -> str:
    """A delivery rate's change in percentage points, signed."""
    return "" if value is None else f"{value:+.1f} pts"


@register.filter
def change(value: float | None) -> str:
    """A volume's change as a signed percentage of the previous period's."""
    return "" if value is None else f"{value * 100:+.0f} %"


@register.filter
def money(amounts: dict[str, Decimal | None]) -> str:
    """Amounts per currency, each in its own currency (never added together)."""
    shown = [f"{amount.normalize():f} {currency}" for currency, amount in amounts.items() if amount is not None]
    return ", ".join(shown) or "—"
