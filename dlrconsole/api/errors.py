"""API errors: DRF's answers, plus 503 (never 500) when the database is unreachable."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DatabaseError):
        logger.exception("API request failed on the database")
        return Response({"detail": "temporarily unavailable, retry later"}, status=503)
    return drf_exception_handler(exc, context)
