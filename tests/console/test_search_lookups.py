"""The search box looks its matches up one index at a time and then pages them: the pages
show every match once, newest first, with the other filters, whether a lookup matched a few
rows or more than the search lists by id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from receipts import search
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db
SEARCH = reverse("console:search")


def walk(client: Client, query: dict[str, str]) -> list[int]:
    seen: list[int] = []
    for _ in range(20):  # bounded: a few pages at most
        page = client.get(SEARCH, query).context["page"]
        seen += [row.pk for row in page.rows]
        if page.older is None:
            return seen
        query = query | {"before": page.older.encode()}
    raise AssertionError("more pages than messages")


@pytest.mark.parametrize("per_lookup", [500, 40], ids=["listed by id", "more than listed by id"])
def test_a_busy_number_is_paged_whole_with_its_reference_and_id_matches(
    support: Client, monkeypatch: pytest.MonkeyPatch, per_lookup: int
) -> None:
    monkeypatch.setattr(search, "MATCHES_PER_LOOKUP", per_lookup)
    now = timezone.now()
    mine = [MessageFactory(recipient="+33612345678", submitted_at=now - timedelta(minutes=i // 2)) for i in range(110)]
    # The digits as a provider id and as a client reference match too.
    mine.append(MessageFactory(provider_message_id="+33 6 12 34 56 78", submitted_at=now - timedelta(days=3)))
    mine.append(MessageFactory(client_reference="+33 6 12 34 56 78", submitted_at=now - timedelta(days=9)))
    MessageFactory(recipient="+33698765432", submitted_at=now)
    expected = [m.pk for m in sorted(mine, key=lambda m: (m.submitted_at, m.pk), reverse=True)]
    assert walk(support, {"q": "+33 6 12 34 56 78"}) == expected


@pytest.mark.parametrize("per_lookup", [500, 3])
def test_the_other_filters_apply_to_the_matches(
    support: Client, monkeypatch: pytest.MonkeyPatch, per_lookup: int
) -> None:
    monkeypatch.setattr(search, "MATCHES_PER_LOOKUP", per_lookup)
    for _ in range(5):
        MessageFactory(recipient="+33612345678", status="delivered")
    failed = MessageFactory(recipient="+33612345678", status="undelivered")
    MessageFactory(recipient="+33698765432", status="undelivered")
    assert walk(support, {"q": "+33612345678", "status": "undelivered"}) == [failed.pk]


def test_text_that_matches_nothing_shows_no_rows(support: Client) -> None:
    MessageFactory(client_reference="")
    assert walk(support, {"q": "nothing-like-this"}) == []
