"""A message's page: status, what to tell the end user, timeline, chain, the recipient's others."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.timeline import message_timeline
from receipts.errors import describe_reason
from receipts.models import Message
from receipts.reasons import RetryAdvice
from receipts.selectors import message_detail, recipient_other_messages
from receipts.sla import display_status, message_sla_seconds
from receipts.statuses import NO_RECEIPT, is_final
from retries.resend import ResendRefused, resend_against_advice, resend_refusal
from retries.selectors import escalation_state, message_chain


def get_message_or_404(pk: int) -> Message:
    try:
        return message_detail(pk)
    except Message.DoesNotExist:
        raise Http404("no such message") from None


@require_GET
@console_view(roles.VIEW_TIMELINE)
def message(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    found = get_message_or_404(pk)
    described = describe_reason(found.reason, found.error_class)
    advice = described["retry_advice"]
    now = timezone.now()
    can_resend = request.user.has_perm(roles.RESEND)
    context = {
        "nav": "search",
        "message": found,
        "final": is_final(found.status),
        "described": described,
        "advice_label": RetryAdvice(advice).label if advice in RetryAdvice.values else "",
        "timeline": message_timeline(found, see_numbers=roles.can_see_numbers(request.user)),
        "chain": message_chain(found),
        "others": recipient_other_messages(found),
        "see_numbers": roles.can_see_numbers(request.user),
        "can_resend": can_resend,
        "resend_refused": _resend_refused(found) if can_resend else "",
        "against_advice": resend_against_advice(found),
        "escalation": escalation_state(found),
        "now": now,
        "no_receipt": display_status(found, now) == NO_RECEIPT,
        "sla_seconds": message_sla_seconds(found),
    }
    return render(request, "console/message.html", context)


def _resend_refused(message: Message) -> str:
    """Why a resend cannot happen now (the button is not offered then), or ""."""
    try:
        resend_refusal(message)
    except ResendRefused as exc:
        return str(exc)
    return ""
