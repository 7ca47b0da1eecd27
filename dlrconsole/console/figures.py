"""What the dashboard pages share: the window and filter form, a figure's link to the messages
behind it, table rows and their sorting.

Every figure links to the console search with the same cells' filters and the window's bucket
bounds (submitted_after/submitted_before, bucket starts in UTC): the search then lists exactly
the messages the figure counted, as of the last rollup pass.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from receipts.filters import two_letters
from receipts.models import Connection
from receipts.rollups.selectors import DEFAULT_WINDOW, WINDOWS, Comparison, Figures, Period, Scope


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# Offered in the picker; any IANA zone name typed in is accepted.
COMMON_ZONES = (
    "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
    "America/Los_Angeles", "America/Sao_Paulo", "Africa/Lagos", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
    "Australia/Sydney",
)  # fmt: skip


class FiguresForm(forms.Form):
    """A dashboard page's query string: the window, what to narrow to, how to show it."""

    window = forms.ChoiceField(choices=[(w, w) for w in WINDOWS], required=False)
    connection = forms.SlugField(max_length=64, required=False)
    country = forms.CharField(max_length=2, required=False, validators=[two_letters])
    network = forms.CharField(max_length=64, required=False)
    flow = forms.SlugField(max_length=64, required=False)
    tz = forms.CharField(max_length=64, required=False, label=_("Time zone"))
    sort = forms.CharField(max_length=32, required=False)
    by_network = forms.BooleanField(required=False, label=_("Split by network"))

    def __init__(self, *args: Any, sort_keys: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sort_keys = sort_keys

    def clean_window(self) -> str:
        return self.cleaned_data["window"] or DEFAULT_WINDOW

    def clean_connection(self) -> Connection | None:
        slug = self.cleaned_data["connection"]
        if not slug:
            return None
        found = Connection.objects.filter(slug=slug).first()
        if found is None:
            raise forms.ValidationError("no connection has this slug")
        return found

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    def clean_tz(self) -> str:
        # Without one asked for, the zone already active for this request (a person's own, where
        # a middleware activates it), else the project's (UTC).
        zone = self.cleaned_data["tz"] or timezone.get_current_timezone_name()
        if zone not in known_zones():
            raise forms.ValidationError("not a time zone name, e.g. Europe/Paris")
        return zone

    def clean_sort(self) -> str:
        sort = self.cleaned_data["sort"]
        if sort and sort.removeprefix("-") not in self.sort_keys:
            raise forms.ValidationError(f"must be one of {', '.join(self.sort_keys)}, with - to reverse")
        return sort

    def scope(self) -> Scope:
        data = self.cleaned_data
        connection = data.get("connection")
        return Scope(
            connection_id=connection.pk if connection else None,
            country=data.get("country") or None,
            network=data.get("network") or None,
            flow=data.get("flow") or None,
        )

    @property
    def scope_set(self) -> bool:
        """Whether anything narrows the figures, or another zone shows them (the filters stay open)."""
        data = getattr(self, "cleaned_data", {})
        return any(data.get(name) for name in ("connection", "country", "network", "flow")) or bool(self.data.get("tz"))

    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.cleaned_data.get("tz") or timezone.get_current_timezone_name())


def form_problems(form: forms.Form) -> list[str]:
    return [f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()]


