"""The request id every log line carries (django-guid keeps it in a context variable): the
id of the HTTP request being served, or in a Celery task the one of the request that caused
it. Work that handles many requests' events at once (the outbox's batches) binds each event's
id while it handles that event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django_guid import clear_guid, get_guid, set_guid

# Longer values are not ids we made or accepted (django-guid keeps only UUIDs).
MAX_LENGTH = 36


def current_request_id() -> str | None:
    return get_guid()


@contextmanager
def request_id_bound(request_id: object) -> Iterator[None]:
    """Log with `request_id` inside the block (when it is one), then with the previous id."""
    previous = get_guid()
    if isinstance(request_id, str) and 0 < len(request_id) <= MAX_LENGTH:
        set_guid(request_id)
    try:
        yield
    finally:
        if previous is None:
            clear_guid()
        else:
            set_guid(previous)
