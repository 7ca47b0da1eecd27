"""The admin's pages over the tables that grow with traffic read what they show and no more: no
COUNT(*) of the table (only counts bounded by a LIMIT), no DISTINCT scan for a filter's choices,
no LIKE '%term%' scan for a search, whatever filter, search or facet the URL asks for."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from receipts.models import Message, OutboxEvent, Receipt
from retries.feed.models import FeedDelivery
from retries.models import Attempt, Decision
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

# Each changelist with a filter of every kind it offers, a search, and facets asked for.
PAGES: dict[type, list[str]] = {
    Message: ["", "?status__exact=delivered", "?country=FR", "?connection__id__exact=1", "?q=%2B41+79+302+67+27",
              "?q=msg-000001", "?_facets=True", "?p=3"],
    Receipt: ["", "?status__exact=delivered&outcome__exact=applied", "?connection__id__exact=1", "?q=msg-000001",
              "?_facets=True"],
    OutboxEvent: ["", "?state=failed", "?kind__exact=status_changed", "?_facets=True"],
    Decision: ["", "?action__exact=retry_same&state__exact=scheduled", "?_facets=True"],
    Attempt: ["", "?outcome__exact=scheduled", "?_facets=True"],
    FeedDelivery: ["", "?status__exact=pending&event__type__exact=message.failed", "?endpoint__id__exact=1",
                   "?q=msg-000001", "?_facets=True"],
    Alert: ["", "?source__exact=rule&state__exact=open", "?acknowledged_at__isempty=1", "?_facets=True"],
}  # fmt: skip

BOUNDED_COUNT = re.compile(r"SELECT COUNT\(\*\) FROM \(SELECT .* LIMIT \d+\) subquery", re.IGNORECASE | re.DOTALL)


def scans(sql: str, table: str) -> list[str]:
    """What in `sql` would read the whole of `table`."""
    if not re.search(rf'"{table}"', sql):
        return []
    found = []
    if "COUNT(" in sql.upper() and not BOUNDED_COUNT.search(sql):
        found.append("an unbounded count")
    if "DISTINCT" in sql.upper():
        found.append("a DISTINCT")
    if re.search(r"\bLIKE\b", sql, re.IGNORECASE):
        found.append("a LIKE")
    return found


@pytest.fixture
def admin_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-0123456789"))
    return client


@pytest.mark.parametrize("model", list(PAGES), ids=lambda model: model.__name__)
def test_a_big_tables_changelist_never_scans_it(admin_client, model):
    MessageFactory.create_batch(3)
    opts = model._meta
    for query in PAGES[model]:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/{query}")
        assert response.status_code == 200, (query, response.status_code)
        problems = [(query, problem, q["sql"]) for q in captured for problem in scans(q["sql"], opts.db_table)]
        assert problems == []


def test_the_message_search_finds_a_number_in_any_spelling_and_a_provider_id_exactly(admin_client):
    wanted = MessageFactory(recipient="+41793026727", provider_message_id="abc-123")
    MessageFactory(provider_message_id="abc-1234")
    for term in ("+41 79 302 67 27", "0041793026727", "abc-123"):
        response = admin_client.get("/admin/receipts/message/", {"q": term})
        assert list(response.context["cl"].result_list) == [wanted], term
