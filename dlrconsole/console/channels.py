"""Fallback channels for the admin: list, create, edit (settings by the kind's fields, the
credential write-only), and a test send through the real sender whose result stays on the
channel. Writes are retries/policy_services.py's."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from dlrconsole.console.policy_forms import ChannelForm, TestSendForm
from retries.models import FallbackChannel
from retries.policy_services import channel_save, channel_test_send
from retries.senders.registry import SENDERS

EDIT_CHANNELS = "retries.change_fallbackchannel"


@require_http_methods(["GET"])
@console_view(EDIT_CHANNELS)
def channels_list(request: HtmxHttpRequest) -> HttpResponse:
    channels = FallbackChannel.objects.select_related("tested_by").order_by("slug")
    return render(request, "console/policies/channels.html", {"nav": "policies", "channels": channels})


def _initial(channel: FallbackChannel | None) -> dict[str, Any]:
    if channel is None:
        return {"enabled": True, "kind": "email"}
    return {"slug": channel.slug, "kind": channel.kind, "sender_id": channel.sender_id, "enabled": channel.enabled}


@require_http_methods(["GET", "POST"])
@console_view(EDIT_CHANNELS)
def channel_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    channel = get_object_or_404(FallbackChannel, pk=pk) if pk else None
    form = ChannelForm(request.POST or None, channel=channel, initial=_initial(channel))
    context: dict[str, Any] = {"nav": "policies", "channel": channel, "form": form, "test_form": TestSendForm()}
    # The settings shown are the chosen kind's: the one posted, asked for (the kind select
    # fetches them with htmx), or stored.
    kind = request.POST.get("kind") or request.GET.get("kind") or _initial(channel)["kind"]
    context["settings"] = form.setting_rows(kind if kind in SENDERS else "")
    if request.method == "GET" and request.GET.get("kind"):
        return render_page(request, "console/policies/channel_form.html", "settings", context)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = channel_save(
                    channel=channel, slug=data["slug"], kind=data["kind"], sender_id=data["sender_id"],
                    enabled=data["enabled"], settings=form.settings(), secret=data["secret"],
                )  # fmt: skip
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                flash.success(
                    request, _("Channel %(slug)s saved. Send a test to check it reaches people.") % {"slug": saved.slug}
                )
                return redirect("console:channel-edit", pk=saved.pk)
        return render(request, "console/policies/channel_form.html", context, status=400)
    return render(request, "console/policies/channel_form.html", context)


@require_POST
@console_view(EDIT_CHANNELS)
def channel_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(FallbackChannel, pk=pk)
    test_form = TestSendForm(request.POST)
    if test_form.is_valid():
        try:
            channel = channel_test_send(
                channel=channel, to=test_form.cleaned_data["to"], user=request.user, now=timezone.now()
            )
        except ValidationError as exc:
            test_form.add_error("to", exc)
        else:
            note = flash.success if channel.test_ok else flash.error
            note(request, f"Test {channel.test_summary}")
            return redirect("console:channel-edit", pk=channel.pk)
    form = ChannelForm(channel=channel, initial=_initial(channel))
    context = {
        "nav": "policies", "channel": channel, "form": form, "test_form": test_form,
        "settings": form.setting_rows(channel.kind),
    }  # fmt: skip
    return render(request, "console/policies/channel_form.html", context, status=400)
