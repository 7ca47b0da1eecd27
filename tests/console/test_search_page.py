"""The search page: one box for numbers, ids and references; the API's filters; keyset pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from receipts.search import Cursor
from tests.console.conftest import HTMX
from tests.factories import ConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db
SEARCH = reverse("console:search")


def _ids(response) -> list[int]:
    return [row.pk for row in response.context["page"].rows]


@pytest.mark.parametrize(
    ("typed", "region"),
    [("+33 6 12 34 56 78", ""), ("+33-6-12-34-56-78", ""), ("0033 6 12 34 56 78", ""), ("06 12 34 56 78", "FR")],
)
def test_a_number_in_any_common_spelling_finds_its_messages(support: Client, typed: str, region: str) -> None:
    wanted = MessageFactory(recipient="+33612345678")
    MessageFactory(recipient="+33698765432")
    response = support.get(SEARCH, {"q": typed, "region": region})
    assert _ids(response) == [wanted.pk]
    assert "Read as the phone number +33 6 12 34 56 78" in response.content.decode()
    assert "Matched on phone number." in response.content.decode()


def test_the_country_filter_serves_as_hint_for_a_national_number(support: Client) -> None:
    wanted = MessageFactory(recipient="+447700900123", country="GB")
    assert _ids(support.get(SEARCH, {"q": "07700 900123", "country": "gb"})) == [wanted.pk]


def test_a_national_number_without_a_hint_is_explained_and_looked_up_as_an_id(support: Client) -> None:
    MessageFactory(recipient="+33612345678")
    response = support.get(SEARCH, {"q": "06 12 34 56 78"})
    assert _ids(response) == []
    page = response.content.decode()
    assert "Not read as a phone number" in page
    assert "add a country hint" in page


def test_a_provider_message_id_or_client_reference_matches_exactly(support: Client) -> None:
    by_id = MessageFactory(provider_message_id="SM9f8e7d")
    by_reference = MessageFactory(client_reference="order-42")
    MessageFactory(provider_message_id="SM9f8e7d-other", client_reference="order-421")
    response = support.get(SEARCH, {"q": "SM9f8e7d"})
    assert _ids(response) == [by_id.pk]
    assert "Matched on provider message id." in response.content.decode()
    response = support.get(SEARCH, {"q": " order-42 "})
    assert _ids(response) == [by_reference.pk]
    assert "Matched on client reference." in response.content.decode()


def test_an_all_digit_message_id_is_found_even_though_it_reads_as_a_number(support: Client) -> None:
    by_id = MessageFactory(provider_message_id="0612345678", recipient="+447700900123")
    by_number = MessageFactory(recipient="+33612345678")
    response = support.get(SEARCH, {"q": "0612345678", "region": "FR"})
    assert "Read as the phone number +33 6 12 34 56 78" in response.content.decode()  # it does parse
    assert sorted(_ids(response)) == sorted([by_id.pk, by_number.pk])  # and the id still matches


def test_filters_go_through_the_api_filterset(support: Client) -> None:
    now = timezone.now()
    twilio = ConnectionFactory(slug="twilio-eu")
    wanted = MessageFactory(connection=twilio, status="undelivered", reason="absent_subscriber",
                            error_class="temporary", flow="signup", country="DE", submitted_at=now)  # fmt: skip
    MessageFactory(connection=twilio, status="delivered", flow="signup", country="DE", submitted_at=now)
    MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary", submitted_at=now)
    MessageFactory(connection=twilio, status="undelivered", reason="absent_subscriber", error_class="temporary",
                   flow="signup", country="DE", submitted_at=now - timedelta(days=3))  # fmt: skip
    query = {
        "status": ["undelivered", "expired"], "error_class": "temporary", "reason": "absent_subscriber",
        "flow": "signup", "country": "de", "connection": "twilio-eu",
        "submitted_after": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    }  # fmt: skip
    response = support.get(SEARCH, query)
    assert _ids(response) == [wanted.pk]
    assert 'value="undelivered" checked' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"connection": "no-such-connection"}, "connection"),
        ({"submitted_after": "yesterday"}, "submitted_after"),
        ({"status": "lost"}, "status"),
        ({"before": "not-a-cursor"}, "page position"),
    ],
)
def test_bad_filters_answer_400_with_the_reason(support: Client, query: dict[str, str], reason: str) -> None:
    response = support.get(SEARCH, query)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert 'data-testid="search-errors"' in response.content.decode()


def test_an_htmx_request_gets_only_the_results_fragment(support: Client) -> None:
    MessageFactory(provider_message_id="abc")
    fragment = support.get(SEARCH, {"q": "abc"}, **HTMX)
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html
    assert 'data-testid="search-box"' not in html
    assert "HX-Request" in fragment["Vary"]
    page = support.get(SEARCH, {"q": "abc"}).content.decode()
    assert "<html" in page
    assert 'id="results"' in page


def test_a_history_restore_gets_the_whole_page(support: Client) -> None:
    response = support.get(SEARCH, {"q": "abc"}, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in response.content.decode()


def test_the_form_updates_in_place_and_keeps_real_links(support: Client) -> None:
    page = support.get(SEARCH).content.decode()
    assert f'action="{SEARCH}"' in page
    assert 'hx-push-url="true"' in page
    assert 'hx-target="#results"' in page


def test_pages_walk_the_whole_result_newest_first_without_gaps_or_repeats(support: Client) -> None:
    now = timezone.now()
    # Ties on submitted_at across a page boundary: the id breaks them.
    made = [MessageFactory(submitted_at=now - timedelta(minutes=i // 3)) for i in range(130)]
    expected = [m.pk for m in sorted(made, key=lambda m: (m.submitted_at, m.pk), reverse=True)]
    seen: list[int] = []
    pages: list[list[int]] = []
    query: dict[str, str] = {}
    while True:
        response = support.get(SEARCH, query)
        pages.append(_ids(response))
        seen += pages[-1]
        older = response.context["page"].older
        if older is None:
            break
        assert f"before={older.encode()}" in response.content.decode()
        query = {"before": older.encode()}
    assert seen == expected
    assert [len(p) for p in pages] == [50, 50, 30]
    # And back: the newer link of the last page gives the middle page again.
    newer = response.context["page"].newer
    assert _ids(support.get(SEARCH, {"after": newer.encode()})) == pages[1]


def test_a_cursor_round_trips_to_the_microsecond() -> None:
    at = timezone.now().replace(microsecond=123456)
    assert Cursor.decode(Cursor(at, 42).encode()) == Cursor(at, 42)


def test_numbers_are_masked_for_viewers_and_whole_for_support(viewer: Client, support: Client) -> None:
    MessageFactory(recipient="+33612345678")
    assert "+33612345678" not in viewer.get(SEARCH).content.decode()
    assert "+336•••••678" in viewer.get(SEARCH).content.decode()
    assert "+33 6 12 34 56 78" in support.get(SEARCH).content.decode()  # whole, in international format


def test_rows_link_to_the_message_page_only_for_roles_that_may_open_it(viewer: Client, support: Client) -> None:
    message = MessageFactory()
    link = f'href="{reverse("console:message", args=[message.pk])}"'
    assert link in support.get(SEARCH).content.decode()
    assert link not in viewer.get(SEARCH).content.decode()
    assert 'data-testid="result-link"' not in viewer.get(SEARCH).content.decode()


def test_the_export_link_carries_the_search_without_the_page_position(support: Client) -> None:
    now = timezone.now()
    for i in range(60):
        MessageFactory(flow="signup", submitted_at=now - timedelta(seconds=i))
    first = support.get(SEARCH, {"flow": "signup"})
    response = support.get(SEARCH, {"flow": "signup", "before": first.context["page"].older.encode()})
    export_href = response.content.decode().split('data-testid="export-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert urlsplit(export_href).path == reverse("console:export")
    assert parse_qs(urlsplit(export_href.replace("&amp;", "&")).query) == {"flow": ["signup"]}


def test_a_page_of_results_costs_a_fixed_number_of_queries(support: Client, django_assert_max_num_queries) -> None:
    for _ in range(60):
        MessageFactory(connection=ConnectionFactory())
    # session, user, permissions, groups for the role badge, connections for the filter, the page.
    with django_assert_max_num_queries(8):
        response = support.get(SEARCH)
    assert len(_ids(response)) == 50


def test_the_api_takes_the_same_search_box(support: Client, django_user_model) -> None:
    wanted = MessageFactory(recipient="+33612345678")
    MessageFactory()
    response = support.get("/api/v1/messages/", {"q": "+33 6 12 34 56 78"})
    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


def test_the_forms_any_options_submitted_empty_are_no_filter(support: Client) -> None:
    """Browsers submit every select: `reason=&status=` means any reason, any status."""
    wanted = MessageFactory(recipient="+33612345678")
    response = support.get(SEARCH, {"q": "+33 6 12 34 56 78", "reason": "", "status": "", "error_class": ""})
    assert response.status_code == 200
    assert _ids(response) == [wanted.pk]
