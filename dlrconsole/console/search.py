"""Message search: the search box and filters (the API's FilterSet), keyset pages, in place."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from receipts.filters import STATUS_FILTER_CHOICES, STATUS_GROUPS, UNSET_FIELDS, MessageFilter
from receipts.models import Connection
from receipts.reasons import REASONS, ErrorClass
from receipts.search import Cursor, InvalidCursor, MessagePage, SearchTerm, message_page
from receipts.selectors import message_list

MULTI_VALUED = ("status", "error_class", "reason", "unset")
# The fields a search matched on (SearchTerm.matched_fields), in the reader's language.
MATCHED_FIELDS = {
    "phone number": _("phone number"),
    "provider message id": _("provider message id"),
    "client reference": _("client reference"),
}


@require_GET
@console_view(roles.USE_CONSOLE)
def search(request: HtmxHttpRequest) -> HttpResponse:
    see_numbers = roles.can_see_numbers(request.user)
    filterset = MessageFilter(request.GET, queryset=message_list(), see_numbers=see_numbers)
    context = {
        "nav": "search",
        "form": filterset.form,
        "selected": {name: request.GET.getlist(name) for name in MULTI_VALUED},
        "statuses": STATUS_FILTER_CHOICES,
        # datetime-local has no zone: Django reads it in the active (the user's) time zone.
        "tz_name": timezone.get_current_timezone_name(),
        "classes": ErrorClass.choices,
        "reasons": sorted(REASONS),
        "status_groups": STATUS_GROUPS,
        "unset_fields": UNSET_FIELDS,
        "connections": list(Connection.objects.values_list("slug", flat=True)),
        "see_numbers": see_numbers,
        "can_open": request.user.has_perm(roles.VIEW_TIMELINE),
        "can_export": request.user.has_perm(roles.EXPORT),
        "has_filters": any(request.GET.get(name) for name in filterset.filters if name not in ("q", "region")),
    }
    try:
        before, after = (_cursor(request, name) for name in ("before", "after"))
    except InvalidCursor as exc:
        return render_page(request, "console/search.html", "results", context | {"problem": str(exc)}, status=400)
    if not filterset.is_valid():
        return render_page(request, "console/search.html", "results", context, status=400)
    page: MessagePage = message_page(filterset.qs, before=before, after=after)
    term: SearchTerm | None = filterset.form.cleaned_data.get("q") or None
    matched = [MATCHED_FIELDS.get(name, name) for name in term.matched_fields(page.rows)] if term else []
    context |= {"page": page, "term": term, "matched": matched}
    return render_page(request, "console/search.html", "results", context)


def _cursor(request: HtmxHttpRequest, name: str) -> Cursor | None:
    value = request.GET.get(name)
    return Cursor.decode(value) if value else None
