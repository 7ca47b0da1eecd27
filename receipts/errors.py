"""The error catalog: from a provider's error code to a normalized reason and class.

Three sources, strongest first:
1. the provider's own permanence flag on the receipt (Infobip `error.permanent`) decides the
   class; where it disagrees with the catalog, the classification says so;
2. an admin override for (provider, code), read from the database and cached per process
   (`override_cache`, like the connection cache: cleared in-process on save, other processes
   follow within `DLR_ERROR_CATALOG_CACHE_SECONDS`);
3. the shipped table, receipts/data/error_codes.csv, loaded once per process.

With no known code, the status decides: `expired` is an expiry, any other failure is `unknown`.
Classification runs on the hot path for every receipt, so it never queries the database except
to refresh the override cache.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from dlrconsole.lib.ttl_cache import TtlValue
from receipts.models import ClassSource, ErrorCodeOverride, normalize_code
from receipts.providers.registry import ADAPTERS
from receipts.reasons import REASONS, ErrorClass, Reason, RetryAdvice
from receipts.statuses import FAILURE_STATUSES, Status

TABLE_PATH = Path(__file__).parent / "data" / "error_codes.csv"

# A failure the catalog cannot explain is classified by its status.
CLASSIFIED_STATUSES: frozenset[str] = FAILURE_STATUSES | {Status.UNKNOWN.value}


class CatalogError(ValueError):
    """The shipped table is malformed: raised when it is loaded, so a bad row fails fast."""


@dataclass(frozen=True)
class Classification:
    reason: str
    error_class: str  # the effective class: the provider's flag where it gave one
    catalog_class: str  # what the catalog (table or override) says
    class_source: str  # "provider" when the provider's flag decided, "catalog" otherwise

    @property
    def provider_disagrees(self) -> bool:
        return provider_disagrees(self.class_source, self.error_class, self.catalog_class)


def provider_disagrees(class_source: str, error_class: str, catalog_class: str) -> bool:
    """The provider's own permanence flag decided the class, against the catalog (Infobip).
    The search filter's Q (receipts/filters.py) says the same in SQL."""
    return class_source == ClassSource.PROVIDER and error_class != catalog_class


NOT_A_FAILURE = Classification("", "", "", "")


@dataclass(frozen=True)
class Entry:
    """One code's row: its reason and, when it differs from the reason's usual class, its class."""

    reason: str
    error_class: str = ""


def parse_table(rows: Iterable[str]) -> dict[tuple[str, str], Entry]:
    """The shipped table from its CSV lines; '#' lines are comments."""
    table: dict[tuple[str, str], Entry] = {}
    reader = csv.DictReader(line for line in rows if not line.startswith("#"))
    for row in reader:
        where = f"{TABLE_PATH.name} line {reader.line_num}"
        provider, code = row["provider"].strip(), normalize_code(row["code"] or "")
        reason, error_class = row["reason"].strip(), (row["class"] or "").strip()
        if not provider or not code:
            raise CatalogError(f"{where}: provider and code are required")
        if reason not in REASONS:
            raise CatalogError(f"{where}: unknown reason {reason!r}")
        if error_class and error_class not in ErrorClass.values:
            raise CatalogError(f"{where}: unknown class {error_class!r}")
        if (provider, code) in table:
            raise CatalogError(f"{where}: {provider} {code} is listed twice")
        table[(provider, code)] = Entry(reason, error_class)
    return table


@cache
def shipped_table() -> dict[tuple[str, str], Entry]:
    with TABLE_PATH.open(encoding="utf-8", newline="") as lines:
        return parse_table(lines)


def _overrides() -> Mapping[tuple[str, str], Entry]:
    """All admin overrides, read in one query (there are few)."""
    return {
        (provider, normalize_code(code)): Entry(reason, error_class)
        for provider, code, reason, error_class in ErrorCodeOverride.objects.values_list(
            "provider", "code", "reason", "error_class"
        )
        if reason in REASONS
    }


