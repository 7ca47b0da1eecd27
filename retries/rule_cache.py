"""The enabled rules, read once and kept for a few seconds: every decision tries them in order,
and reading them (with their connections) was a quarter of a decision's time
(bench/README.md, decision latency). Saving or deleting a rule in this process clears the cache
at once; other processes see the change within DLR_RULES_CACHE_SECONDS."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings

from retries.models import Rule


class RuleCache:
    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> list[Rule]:
        """Enabled rules in order, their connections prefetched."""
        now = time.monotonic()
        if now - self._loaded_at < settings.DLR_RULES_CACHE_SECONDS:
            return self._rules
        rules = list(Rule.objects.filter(enabled=True).prefetch_related("connections"))
        with self._lock:
            self._rules, self._loaded_at = rules, now
        return rules

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._loaded_at = float("-inf")


rule_cache = RuleCache()
