"""How far a route's "delivered" can be trusted: a trust score per route (a connection
in a country, on a network) with its confidence, and the reasons a score is low, in words (docs/MONITORING.md).

Some routes report "delivered" for messages that never reached a handset (grey routes, SIM
farms, a provider padding its figures). No receipt says so; what gives them away is
- conversions: the product reports what the recipient did (an OTP entered, a link opened,
  receipts/conversions.py). On a route that delivers for real, a flow converts about as often
  as on its other routes; on a lying one its "delivered" messages convert far less;
- timing: a handset acknowledges after seconds, not within one second of the submission; and a
  done date before the message was even submitted is a receipt made up by the provider;
- no failure at all over a large volume: every real network has phones off and numbers gone.

What is read, so the score costs the same at any volume: the rollups (delivered, finished and
failed messages per route and flow) over the period; conversions of the period's messages (one
GROUP BY; the product reports a fraction of its messages); the delivered receipts of at most the
last RECEIPT_LOOKBACK of the period, RECEIPT_SAMPLE at most, for their arrival and done dates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q
from django.utils.translation import gettext, pgettext

from receipts.models import Conversion, Receipt
from receipts.rollups.figures import STATUS_COLUMNS
from receipts.rollups.selectors import GROUP_COLUMNS, Figures, Period, Scope, rollup_figures
from receipts.statuses import Status

ROUTE: tuple[str, ...] = ("connection", "country", "network")
# A delivered receipt that reached us within this long of the submission (both by our clock). A
# real handset takes seconds (the network pages it, it answers, the SMSC reports); some gateways
# report fast, so a share of them is allowed before it counts against the route. Measured on
# arrival, not on the done date: SMPP done dates and Twilio's RawDlrDoneDate are to the minute,
# which puts an honest delivery's done date up to a minute before its submission.
FAST_SECONDS = 1.0
FAST_ALLOWED = 0.2
# A done date this far before the submission is made up: more than the minute those dates are
# rounded down to, plus clocks that differ by half a minute.
BACKDATE_TOLERANCE = timedelta(seconds=90)
# The receipts read for arrival and done dates: the latest delivered ones of the period's last
# day, at most RECEIPT_SAMPLE of them (newest first on the received_at index), so the cost is
# bounded at any volume; a busy route is judged on its most recent receipts.
RECEIPT_LOOKBACK = timedelta(hours=24)
RECEIPT_SAMPLE = 20_000
# Below this many delivered messages a route is not judged at all.
MIN_DELIVERED = 20
# The conversion signal counts when the flows' rates elsewhere predict at least this many.
MIN_EXPECTED_CONVERSIONS = 10.0
# Finished messages without a single failure that are suspicious, and what it costs the score.
NO_FAILURE_VOLUME = 1000
NO_FAILURE_FACTOR = 0.8
# Confidence grows with the delivered messages judged, up to this many.
FULL_CONFIDENCE_DELIVERED = 500
# Without conversions only timing speaks, and a clever liar can fake timing.
TIMING_ONLY_CONFIDENCE = 0.6
TRUSTED, DOUBTFUL = 80.0, 50.0

COLUMNS: tuple[str, ...] = ("messages", *STATUS_COLUMNS.values())


def _percent(share: float) -> str:
    return f"{share:.0%}"


@dataclass(frozen=True)
class Signals:
    """What a route's score is computed from."""

    delivered: int
    finished: int
    failed: int
    fast: int = 0  # delivered receipts that reached us within FAST_SECONDS of the submission
    backdated: int = 0  # delivered receipts with a done date well before the submission
    receipts_checked: int = 0  # delivered receipts looked at for both
    conversions: int = 0  # delivered messages the product reported a conversion for
    # What the flows' conversion rates on all routes predict for this route's delivered
    # messages; None when none of its flows reports conversions.
    expected_conversions: float | None = None


