"""Trend charts drawn on the server as SVG: no script, no CDN, and they scale to any width.

Volume is drawn as bars against its own peak, the delivery rate as a line from 0 to 100 %
over the same buckets; a bucket without final messages breaks the line instead of dropping
to zero. The page keeps the same figures in a table for screen readers and exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from receipts.rollups.selectors import Point

WIDTH = 600
HEIGHT = 120
RATE_TOP = 8  # room above the 100 % line


def _rate_paths(points: Sequence[Point], step: float) -> list[str]:
    """One polyline per run of buckets that have a rate."""
    runs: list[list[str]] = [[]]
    for index, point in enumerate(points):
        rate = point.delivery_rate
        if rate is None:
            if runs[-1]:
                runs.append([])
            continue
        y = RATE_TOP + (HEIGHT - RATE_TOP) * (1 - rate)
        runs[-1].append(f"{step * index + step / 2:.1f},{y:.1f}")
    return [" ".join(run) for run in runs if run]


def trend_chart(points: Sequence[Point], *, label: str) -> SafeString:
    """Volume bars and the delivery-rate line of a trend, `label` naming it for assistive tech."""
    step = WIDTH / max(len(points), 1)
    peak = max((point.messages for point in points), default=0)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="chart-bar"></rect>',
        (
            (f"{step * index + step * 0.1:.1f}", f"{HEIGHT - height:.1f}", f"{step * 0.8:.1f}", f"{height:.1f}")
            for index, point in enumerate(points)
            if point.messages
            for height in [max(HEIGHT * point.messages / peak, 1.0)]
        ),
    )
    lines = format_html_join(
        "", '<polyline points="{}" class="chart-rate" vector-effect="non-scaling-stroke"></polyline>',
        ((path,) for path in _rate_paths(points, step)),
    )  # fmt: skip
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}" '
        'data-testid="trend-chart">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" class="chart-grid" vector-effect="non-scaling-stroke"></line>'
        "{}{}</svg>",
        WIDTH, HEIGHT, label, RATE_TOP, WIDTH, RATE_TOP, bars, lines,
    )  # fmt: skip
