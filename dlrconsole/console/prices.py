"""The price list, for admins: what a message costs per connection and destination country when
the provider's receipts do not say (receipts/prices.py applies it when a message is registered).
Changes are audited through the model's history, as in the Django admin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pycountry
from django import forms
from django.contrib import messages as flash
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from dlrconsole.console.common import HtmxHttpRequest, console_view
from receipts.countries import country_name
from receipts.models import Connection, ConnectionPrice
from retries.policy_vocabulary import country_choices

EDIT_PRICES = "receipts.change_connectionprice"
ANY_COUNTRY = ""


def currency_choices() -> list[tuple[str, str]]:
    return sorted(((c.alpha_3, f"{c.alpha_3} · {c.name}") for c in pycountry.currencies), key=lambda c: c[0])


def country_field_choices() -> list[tuple[str, str]]:
    return [(ANY_COUNTRY, "Any other country")] + [(choice.value, choice.label) for choice in country_choices()]


class ConnectionField(forms.ModelChoiceField[Connection]):
    def label_from_instance(self, obj: Connection) -> str:
        return obj.slug


class PriceForm(forms.ModelForm[ConnectionPrice]):
    connection = ConnectionField(queryset=Connection.objects.order_by("slug"))
    country = forms.ChoiceField(
        required=False,
        choices=country_field_choices,
        help_text=_("The destination; “Any other country” prices every country without a price of its own."),
    )
    price = forms.DecimalField(
        min_value=Decimal(0), max_value=Decimal(999_999), max_digits=12, decimal_places=6,
        help_text=_("What one message costs (all its parts), e.g. 0.0725."),
    )  # fmt: skip
    currency = forms.ChoiceField(
        choices=currency_choices, help_text=_("ISO 4217: prices in different currencies are never added together.")
    )

    class Meta:
        model = ConnectionPrice
        fields = ["connection", "country", "price", "currency"]

    def validate_unique(self) -> None:
        try:
            self.instance.validate_constraints()
        except forms.ValidationError:
            where = country_name(self.instance.country) if self.instance.country else "any other country"
            self.add_error(
                "country", f"{self.instance.connection.slug} already has a price for {where}: edit that one."
            )


def _row(price: ConnectionPrice) -> dict[str, Any]:
    return {
        "price": price,
        "country": f"{country_name(price.country)} ({price.country})" if price.country else "Any other country",
    }


@require_http_methods(["GET"])
@console_view(EDIT_PRICES)
def price_list(request: HtmxHttpRequest) -> HttpResponse:
    prices = ConnectionPrice.objects.select_related("connection").order_by("connection__slug", "-country")
    rows = [_row(price) for price in prices]
    return render(request, "console/prices.html", {"nav": "routes", "rows": rows})


@require_http_methods(["GET", "POST"])
@console_view(EDIT_PRICES)
def price_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    price = get_object_or_404(ConnectionPrice.objects.select_related("connection"), pk=pk) if pk else None
    initial = {"currency": "EUR"} if price is None else {}
    form = PriceForm(request.POST or None, instance=price, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        where = country_name(saved.country) if saved.country else "any other country"
        flash.success(
            request,
            f"{saved.connection.slug}, {where}: {saved.price.normalize():f} {saved.currency} per message, for "
            "messages registered from now on.",
        )
        return HttpResponseRedirect(reverse("console:prices"))
    context = {"nav": "routes", "form": form, "price": price}
    return render(request, "console/price_form.html", context, status=400 if form.errors else 200)


@require_POST
@console_view(EDIT_PRICES)
def price_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    price = get_object_or_404(ConnectionPrice.objects.select_related("connection"), pk=pk)
    where = country_name(price.country) if price.country else "any other country"
    price.delete()
    flash.success(request, f"Price of {price.connection.slug} for {where} deleted; messages already costed keep it.")
    return HttpResponseRedirect(reverse("console:prices"))