def instant(moment: datetime) -> str:
    """A bucket bound as the search form's UTC datetime-local inputs show and send it back."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Links:
    """Search links for a group of cells in a period; `extra` narrows to one figure."""

    period: Period
    where: dict[str, str]  # search filters of the group (connection slug, country, ...)
    unset: tuple[str, ...] = ()
    search: str = "/"  # the search page's path

    def to(self, **extra: str) -> str:
        params: list[tuple[str, str]] = [
            ("submitted_after", instant(self.period.since)),
            ("submitted_before", instant(self.period.until)),
            *self.where.items(),
            *(("unset", name) for name in self.unset),
            *extra.items(),
        ]
        return f"{self.search}?{urlencode(params)}"

    @property
    def messages(self) -> str:
        return self.to()

    @property
    def delivered(self) -> str:
        return self.to(status_group="delivered")

    @property
    def failed(self) -> str:
        return self.to(status_group="failed")

    @property
    def pending(self) -> str:
        return self.to(status_group="pending")

    @property
    def missing(self) -> str:
        return self.to(missing_receipt="true")

    @property
    def resends(self) -> str:
        return self.to(resend="true")

    def reason(self, slug: str) -> str:
        return self.to(reason=slug)


def links_for(period: Period, scope: Scope, group: dict[str, Any], slugs: dict[int, str], *, search: str = "") -> Links:
    """The search filters that select the cells of `group` within `scope`. `search`: the
    search page's path, resolved once by a caller that makes many links."""
    values: dict[str, Any] = {
        "connection": scope.connection_id,
        "country": scope.country,
        "network": scope.network,
        "flow": scope.flow,
    } | group
    where: dict[str, str] = {}
    unset: list[str] = []
    for name, value in values.items():
        if value is None:
            continue
        if name == "connection":
            where[name] = slugs.get(value, "")
        elif value == "":
            unset.append(name)  # the provider told us none: search the messages without one
        else:
            where[name] = str(value)
    return Links(period, where, tuple(unset), search or reverse("console:search"))


@dataclass
class Row:
    """One line of a dashboard table: a group's figures, the period before, its links."""

    comparison: Comparison
    labels: dict[str, str]
    links: Links
    reasons: list[tuple[str, int, str]] = field(default_factory=list)  # (reason, messages, link)
    # The routes page's trust score of this route (receipts/honesty.py), with its detail link.
    trust: Any = None
    trust_link: str = ""

    @property
    def figures(self) -> Figures:
        return self.comparison.current


def slug_map(ids: set[int]) -> dict[int, str]:
    return dict(Connection.objects.filter(pk__in=ids).values_list("pk", "slug"))


def rows_of(
    comparisons: list[Comparison], *, period: Period, scope: Scope, slugs: dict[int, str], reasons: int = 3
) -> list[Row]:
    rows = []
    search = reverse("console:search")
    for comparison in comparisons:
        group = comparison.current.group
        labels = {
            name: (slugs.get(value, "?") if name == "connection" else str(value) or "—")
            for name, value in group.items()
        }
        links = links_for(period, scope, group, slugs, search=search)
        top = [(r.reason, r.messages, links.reason(r.reason)) for r in comparison.current.reasons[:reasons]]
        rows.append(Row(comparison, labels, links, top))
    return rows


# What each column sorts by; None (no figure yet) sorts last whichever the direction.
SORTS: dict[str, Callable[[Row], Any]] = {
    "connection": lambda row: row.labels.get("connection"),
    "country": lambda row: row.labels.get("country"),
    "network": lambda row: row.labels.get("network"),
    "flow": lambda row: row.labels.get("flow"),
    "volume": lambda row: row.figures.messages,
    "delivered": lambda row: row.figures.delivered,
    "failed": lambda row: row.figures.failed,
    "rate": lambda row: row.figures.delivery_rate,
    "ttd_p50": lambda row: row.figures.ttd_p50,
    "ttd_p95": lambda row: row.figures.ttd_p95,
    "missing": lambda row: row.figures.missing_rate,
    "cost": lambda row: min((v for v in row.figures.cost_per_delivered().values() if v is not None), default=None),
}


def sort_rows(rows: list[Row], sort: str, default: Sequence[str]) -> list[Row]:
    """Sorted by `sort` ("-" first for descending), ties and the default by `default` keys."""
    for key in reversed([sort, *default] if sort else list(default)):
        descending = key.startswith("-")
        pick = SORTS[key.removeprefix("-")]
        present = [row for row in rows if pick(row) is not None]
        absent = [row for row in rows if pick(row) is None]
        rows = sorted(present, key=pick, reverse=descending) + absent
    return rows


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = True


def sort_link(column: Column, current: str) -> tuple[str, str]:
    """The `sort` value a header's link sets, and the aria-sort it shows now."""
    if current == column.key:
        return f"-{column.key}", "ascending"
    if current == f"-{column.key}":
        return column.key, "descending"
    # Figures worth ranking start with the largest first; names from A.
    return (f"-{column.key}" if column.numeric else column.key), "none"