override_cache: TtlValue[Mapping[tuple[str, str], Entry]] = TtlValue(
    _overrides, seconds=lambda: settings.DLR_ERROR_CATALOG_CACHE_SECONDS
)


def forget_overrides(**kwargs: Any) -> None:
    """post_save / post_delete of an override (receipts/apps.py; signals also cover the admin's
    bulk delete): this process classifies with the change at once; again after commit, in case
    a concurrent request reloaded the cache with the committed state in between."""
    override_cache.clear()
    transaction.on_commit(override_cache.clear)


def _shared_tables(provider: str) -> tuple[str, ...]:
    return ADAPTERS[provider].shared_code_tables if provider in ADAPTERS else ()


def catalog_entry(provider: str, code: str) -> Entry | None:
    """The override or shipped row for a provider's code, or None when the catalog does not know it."""
    if not code:
        return None
    key = normalize_code(code)
    overrides = override_cache.get()
    table = shipped_table()
    for source in (provider, *_shared_tables(provider)):
        entry = overrides.get((source, key)) or table.get((source, key))
        if entry is not None:
            return entry
    return None


def code_for_reason(provider: str, reason: str) -> str:
    """A shipped code of the provider's that means `reason` with its usual class, or "": what a
    test receipt carries to stand for that failure (retries/flow_fallback.py)."""
    table = shipped_table()
    for source in (provider, *_shared_tables(provider)):
        for (table_source, code), entry in table.items():
            if table_source == source and entry.reason == reason and not entry.error_class:
                return code
    return ""


def shipped_entry(provider: str, code: str) -> tuple[str, Entry] | None:
    """The shipped row for a provider's code and the table it is in, ignoring overrides."""
    key = normalize_code(code)
    for source in (provider, *_shared_tables(provider)):
        entry = shipped_table().get((source, key))
        if entry is not None:
            return source, entry
    return None


def classify_error(*, provider: str, status: str, error_code: str, permanent: bool | None = None) -> Classification:
    """The reason and class of a receipt; empty for delivered and in-flight statuses."""
    if status not in CLASSIFIED_STATUSES:
        return NOT_A_FAILURE
    entry = catalog_entry(provider, error_code)
    if entry is None:
        entry = Entry("expired" if status == Status.EXPIRED else "unknown")
    reason = REASONS[entry.reason]
    catalog_class = entry.error_class or reason.error_class.value
    if permanent is None:
        return _classification(reason, catalog_class, catalog_class, ClassSource.CATALOG)
    provider_class = ErrorClass.PERMANENT.value if permanent else ErrorClass.TEMPORARY.value
    return _classification(reason, provider_class, catalog_class, ClassSource.PROVIDER)


def _classification(reason: Reason, error_class: str, catalog_class: str, source: ClassSource) -> Classification:
    return Classification(
        reason=reason.slug,
        error_class=error_class,
        catalog_class=catalog_class,
        class_source=source.value,
    )


def retry_advice(reason: Reason, error_class: str) -> str:
    """The reason's advice, bent where the class was set against it: a provider that calls a
    failure permanent will fail it again on the same route, and one that calls it temporary
    expects a retry."""
    if error_class == ErrorClass.PERMANENT and reason.advice == RetryAdvice.SAME_ROUTE:
        return RetryAdvice.OTHER_ROUTE.value
    if error_class == ErrorClass.TEMPORARY and reason.advice == RetryAdvice.NEVER:
        return RetryAdvice.SAME_ROUTE.value
    return reason.advice.value


def describe_reason(reason: str, error_class: str) -> dict[str, str]:
    """What the API and pages show for a stored reason and class: advice, explanation, fix."""
    known = REASONS.get(reason)
    if known is None:
        return {"retry_advice": "", "explanation": "", "what_to_fix": ""}
    return {
        "retry_advice": retry_advice(known, error_class),
        "explanation": str(known.explanation),
        "what_to_fix": str(known.fix),
    }
