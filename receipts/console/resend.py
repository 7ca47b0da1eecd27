"""Resending a message by hand: a confirmation page (GET), then the resend (POST)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dlrconsole import roles
from receipts.console.common import HtmxHttpRequest, console_view
from receipts.console.message import get_message_or_404


@require_http_methods(["GET", "POST"])
@console_view(roles.RESEND)
def resend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_message_or_404(pk)
    context = {"nav": "search", "message": message, "see_numbers": roles.can_see_numbers(request.user)}
    if request.method == "GET":
        return render(request, "console/resend_confirm.html", context)
    # Imported here until the lead's resend service lands on main (retries/resend.py).
    from retries.resend import ResendRefused, resend_request

    try:
        attempt = resend_request(message=message, user=request.user)
    except ResendRefused as exc:
        return render(request, "console/resend_confirm.html", context | {"refused": str(exc)}, status=409)
    flash.success(request, f"Resend scheduled: attempt {attempt.number} of this message's chain.")
    return redirect("console:message", pk=message.pk)
