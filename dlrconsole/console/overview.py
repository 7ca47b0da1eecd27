"""The overview: how messages fare right now, refreshed in place every 30 s."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from receipts.overview import DEFAULT_WINDOW, WINDOWS, overview_summary


@require_GET
@console_view(roles.USE_CONSOLE)
def overview(request: HtmxHttpRequest) -> HttpResponse:
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        return HttpResponseBadRequest(f"window must be one of {', '.join(WINDOWS)}")
    context = {"nav": "overview", "summary": overview_summary(window=window), "windows": list(WINDOWS)}
    return render_page(request, "console/overview.html", "figures", context)
