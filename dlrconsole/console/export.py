"""CSV export of a search: the search page's query string, streamed row batch by row batch."""

from __future__ import annotations

import csv

from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view
from receipts.exports import export_rows
from receipts.filters import MessageFilter
from receipts.models import Message


class _Line:
    """A file for csv.writer that hands each line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


@require_GET
@console_view(roles.EXPORT)
def export(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    see_numbers = roles.can_see_numbers(request.user)
    filterset = MessageFilter(request.GET, queryset=Message.objects.all(), see_numbers=see_numbers)
    if not filterset.is_valid():
        reasons = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in filterset.errors.items())
        return HttpResponseBadRequest(f"Cannot export this search: {reasons}", content_type="text/plain")
    writer = csv.writer(_Line())
    rows = export_rows(filterset.qs, see_numbers=see_numbers)
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.csv"'
    return response
