"""The price list page: admins price a connection per country with choices, never free text; a
price applies to messages registered afterwards; every change is audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from receipts.models import ConnectionPrice
from receipts.phones import parse_number
from receipts.services import MessageRegistration, message_register
from tests.console.conftest import client_as
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def post_price(client, **fields):
    return client.post(reverse("console:price-new"), {"currency": "EUR", "country": "", **fields})


def test_an_admin_prices_a_connection_for_a_country_and_messages_registered_then_cost_that(admin_client_role):
    connection = ConnectionFactory(slug="mb-main")
    response = post_price(admin_client_role, connection=connection.pk, country="FR", price="0.0725")
    assert response.status_code == 302
    listed = admin_client_role.get(reverse("console:prices")).content.decode()
    assert "France (FR)" in listed
    assert "0.0725 EUR" in listed
    registration = MessageRegistration(
        connection=connection, provider_message_id="m-1", recipient=parse_number("+33612345678")
    )
    message, _ = message_register(registration)
    assert (message.cost, message.currency) == (Decimal("0.0725"), "EUR")


def test_a_catch_all_price_covers_every_other_country(admin_client_role):
    connection = ConnectionFactory()
    assert post_price(admin_client_role, connection=connection.pk, price="0.05", currency="USD").status_code == 302
    assert "Any other country" in admin_client_role.get(reverse("console:prices")).content.decode()
    price = ConnectionPrice.objects.get()
    assert (price.country, price.currency) == ("", "USD")


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"price": "-1"}, "price", "greater than or equal to 0"),
        ({"price": "cheap"}, "price", "Enter a number"),
        ({"price": "0.1234567"}, "price", "6 decimal places"),
        ({"price": "1000000"}, "price", "less than or equal to 999999"),
        ({"price": "0.05", "country": "ZZ"}, "country", "Select a valid choice"),
        ({"price": "0.05", "currency": "EURO"}, "currency", "Select a valid choice"),
    ],
)
def test_a_price_that_cannot_be_kept_is_refused_with_the_reason(admin_client_role, fields, field, reason):
    connection = ConnectionFactory()
    response = post_price(admin_client_role, connection=connection.pk, **fields)
    assert response.status_code == 400
    assert reason in " ".join(response.context["form"].errors[field])
    assert not ConnectionPrice.objects.exists()


def test_a_second_price_for_the_same_connection_and_country_is_refused_pointing_to_the_first(admin_client_role):
    connection = ConnectionFactory(slug="vonage-eu")
    post_price(admin_client_role, connection=connection.pk, country="DE", price="0.08")
    response = post_price(admin_client_role, connection=connection.pk, country="DE", price="0.09")
    assert response.status_code == 400
    assert "vonage-eu already has a price for Germany" in response.content.decode()
    assert ConnectionPrice.objects.get().price == Decimal("0.08")


def test_editing_and_deleting_a_price_are_audited(admin_client_role):
    connection = ConnectionFactory()
    post_price(admin_client_role, connection=connection.pk, country="ES", price="0.06")
    price = ConnectionPrice.objects.get()
    edited = admin_client_role.post(
        reverse("console:price", args=[price.pk]),
        {"connection": connection.pk, "country": "ES", "price": "0.065", "currency": "EUR"},
    )
    assert edited.status_code == 302
    assert admin_client_role.post(reverse("console:price-delete", args=[price.pk])).status_code == 302
    assert not ConnectionPrice.objects.exists()
    history = ConnectionPrice.history.filter(id=price.pk).order_by("history_date")
    assert [record.history_type for record in history] == ["+", "~", "-"]
    assert {record.history_user.username for record in history} == {"admin-user"}


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_only_admins_edit_the_price_list(role):
    client = client_as(role)
    assert client.get(reverse("console:prices")).status_code == 403
    assert post_price(client, connection=ConnectionFactory().pk, price="0.01").status_code == 403
    assert not ConnectionPrice.objects.exists()
