"""A message's timeline: everything that happened to it, from every app, oldest first — its
registration, receipts and the conversions the product reported (receipts), the rules'
decisions and attempts (retries), what the product was told (the feed).
The message page and the API's message detail both show it."""

from __future__ import annotations

from receipts.models import Message
from receipts.selectors import TimelineEntry, conversion_entries, mask_entries, receipt_entries
from retries.feed.selectors import notification_entries
from retries.selectors import decision_entries


def message_timeline(message: Message, *, see_numbers: bool = True) -> list[TimelineEntry]:
    """Without `see_numbers`, the recipient is masked wherever it appears, raw provider
    payloads and headers included."""
    entries = [
        *receipt_entries(message),
        *conversion_entries(message),
        *decision_entries(message),
        *notification_entries(message),
    ]
    if not see_numbers:
        entries = mask_entries(entries, message.recipient)
    return sorted(entries, key=lambda entry: entry.at)