@dataclass(frozen=True)
class TrustScore:
    route: dict[str, Any]
    signals: Signals
    score: float | None  # 0-100; None: not enough data to judge
    confidence: float  # 0-1
    reasons: list[str] = field(default_factory=list)  # in the language of the request that judged

    @property
    def confidence_label(self) -> str:
        if self.score is None:
            return "none"
        return "high" if self.confidence >= 0.7 else "medium" if self.confidence >= 0.35 else "low"

    @property
    def level(self) -> str:
        """trusted, doubtful, untrusted or unknown: the badge the routes page shows."""
        if self.score is None:
            return "unknown"
        return "trusted" if self.score >= TRUSTED else "doubtful" if self.score >= DOUBTFUL else "untrusted"

    @property
    def level_label(self) -> str:
        """The level in the reader's language, for a badge's caption."""
        labels = {
            "trusted": pgettext("route trust", "trusted"),
            "doubtful": pgettext("route trust", "doubtful"),
            "untrusted": pgettext("route trust", "untrusted"),
        }
        return labels.get(self.level, pgettext("route trust", "not judged"))

    @property
    def confidence_text(self) -> str:
        texts = {
            "high": gettext("high confidence"),
            "medium": gettext("medium confidence"),
            "low": gettext("low confidence"),
        }
        return texts.get(self.confidence_label, gettext("no confidence"))


def trust_score(route: Mapping[str, Any], signals: Signals, *, min_delivered: int = MIN_DELIVERED) -> TrustScore:
    """The score of one route from its signals: 100 times the product of one factor per signal
    (each 0-1, 1 when the signal says nothing against the route), and why it is lower.
    `min_delivered`: fewer delivered messages are not judged (a pilot judges its few)."""
    s = signals
    if s.delivered < min_delivered:
        why = gettext("Not enough delivered messages to judge: %(delivered)s, at least %(needed)s are needed.") % {
            "delivered": s.delivered,
            "needed": min_delivered,
        }
        return TrustScore(dict(route), s, None, 0.0, [why])
    factors: list[float] = []
    reasons: list[str] = []
    uses_conversions = s.expected_conversions is not None and s.expected_conversions >= MIN_EXPECTED_CONVERSIONS
    if uses_conversions and s.expected_conversions:
        ratio = min(1.0, s.conversions / s.expected_conversions)
        factors.append(ratio)
        if ratio < 0.8:
            text = gettext(
                "Conversions: %(conversions)s of the %(expected)s expected from the same flows on other routes "
                "(%(share)s); recipients act on far fewer of the messages this route calls delivered."
            )
            params = {
                "conversions": s.conversions,
                "expected": f"{s.expected_conversions:.0f}",
                "share": _percent(ratio),
            }
            reasons.append(text % params)
    if s.receipts_checked:
        fast_share = s.fast / s.receipts_checked
        factors.append(1 - max(0.0, fast_share - FAST_ALLOWED) / (1 - FAST_ALLOWED))
        if fast_share > FAST_ALLOWED:
            text = gettext(
                "%(share)s of deliveries were reported within %(seconds)s s of submission; "
                "a handset rarely acknowledges that fast."
            )
            reasons.append(text % {"share": _percent(fast_share), "seconds": f"{FAST_SECONDS:g}"})
        backdated_share = s.backdated / s.receipts_checked
        factors.append(max(0.0, 1 - 2 * backdated_share))
        if s.backdated:
            text = gettext(
                "%(backdated)s of %(checked)s delivered receipts give a done date before the message was "
                "submitted: the provider made the date up."
            )
            reasons.append(text % {"backdated": s.backdated, "checked": s.receipts_checked})
    if s.finished >= NO_FAILURE_VOLUME and not s.failed:
        factors.append(NO_FAILURE_FACTOR)
        text = gettext("No failure at all in %(finished)s finished messages; every real network has some.")
        reasons.append(text % {"finished": s.finished})
    score = 100.0
    for factor in factors:
        score *= factor
    confidence = min(1.0, s.delivered / FULL_CONFIDENCE_DELIVERED) * (
        1.0 if uses_conversions else TIMING_ONLY_CONFIDENCE
    )
    if not uses_conversions:
        reasons.append(gettext("No conversions reported for this route's flows: judged on timing alone."))
    return TrustScore(dict(route), s, round(score, 1), round(confidence, 2), reasons)


def route_trust_scores(
    *, period: Period, scope: Scope | None = None, group_by: Sequence[str] = ROUTE
) -> list[TrustScore]:
    """The trust score of each group of `group_by` (route dimensions) with delivered messages
    in the period and scope, most delivered first; with no `group_by`, one for the whole scope."""
    group_by = tuple(group_by)
    scope = scope or Scope()
    figures = rollup_figures(period=period, scope=scope, group_by=(*group_by, "flow"), columns=COLUMNS, reasons=False)
    flow_rates = _flow_conversion_rates(period, scope)
    converted = _conversions(period, scope, (*group_by, "flow"))
    receipts = _done_dates(period, scope, group_by)
    by_route: dict[tuple[Any, ...], list[Figures]] = defaultdict(list)
    for cell in figures:
        by_route[tuple(cell.group[name] for name in group_by)].append(cell)
    scores = [
        trust_score(dict(zip(group_by, key, strict=True)), _signals(key, cells, flow_rates, converted, receipts))
        for key, cells in by_route.items()
    ]
    if not group_by and not scores:
        scores = [trust_score({}, Signals(0, 0, 0, 0))]
    return sorted(scores, key=lambda t: (-t.signals.delivered, tuple(str(v) for v in t.route.values())))


