"""Resending a message by hand: a confirmation page (GET), then the resend (POST)."""

from __future__ import annotations

import re
import uuid

from django.contrib import messages as flash
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from dlrconsole.audit.services import audit_action
from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.console.message import get_message_or_404
from receipts.reasons import REASONS
from retries.resend import MAX_REASON_CHARS, ResendRefused, resend_against_advice, resend_refusal, resend_request

# The confirmation form's one-time key: a double-clicked or re-posted form resends once.
REQUEST_KEY = re.compile(r"[0-9a-f]{32}")
REASON_NEEDED = _("Say why this message is resent although its failure is never retried.")


@require_http_methods(["GET", "POST"])
@console_view(roles.RESEND)
def resend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_message_or_404(pk)
    against_advice = resend_against_advice(message)
    known = REASONS.get(message.reason)
    context = {
        "nav": "search",
        "message": message,
        "see_numbers": roles.can_see_numbers(request.user),
        "against_advice": against_advice,
        "explanation": known.explanation if known else "",
        "max_reason": MAX_REASON_CHARS,
    }
    if request.method == "GET":
        try:
            resend_refusal(message)
        except ResendRefused as exc:
            # Said before asking for confirmation, so nobody confirms what cannot happen.
            return render(request, "console/resend_confirm.html", context | {"refused": str(exc)})
        return render(request, "console/resend_confirm.html", context | {"request_key": uuid.uuid4().hex})
    request_key = request.POST.get("request_key", "")
    if not REQUEST_KEY.fullmatch(request_key):
        return HttpResponseBadRequest(gettext("The confirmation form is missing its key; open the resend page again."))
    reason = " ".join(request.POST.get("reason", "").split())
    if against_advice and (not reason or len(reason) > MAX_REASON_CHARS):
        problem = (
            REASON_NEEDED
            if not reason
            else gettext("The reason must be at most %(limit)s characters.") % {"limit": MAX_REASON_CHARS}
        )
        context |= {"request_key": request_key, "reason_problem": problem, "reason": reason}
        return render(request, "console/resend_confirm.html", context, status=400)
    try:
        with transaction.atomic():
            attempt = resend_request(
                message=message, user=request.user, request_key=request_key, reason=reason if against_advice else ""
            )
            if against_advice:
                label = "Resent against the catalog's “never retry”"
                change = {"field": "reason", "label": label, "old": "", "new": reason}
                audit_action(user=request.user, instance=attempt, changes=[change], action=AuditEntry.Action.CREATED)
    except ResendRefused as exc:
        return render(request, "console/resend_confirm.html", context | {"refused": str(exc)}, status=409)
    flash.success(
        request, gettext("Resend scheduled: attempt %(number)s of this message's chain.") % {"number": attempt.number}
    )
    return redirect("console:message", pk=message.pk)
