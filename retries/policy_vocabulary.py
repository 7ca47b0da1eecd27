"""What a rule's conditions may name, for the policy editor's choices and its server-side checks:
flows (configured, seen recently, or already in a rule), countries (ISO 3166 alpha-2 regions
phonenumbers knows), statuses, error classes and reasons (the receipts vocabulary)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from receipts.countries import country_name
from receipts.flows.selectors import flow_slas
from receipts.reasons import REASONS, ErrorClass
from receipts.rollups.maintain import bucket_start
from receipts.rollups.models import Grain, Rollup
from receipts.statuses import NO_RECEIPT, Status
from retries.models import Rule

# How far back the editor looks for flows and countries in use, in the day rollups (a few rows
# per route and day, where a week of messages is millions).
RECENT_FLOWS_DAYS = 7
MAX_FLOWS = 200
# The status the rules match for a message still pending past its receipt SLA.
NO_RECEIPT_LABEL = "No receipt (pending past its SLA)"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    # Shown on hover (title=): what the value means.
    explanation: str = ""


def known_flows() -> list[str]:
    """Flows described (receipts/flows) or in the configuration (receipt SLAs), in messages of
    the last week, or in a rule."""
    since = bucket_start(timezone.now() - timedelta(days=RECENT_FLOWS_DAYS), Grain.DAY)
    # From the day rollups, not the messages: a week of messages is millions of rows to scan
    # for a DISTINCT; their day rows are a few per route.
    recent = (
        Rollup.objects.filter(grain=Grain.DAY, bucket__gte=since)
        .exclude(flow="")
        .order_by()
        .values_list("flow", flat=True)
        .distinct()[:MAX_FLOWS]
    )
    in_rules = {flow for flows in Rule.objects.values_list("flows", flat=True) for flow in flows or []}
    return sorted({*flow_slas(), *settings.DLR_FLOW_RECEIPT_SLA_SECONDS, *recent, *in_rules})


def flow_choices() -> list[Choice]:
    return [Choice(flow, flow) for flow in known_flows()]


def country_choices() -> list[Choice]:
    """ISO 3166 alpha-2 regions with their names and calling codes, by name."""
    choices = [
        Choice(region, f"{country_name(region)} ({region}, +{phonenumbers.country_code_for_region(region)})")
        for region in phonenumbers.SUPPORTED_REGIONS
    ]
    return sorted(choices, key=lambda choice: choice.label)


def recent_countries() -> list[str]:
    """Countries of the messages submitted in the last week, most frequent first (the editor
    lists them first: a rule is usually about where the traffic goes)."""
    since = bucket_start(timezone.now() - timedelta(days=RECENT_FLOWS_DAYS), Grain.DAY)
    rows = (
        Rollup.objects.filter(grain=Grain.DAY, bucket__gte=since)
        .exclude(country="")
        .order_by()
        .values("country")
        .annotate(n=Sum("messages"))
        .order_by("-n", "country")[:MAX_FLOWS]
    )
    return [row["country"] for row in rows if row["country"] in phonenumbers.SUPPORTED_REGIONS]


def country_choices_first(first: Iterable[str]) -> list[Choice]:
    """Every country, those of `first` (chosen, then recently seen) at the top in that order."""
    choices = country_choices()
    by_code = {choice.value: choice for choice in choices}
    top = [by_code[code] for code in dict.fromkeys(first) if code in by_code]
    return [*top, *(choice for choice in choices if choice not in top)]


def normalize_country(value: str) -> str:
    """'fr' → 'FR'; ValueError with the reason for anything that is not a known region."""
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            _("unknown country “%(value)s”: use an ISO 3166 two-letter code such as FR") % {"value": value.strip()}
        )
    return code


def status_choices() -> list[Choice]:
    finals = [Choice(str(s.value), str(s.label)) for s in Status if s not in (Status.QUEUED, Status.ACCEPTED)]
    return [*finals, Choice(NO_RECEIPT, NO_RECEIPT_LABEL, "Still pending past its flow's receipt SLA.")]


def error_class_choices() -> list[Choice]:
    return [Choice(str(c.value), str(c.label)) for c in ErrorClass]


def reason_choices() -> list[Choice]:
    return [
        Choice(slug, slug.replace("_", " "), f"{reason.applies} ({reason.error_class.label})")
        for slug, reason in REASONS.items()
    ]


def parse_duration(text: str) -> int:
    """'30s', '2m', '1 h', '45' (seconds) → whole seconds; ValueError says what is wrong."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(_("“%(value)s” is not a duration: write e.g. 30s, 2m or 1h") % {"value": text.strip()})
    return int(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s")[0]]


def parse_durations(text: str) -> list[int]:
    """'30s, 2m' → [30, 120]; an empty text is no wait."""
    parts = [part for part in re.split(r"[,;]", text) if part.strip()]
    return [parse_duration(part) for part in parts]


def format_duration(seconds: int) -> str:
    """120 → '2m', 90 → '90s', 3600 → '1h': the editor's spelling, read back by parse_duration."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def wait_words(seconds: int) -> str:
    """90 → '1 min 30 s', 120 → '2 min', 30 → '30 s': a wait as the tester says it."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(part for part in parts if part) or "0 s"


def format_durations(seconds: list[int]) -> str:
    return ", ".join(format_duration(int(s)) for s in seconds)