def _signals(
    key: tuple[Any, ...],
    cells: list[Figures],
    flow_rates: Mapping[str, float],
    converted: Mapping[tuple[Any, ...], int],
    receipts: Mapping[tuple[Any, ...], tuple[int, int, int]],
) -> Signals:
    delivered = sum(cell.delivered for cell in cells)
    expected: float | None = None
    conversions = 0
    for cell in cells:
        rate = flow_rates.get(cell.group["flow"])
        if rate is None:
            continue
        expected = (expected or 0.0) + cell.delivered * rate
        conversions += converted.get((*key, cell.group["flow"]), 0)
    checked, fast, backdated = receipts.get(key, (0, 0, 0))
    return Signals(
        delivered=delivered,
        finished=sum(cell.final for cell in cells),
        failed=sum(cell.failed for cell in cells),
        fast=fast,
        backdated=backdated,
        receipts_checked=checked,
        conversions=conversions,
        expected_conversions=expected,
    )


def _message_scope(scope: Scope, prefix: str) -> Q:
    values = {"connection_id": scope.connection_id, "country": scope.country, "network": scope.network}
    values["flow"] = scope.flow
    return Q(**{f"{prefix}{column}": value for column, value in values.items() if value is not None})


def _message_columns(group_by: Sequence[str], prefix: str) -> list[str]:
    return [f"{prefix}{GROUP_COLUMNS[name]}" for name in group_by]


def _delivered_in(period: Period) -> Q:
    return Q(
        message__status=Status.DELIVERED,
        message__submitted_at__gte=period.since,
        message__submitted_at__lt=period.until,
    )


def _conversions(period: Period, scope: Scope, group_by: Sequence[str]) -> dict[tuple[Any, ...], int]:
    """Delivered messages of the period with at least one conversion, per group."""
    columns = _message_columns(group_by, "message__")
    rows = (
        Conversion.objects.filter(_delivered_in(period), _message_scope(scope, "message__"))
        .values(*columns)
        .annotate(n=Count("message_id", distinct=True))
        .order_by()
    )
    return {tuple(row[column] for column in columns): row["n"] for row in rows}


def _flow_conversion_rates(period: Period, scope: Scope) -> dict[str, float]:
    """Per flow that reports conversions: its delivered messages that converted, over all
    routes (whatever the scope's route), so one route's silence stands out against the rest."""
    flow_scope = Scope(flow=scope.flow)
    converted = _conversions(period, flow_scope, ("flow",))
    if not converted:
        return {}
    delivered = rollup_figures(period=period, scope=flow_scope, group_by=("flow",), columns=COLUMNS, reasons=False)
    return {
        f.group["flow"]: converted.get((f.group["flow"],), 0) / f.delivered
        for f in delivered
        if f.delivered and converted.get((f.group["flow"],))
    }


def _done_dates(period: Period, scope: Scope, group_by: Sequence[str]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """Per route: (the latest delivered receipts of the period's last RECEIPT_LOOKBACK, those among them
    that arrived within FAST_SECONDS of the submission, those with a done date well before it)."""
    since = max(period.since, period.until - RECEIPT_LOOKBACK)
    columns = _message_columns(group_by, "message__")
    latest = (
        Receipt.objects.filter(
            _message_scope(scope, "message__"),
            received_at__gte=since,
            received_at__lt=period.until,
            status=Status.DELIVERED,
            message__isnull=False,
        )
        .order_by("-received_at")
        .values("pk")[:RECEIPT_SAMPLE]
    )
    rows = (
        Receipt.objects.filter(pk__in=latest)
        .values(*columns)
        .annotate(
            checked=Count("id"),
            fast=Count("id", filter=Q(received_at__lte=F("message__submitted_at") + timedelta(seconds=FAST_SECONDS))),
            backdated=Count("id", filter=Q(provider_timestamp__lt=F("message__submitted_at") - BACKDATE_TOLERANCE)),
        )
        .order_by()
    )
    return {tuple(row[c] for c in columns): (row["checked"], row["fast"], row["backdated"]) for row in rows}
