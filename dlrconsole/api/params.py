"""Query parameters the API refuses rather than reads loosely: empty values and page sizes.

The console's search form submits every field, empty ones meaning "any"; a program that sends
`status=` or `submitted_after=` has a bug, and answering as if the filter were not there hides
it behind a plausible list. So the API refuses an empty parameter with 400 and the reason.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

# PostgreSQL's bigint: the largest primary key a filter can name.
MAX_ID = 2**63 - 1


def refuse_empty_parameters(request: Request) -> None:
    empty = sorted({name for name, value in request.query_params.lists() if "" in value})
    if empty:
        raise ValidationError(
            {name: ["may not be empty: leave the parameter out for no filter"] for name in empty}, code="blank"
        )


class RefusesEmptyParameters:
    """For API viewsets: an empty query parameter is a 400, after authentication and permissions."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # A method the route does not serve is answered 405 whatever its parameters.
        if getattr(self, "action", None) not in (None, "metadata"):
            refuse_empty_parameters(request)


class NewestFirstPagination(CursorPagination):
    """Newest first by primary key: unique and indexed, so pages stay fast at any depth. A
    page size out of range is refused instead of quietly replaced by the default."""

    ordering = "-id"
    page_size = 50

    def get_page_size(self, request: Request) -> int:
        if not self.page_size_query_param or self.page_size_query_param not in request.query_params:
            return self.page_size
        raw = request.query_params[self.page_size_query_param]
        limit = self.max_page_size or self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(limit)) and 1 <= int(raw) <= limit):
            raise ValidationError({self.page_size_query_param: [f"must be a whole number from 1 to {limit}"]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # DRF decodes the position as text and the query would fail on it: the ordering is the
        # primary key, so a position of ours is a whole number in bigint's range.
        position = str(cursor.position) if cursor and cursor.position is not None else ""
        if position and not (position.isascii() and position.isdigit() and int(position) <= MAX_ID):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size or self.page_size}
            else:
                parameter["description"] = "A page link's cursor, from `next` or `previous`; 404 if not one of ours."
                parameter["schema"]["minLength"] = 1
        return parameters
