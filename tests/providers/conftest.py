"""Fixtures shared by the provider tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine

# After every time the payload fixtures carry (the latest: 2026-11-29). A provider's time is kept
# only up to a day ahead of our clock (receipts/providers/base.py), so a test that expects a
# fixture's time to read back as recorded must not depend on the day the suite runs.
FIXTURES_RECORDED = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixtures_recorded() -> Iterator[None]:
    """The clock set just after the fixtures were recorded, ticking, for every provider test:
    each one posts or parses recorded payloads whose times must read back as recorded."""
    with time_machine.travel(FIXTURES_RECORDED, tick=True):
        yield
