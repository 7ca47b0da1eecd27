"""Every console page per role: who gets in, who is refused, who is sent to sign in."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse

from tests.console.conftest import HTMX
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def _pages(message_pk: int) -> dict[str, str]:
    return {
        "overview": reverse("console:overview"),
        "search": reverse("console:search"),
        "export": reverse("console:export"),
        "message": reverse("console:message", args=[message_pk]),
        "resend": reverse("console:resend", args=[message_pk]),
    }


@pytest.mark.parametrize("page", ["overview", "search", "export", "message", "resend"])
def test_anonymous_visitors_are_sent_to_sign_in(client: Client, page: str) -> None:
    url = _pages(MessageFactory().pk)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL))
    assert "next=" in response["Location"]


def test_an_htmx_poll_after_the_session_expired_sends_the_whole_page_to_sign_in(client: Client) -> None:
    response = client.get(
        reverse("console:overview"), HTTP_HX_CURRENT_URL="http://testserver/console/?window=1h", **HTMX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(resolve_url(settings.LOGIN_URL))
    assert "window%3D1h" in response["HX-Redirect"]


def test_the_root_sends_signed_in_users_to_the_overview_and_others_to_sign_in(client: Client, support: Client) -> None:
    assert support.get("/")["Location"] == reverse("console:overview")
    assert client.get("/")["Location"].startswith(resolve_url(settings.LOGIN_URL))


@pytest.mark.parametrize(("page", "status"), [
    ("overview", 200), ("search", 200), ("export", 200), ("message", 403), ("resend", 403),
])  # fmt: skip
def test_viewer_sees_overview_search_and_export_but_no_message_pages(viewer: Client, page: str, status: int) -> None:
    assert viewer.get(_pages(MessageFactory().pk)[page]).status_code == status


def test_viewer_cannot_resend_by_posting_either(viewer: Client) -> None:
    assert viewer.post(reverse("console:resend", args=[MessageFactory().pk])).status_code == 403


@pytest.mark.parametrize("page", ["overview", "search", "export", "message", "resend"])
def test_support_opens_every_console_page(support: Client, page: str) -> None:
    assert support.get(_pages(MessageFactory().pk)[page]).status_code == 200


@pytest.mark.parametrize("page", ["overview", "search", "export", "message", "resend"])
def test_admin_opens_every_console_page(admin_client_role: Client, page: str) -> None:
    assert admin_client_role.get(_pages(MessageFactory().pk)[page]).status_code == 200


def test_a_user_without_a_role_is_refused_the_console(django_user_model) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="nobody", password="unused"))
    response = client.get(reverse("console:overview"))
    assert response.status_code == 403
    assert b"You cannot open this page" in response.content


def test_an_unknown_message_is_a_404(support: Client) -> None:
    assert support.get(reverse("console:message", args=[987654321])).status_code == 404


def test_the_header_shows_the_role_and_offers_sign_out_as_a_post_form(support: Client, viewer: Client) -> None:
    page = support.get(reverse("console:overview")).content.decode()
    assert 'data-testid="role-badge"' in page
    assert ">support<" in page
    assert '<form method="post"' in page
    assert "Sign out" in page
    assert "Change password" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'hx-headers=\'{"X-CSRFToken"' in page
    assert ">viewer<" in viewer.get(reverse("console:overview")).content.decode()


def test_the_audit_log_link_shows_only_to_roles_that_may_read_it(support: Client, admin_client_role: Client) -> None:
    assert "Audit log" not in support.get(reverse("console:overview")).content.decode()
    admin_page = admin_client_role.get(reverse("console:overview")).content.decode()
    assert f'href="{reverse("audit-log")}"' in admin_page


def test_pages_load_htmx_from_the_project_not_a_cdn(support: Client) -> None:
    page = support.get(reverse("console:overview")).content.decode()
    assert "/static/django_htmx/htmx" in page
    assert "https://" not in page.split("</head>")[0]
