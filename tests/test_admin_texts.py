"""Message texts (OTP codes among them) are kept only to resend them: no admin page, list,
search or history shows them, to anyone, superusers included."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.factories import MessageFactory
from tests.webhooks import post_status

pytestmark = pytest.mark.django_db

CODE = "482913"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def message():
    message = MessageFactory(body=f"Your code is {CODE}")
    assert post_status(Client(), message, "delivered").status_code == 200
    return message


def admin_pages() -> list[str]:
    pages = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model._default_manager.values_list("pk", flat=True)[:3]:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
            pages.append(reverse("admin:{}_{}_history".format(*info), args=[pk]))
    return pages


def test_no_admin_page_shows_a_message_text(root, message):
    pages = admin_pages()
    assert reverse("admin:receipts_message_change", args=[message.pk]) in pages
    for page in pages:
        response = root.get(page)
        assert response.status_code == 200, page
        assert CODE not in response.content.decode(), page


def test_searching_the_message_admin_by_text_finds_nothing(root, message):
    page = root.get(reverse("admin:receipts_message_changelist"), {"q": CODE}).content.decode()
    assert "0 messages" in page
    assert message.provider_message_id not in page
