"""Erasing a recipient's number from the console: the number (GET/POST), then what will be
erased and the number typed again to confirm (POST), then the rows erased per table."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.erasure import number_erase, number_erasure_preview
from receipts.phones import InvalidNumber, mask_number, parse_number

MAX_INPUT = 40


@require_http_methods(["GET", "POST"])
@console_view(roles.ERASE_NUMBERS)
def erase_number(request: HtmxHttpRequest) -> HttpResponse:
    context: dict[str, object] = {"nav": "audit", "max_input": MAX_INPUT}
    if request.method == "GET":
        return render(request, "console/erase_number.html", context)
    typed = request.POST.get("number", "")[:MAX_INPUT]
    try:
        number = parse_number(typed).e164
    except InvalidNumber as exc:
        context |= {"number_problem": f"{exc}. Type it in international form, e.g. +41 79 302 67 27."}
        return render(request, "console/erase_number.html", context, status=400)
    context |= {"number": number, "masked": mask_number(number), "found": number_erasure_preview(number)}
    if "confirm" not in request.POST:
        return render(request, "console/erase_number.html", context)
    try:
        confirmed = parse_number(request.POST.get("confirm", "")[:MAX_INPUT]).e164
    except InvalidNumber:
        confirmed = ""
    if confirmed != number:
        context["confirm_problem"] = "That is not the same number: nothing was erased. Type it again."
        return render(request, "console/erase_number.html", context, status=400)
    erased = number_erase(e164=number, user=request.user)
    return render(request, "console/erase_number.html", {"nav": "audit", "erased": erased})
