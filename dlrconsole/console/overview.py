"""The overview: how messages fare in a window, from the rollups, refreshed in place every 30 s."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.charts import trend_chart
from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from dlrconsole.console.figures import COMMON_ZONES, FiguresForm, form_problems, links_for, rows_of, slug_map
from receipts.reasons import REASONS
from receipts.rollups.selectors import (
    BASIC_COLUMNS,
    WINDOWS,
    Comparison,
    Figures,
    regroup,
    rollup_figures,
    rollup_series,
    window_period,
)

BREAKDOWN_ROWS = 10


@require_GET
@console_view(roles.USE_CONSOLE)
def overview(request: HtmxHttpRequest) -> HttpResponse:
    form = FiguresForm(request.GET)
    context: dict[str, Any] = {"nav": "overview", "form": form, "windows": list(WINDOWS), "zones": COMMON_ZONES}
    if not form.is_valid():
        context["problems"] = form_problems(form)
        return render_page(request, "console/overview.html", "figures", context, status=400)
    context |= overview_context(form) | {"zone_name": form.cleaned_data["tz"]}
    with timezone.override(form.zone()):
        return render_page(request, "console/overview.html", "figures", context)


def overview_context(form: FiguresForm) -> dict[str, Any]:
    window = form.cleaned_data["window"]
    period, scope = window_period(window), form.scope()
    # One read of the window's cells per route serves the totals and both breakdowns.
    routes = rollup_figures(period=period, scope=scope, group_by=("connection", "country"))
    (before,) = rollup_figures(period=period.previous, scope=scope, columns=BASIC_COLUMNS, reasons=False)
    current = (regroup(routes, ()) or [Figures(group={})])[0]
    totals = Comparison(current, before if before.messages else None)
    by_connection = regroup(routes, ("connection",))[:BREAKDOWN_ROWS]
    by_country = regroup(routes, ("country",))[:BREAKDOWN_ROWS]
    slugs = slug_map({f.group["connection"] for f in by_connection} | {scope.connection_id or 0})
    links = links_for(period, scope, {}, slugs)
    points = rollup_series(period=period, scope=scope)[()]
    return {
        "window": window,
        "period": period,
        "totals": totals,
        "links": links,
        "updated": timezone.now(),
        "points": points,
        "chart": trend_chart(
            points,
            label=_("Messages and delivery rate per %(grain)s, last %(window)s")
            % {"grain": period.grain_name, "window": window},
        ),
        "reasons": [
            (r, str(REASONS[r.reason].explanation) if r.reason in REASONS else "", links.reason(r.reason))
            for r in totals.current.reasons[:5]
        ],
        "by_connection": rows_of([Comparison(f, None) for f in by_connection], period=period, scope=scope, slugs=slugs),
        "by_country": rows_of([Comparison(f, None) for f in by_country], period=period, scope=scope, slugs=slugs),
    }
