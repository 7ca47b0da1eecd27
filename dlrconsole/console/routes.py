"""Routes and flows: the rollups' figures side by side, per connection and country (and network)
or per flow, sortable by any column, each figure linking to the messages behind it."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from dlrconsole.console.figures import (
    COMMON_ZONES,
    SORTS,
    Column,
    FiguresForm,
    Row,
    form_problems,
    rows_of,
    slug_map,
    sort_link,
    sort_rows,
)
from receipts.honesty import TrustScore, route_trust_scores
from receipts.rollups.selectors import WINDOWS, Period, Scope, rollup_comparison, window_period

# Labels marked for the catalog here and translated where the table is drawn ({% translate column.label %}).
FIGURE_COLUMNS = (
    Column("volume", gettext_noop("Messages")),
    Column("rate", gettext_noop("Delivery rate")),
    Column("ttd_p50", gettext_noop("Delivery p50")),
    Column("ttd_p95", gettext_noop("Delivery p95")),
    Column("failed", gettext_noop("Failed")),
    Column("missing", gettext_noop("Missing receipts")),
    Column("cost", gettext_noop("Cost per delivered")),
)


def _table_page(
    request: HtmxHttpRequest, *, nav: str, title: str, group_by: Sequence[str], default_sort: Sequence[str]
) -> HttpResponse:
    form = FiguresForm(request.GET, sort_keys=tuple(SORTS))
    template = "console/routes.html"
    context: dict[str, Any] = {
        "nav": nav,
        "title": title,
        "form": form,
        "windows": list(WINDOWS),
        "zones": COMMON_ZONES,
    }
    if not form.is_valid():
        context["problems"] = form_problems(form)
        return render_page(request, template, "table", context, status=400)
    if nav == "routes" and form.cleaned_data["by_network"]:
        group_by = (*group_by, "network")
    window, scope, sort = form.cleaned_data["window"], form.scope(), form.cleaned_data["sort"]
    period = window_period(window)
    comparisons = rollup_comparison(period=period, scope=scope, group_by=group_by)
    slugs = slug_map({c.current.group.get("connection", 0) for c in comparisons})
    rows = sort_rows(rows_of(comparisons, period=period, scope=scope, slugs=slugs), sort, default_sort)
    if nav == "routes":
        _add_trust(rows, period=period, scope=scope, group_by=group_by, window=window, slugs=slugs)
    columns = [Column(name, name.capitalize(), numeric=False) for name in group_by] + list(FIGURE_COLUMNS)
    headers = [(column, *sort_link(column, sort)) for column in columns]
    context |= {
        "window": window,
        "period": period,
        "rows": rows,
        "group_by": group_by,
        "headers": headers,
        "zone_name": form.cleaned_data["tz"],
    }
    with timezone.override(form.zone()):
        return render_page(request, template, "table", context)


def trust_scores(*, period: Period, scope: Scope, group_by: Sequence[str]) -> list[TrustScore]:
    """The routes' trust scores, reused for DLR_TRUST_CACHE_SECONDS: they read the window's latest
    20,000 delivered receipts (receipts/honesty.py), about 300 ms at 10 million messages where
    the rest of the page reads the rollups in tens of milliseconds (bench/monitoring_scale.py),
    and a score judges the whole window, so a minute or two of age changes nothing it says. A
    cache that cannot be reached is skipped."""
    seconds = settings.DLR_TRUST_CACHE_SECONDS
    # Per language: a score's reasons are words in the language of the request that judged it.
    judged = (period, scope, tuple(group_by), translation.get_language())
    key = "routes:trust:" + hashlib.sha256(repr(judged).encode()).hexdigest()
    if seconds:
        try:
            cached = cache.get(key)
        except Exception:
            cached = None
        if cached is not None:
            return list(cached)
    scores = route_trust_scores(period=period, scope=scope, group_by=group_by)
    if seconds:
        with contextlib.suppress(Exception):
            cache.set(key, scores, seconds)
    return scores


def _add_trust(
    rows: list[Row], *, period: Period, scope: Scope, group_by: Sequence[str], window: str, slugs: dict[int, str]
) -> None:
    """Each route's trust score (receipts/honesty.py) and the link to why."""
    found = trust_scores(period=period, scope=scope, group_by=group_by)
    scores = {tuple(t.route[name] for name in group_by): t for t in found}
    detail = reverse("console:route-trust")
    for row in rows:
        group = row.figures.group
        row.trust = scores.get(tuple(group[name] for name in group_by))
        query = {"window": window, "connection": slugs.get(group["connection"], ""), "country": group["country"]}
        if "network" in group:
            query["network"] = group["network"]
        row.trust_link = f"{detail}?{urlencode(query)}"


@require_GET
@console_view(roles.USE_CONSOLE)
def route_trust(request: HtmxHttpRequest) -> HttpResponse:
    """One route's trust score: the signals it stands on and why it is low, in words."""
    form = FiguresForm(request.GET, sort_keys=())
    context: dict[str, Any] = {"nav": "routes", "form": form}
    if not form.is_valid() or not form.cleaned_data["connection"]:
        context["problems"] = form_problems(form) if form.errors else [_("Choose a route: a connection and a country.")]
        return render_page(request, "console/route_trust.html", "trust", context, status=400)
    window = form.cleaned_data["window"]
    period = window_period(window)
    [judged] = route_trust_scores(period=period, scope=form.scope(), group_by=())
    context |= {"trust": judged, "window": window, "period": period, "data": form.cleaned_data}
    with timezone.override(form.zone()):
        return render_page(request, "console/route_trust.html", "trust", context)


@require_GET
@console_view(roles.USE_CONSOLE)
def routes(request: HtmxHttpRequest) -> HttpResponse:
    return _table_page(
        request,
        nav="routes",
        title=_("Routes"),
        group_by=("country", "connection"),
        default_sort=("country", "-volume"),
    )


@require_GET
@console_view(roles.USE_CONSOLE)
def flows(request: HtmxHttpRequest) -> HttpResponse:
    return _table_page(request, nav="flows", title=_("Flows"), group_by=("flow",), default_sort=("-volume", "flow"))
