"""A cursor for statements that take whole columns as array parameters (`unnest(%(x)b::text[])`):
psycopg binds them on the server, in binary where the statement says `%b`, prepared once per
connection when DLR_DB_PREPARED_STATEMENTS allows.

Django's cursor lets psycopg choose each parameter's format, and psycopg writes a list in text
format in Python, escaping every element with a regular expression: ~2 µs an element, where in
binary each element is copied as it is (~0.2 µs). For the receipts' arrays of a 1,000-report
Infobip batch that was 410-450 ms (the raw bodies, full of quotes, 160 ms alone) where the
server ran the INSERT in 23 ms (bench/profile_batch.py); for the decision pass's held rows,
a tenth of a celery worker's time at 300 receipts/s (py-spy). Unprepared, the statement still
binds on the server (an unnamed statement), which a pooler in transaction mode passes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _ArrayCursor(psycopg.Cursor[Any]):
    prepared = False

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> _ArrayCursor:
        super().execute(query, params, prepare=self.prepared if prepare is None else prepare, binary=binary)
        return self


@contextmanager
def array_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor of `connection` (PostgreSQL) binding on the server. Wrapped as Django wraps its
    own cursors, so its statements are counted and logged as theirs are (CaptureQueriesContext,
    execute_wrappers) and its errors are Django's."""
    connection.ensure_connection()
    raw = _ArrayCursor(connection.connection)
    raw.prepared = settings.DLR_DB_PREPARED_STATEMENTS
    with (CursorDebugWrapper if connection.queries_logged else CursorWrapper)(raw, connection) as cursor:
        yield cursor
