"""Reading flows: their receipt SLAs and launch states for the hot readers (every status shown,
every registration), the routes' learned timings, and the lists the console shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from dlrconsole.lib.ttl_cache import TtlValue
from receipts.flows.models import Flow, Launch, RouteTiming


@dataclass(frozen=True)
class FlowSla:
    seconds: int
    adaptive: bool
    floor: int


def _load_flows() -> dict[str, tuple[FlowSla, str]]:
    rows = Flow.objects.values_list("slug", "sla_seconds", "adaptive_sla", "adaptive_floor_seconds", "launch")
    return {slug: (FlowSla(seconds, adaptive, floor), launch) for slug, seconds, adaptive, floor, launch in rows}


def _load_timings() -> dict[tuple[int, str], float]:
    rows = RouteTiming.objects.values_list("connection_id", "country", "p99_seconds")
    return {(connection_id, country): p99 for connection_id, country, p99 in rows}


# A deployment has tens of flows and at most a few thousand routes: the whole table in memory
# costs less than one query per status shown on a search page.
_flows: TtlValue[dict[str, tuple[FlowSla, str]]] = TtlValue(
    _load_flows, seconds=lambda: settings.DLR_FLOWS_CACHE_SECONDS
)
_timings: TtlValue[dict[tuple[int, str], float]] = TtlValue(
    _load_timings, seconds=lambda: settings.DLR_FLOWS_CACHE_SECONDS
)


def clear_caches(**_: Any) -> None:
    _flows.clear()
    _timings.clear()


def flow_slas() -> dict[str, FlowSla]:
    """Every described flow's receipt SLA, by slug."""
    return {slug: sla for slug, (sla, _launch) in _flows.get().items()}


def route_p99(connection_id: int, country: str) -> float | None:
    """The route's learned 99th percentile time to delivery, if it has one."""
    return _timings.get().get((connection_id, country))


def route_timings() -> dict[tuple[int, str], float]:
    return dict(_timings.get())


def flow_launch(slug: str) -> str | None:
    """The flow's launch state (Launch), or None when no flow of that slug is described."""
    entry = _flows.get().get(slug) if slug else None
    return entry[1] if entry else None


def flow_not_live(slug: str) -> bool:
    """A described flow without a "go": its messages are accepted and flagged."""
    launch = flow_launch(slug)
    return launch is not None and launch != Launch.GO


def flow_list() -> QuerySet[Flow]:
    return Flow.objects.select_related("technical_owner", "business_owner").prefetch_related("connections")


def flow_by_slug(slug: str) -> Flow | None:
    return flow_list().filter(slug=slug).first()
