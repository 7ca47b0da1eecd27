"""Resending a message by hand: a confirmation page (GET), then the resend (POST)."""

from __future__ import annotations

import re
import uuid

from django.contrib import messages as flash
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.console.message import get_message_or_404
from retries.resend import ResendRefused, resend_refusal, resend_request

# The confirmation form's one-time key: a double-clicked or re-posted form resends once.
REQUEST_KEY = re.compile(r"[0-9a-f]{32}")


@require_http_methods(["GET", "POST"])
@console_view(roles.RESEND)
def resend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_message_or_404(pk)
    context = {"nav": "search", "message": message, "see_numbers": roles.can_see_numbers(request.user)}
    if request.method == "GET":
        try:
            resend_refusal(message)
        except ResendRefused as exc:
            # Said before asking for confirmation, so nobody confirms what cannot happen.
            return render(request, "console/resend_confirm.html", context | {"refused": str(exc)})
        return render(request, "console/resend_confirm.html", context | {"request_key": uuid.uuid4().hex})
    request_key = request.POST.get("request_key", "")
    if not REQUEST_KEY.fullmatch(request_key):
        return HttpResponseBadRequest("The confirmation form is missing its key; open the resend page again.")
    try:
        attempt = resend_request(message=message, user=request.user, request_key=request_key)
    except ResendRefused as exc:
        return render(request, "console/resend_confirm.html", context | {"refused": str(exc)}, status=409)
    flash.success(request, f"Resend scheduled: attempt {attempt.number} of this message's chain.")
    return redirect("console:message", pk=message.pk)
