"""One suite for the providers whose requests carry several receipts: subclass it.

A request of N receipts writes N rows in one transaction, each with a raw payload and the kept
headers. Unbounded, a 1 MiB request repeated its whole body into each of thousands of rows
(50 MB stored for a 1 MiB Sinch report of 50 recipients). The suite pins, for each
multi-receipt provider:

- at most `adapter.max_events` receipts per request: that many parse, one more is refused
  (400) with the reason, and nothing is stored;
- what a request stores stays about its own size: each receipt keeps its own part of the
  body, and the parts add up to at most the body plus EVENT_OVERHEAD_CHARS per receipt, even
  when the body is mostly a field shared by all of them; through the real endpoint too.

A subclass (named `Test…`) sets `adapter`, `secret` and implements `request`, which builds a
real request of the provider carrying `count` receipts for distinct messages and `filler`
characters in a field the receipts share (a top-level field, a batch's client reference).
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.test import Client

from receipts.models import Receipt
from receipts.providers.base import (
    EVENT_OVERHEAD_CHARS,
    KEPT_HEADER_CHARS,
    PayloadError,
    ProviderAdapter,
    WebhookRequest,
)
from tests.factories import ConnectionFactory

# Near the 1 MiB body limit once the receipts are added.
FILLER = 900_000
MANY = 50


class MultiEventSuite:
    """Bounds every multi-receipt provider keeps. Not collected itself: subclass it."""

    adapter: ClassVar[ProviderAdapter]
    secret: ClassVar[str]

    def request(self, count: int, *, filler: int = 0) -> tuple[str, bytes, dict[str, str]]:
        """The path (under /hooks/<slug>/, with `{token}` where the token goes), the body and
        the headers of a request carrying `count` receipts and `filler` shared characters."""
        raise NotImplementedError

    def webhook_request(self, count: int, *, filler: int = 0) -> WebhookRequest:
        path, body, headers = self.request(count, filler=filler)
        return WebhookRequest(
            method="POST",
            url="https://dlr.example/hooks/batch/" + path.format(token=self.secret),
            headers=headers,
            body=body,
            path_token=self.secret if "{token}" in path else "",
        )

    def test_max_events_receipts_are_read(self) -> None:
        assert self.adapter.max_events > 1
        events = self.adapter.parse(self.webhook_request(self.adapter.max_events))
        assert len(events) == self.adapter.max_events

    def test_one_receipt_more_than_max_events_is_refused_with_the_reason(self) -> None:
        with pytest.raises(PayloadError, match=f"more than {self.adapter.max_events}"):
            self.adapter.parse(self.webhook_request(self.adapter.max_events + 1))

    @pytest.mark.parametrize("count", [2, MANY])
    def test_receipts_keep_their_own_parts_which_add_up_to_about_the_body(self, count: int) -> None:
        request = self.webhook_request(count, filler=FILLER)
        events = self.adapter.parse(request)
        assert len(events) == count
        assert all(event.raw for event in events)
        assert sum(len(event.raw) for event in events) <= len(request.raw_text()) + count * EVENT_OVERHEAD_CHARS

    @pytest.mark.django_db
    def test_a_large_request_of_many_receipts_stores_about_its_own_size(self, client: Client) -> None:
        connection = ConnectionFactory(provider=self.adapter.kind, secrets=[self.secret])
        path, body, headers = self.request(MANY, filler=FILLER)
        content_type = headers.pop("content-type")
        # A long header is kept cut: it is repeated in every receipt's row.
        headers["user-agent"] = "x" * 8000
        response = client.post(
            f"/hooks/{connection.slug}/{path.format(token=self.secret)}",
            data=body,
            content_type=content_type,
            headers=headers,
        )
        assert response.status_code == 200, response.content[:300]
        assert response.json()["received"] == MANY
        receipts = list(Receipt.objects.values_list("raw_body", "headers"))
        assert len(receipts) == MANY
        assert sum(len(raw) for raw, _ in receipts) <= len(body) + MANY * EVENT_OVERHEAD_CHARS
        assert all(len(value) <= KEPT_HEADER_CHARS for _, kept in receipts for value in kept.values())

    @pytest.mark.django_db
    def test_a_request_of_too_many_receipts_is_refused_and_stores_nothing(self, client: Client) -> None:
        connection = ConnectionFactory(provider=self.adapter.kind, secrets=[self.secret])
        path, body, headers = self.request(self.adapter.max_events + 1)
        response = client.post(
            f"/hooks/{connection.slug}/{path.format(token=self.secret)}",
            data=body,
            content_type=headers.pop("content-type"),
            headers=headers,
        )
        assert response.status_code == 400
        assert str(self.adapter.max_events) in response.json()["error"]
        assert not Receipt.objects.exists()
