"""The URL that URL-signing providers (Twilio, Plivo, MessageBird) signed, behind a proxy."""

from __future__ import annotations

import pytest

from receipts.providers.base import WebhookRequest, url_as_called

PUBLIC = "https://dlr.example.com/hooks/twilio-eu/"


def arrived_at(url: str) -> WebhookRequest:
    return WebhookRequest(method="POST", url=url, headers={}, body=b"")


@pytest.mark.parametrize(
    ("seen_by_django", "public_url", "signed"),
    [
        ("http://10.0.0.5:8000/hooks/twilio-eu/?a=1", "", "http://10.0.0.5:8000/hooks/twilio-eu/?a=1"),
        ("http://10.0.0.5:8000/hooks/twilio-eu/?a=1&b=2", PUBLIC, PUBLIC + "?a=1&b=2"),
        ("http://10.0.0.5:8000/hooks/twilio-eu/", PUBLIC, PUBLIC),
        # A query written into the public URL is the one the request carries: replaced, not doubled.
        ("http://10.0.0.5:8000/hooks/twilio-eu/?a=1", PUBLIC + "?a=1", PUBLIC + "?a=1"),
        ("http://10.0.0.5:8000/hooks/twilio-eu/", PUBLIC + "?a=1", PUBLIC),
    ],
)
def test_the_signed_url_is_the_public_one_with_the_query_the_request_arrived_with(seen_by_django, public_url, signed):
    assert url_as_called(arrived_at(seen_by_django), public_url) == signed
