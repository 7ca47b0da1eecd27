"""Webhook connections looked up by slug, cached per process for a few seconds.

Every receipt needs its connection; reading it from the database on every request cost a
sixth of the webhook's time under load (bench/README.md). Only enabled connections that exist
are kept (random slugs cannot grow the cache); a disabled connection or a rotated secret
applies at once in the process that saved it (receipts/apps.py) and within
DLR_CONNECTION_CACHE_SECONDS everywhere else. On a miss, a database that is down raises
DatabaseError.
"""

from __future__ import annotations

from django.conf import settings

from dlrconsole.lib.ttl_cache import TtlCache
from receipts.models import Connection


def _enabled_connection(slug: str) -> Connection | None:
    return Connection.objects.filter(slug=slug, enabled=True).first()


connection_cache: TtlCache[str, Connection | None] = TtlCache(
    _enabled_connection,
    seconds=lambda: settings.DLR_CONNECTION_CACHE_SECONDS,
    keep=lambda connection: connection is not None,
)
