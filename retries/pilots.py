"""Pilots: N test messages through each connection to each country, then the routes side by
side (delivery rate, time to delivery, reasons, cost) and a recommended primary and fallback.

Bounded: at most MAX_PER_ROUTE messages per route and MAX_SENDS per pilot; a pass sends at most
SENDS_PER_PASS and the task runs one pass a second (retries/tasks.py), so a pilot never floods a
provider. Idempotent: every send has its own key (PilotSend.idempotency_key), the message is
registered under it, and a send is claimed under a row lock, so a pass run twice sends once.

The recommendation is a plain rule (`recommend`): among the routes of a country with enough
finished messages whose receipts are believable (receipts/honesty.py on the pilot's own
messages), the highest delivery rate in whole points, then the lowest p95 time to delivery,
then the lowest cost per delivered message. The first is the primary, the next the fallback.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dlrconsole.lib.tasks import task_by_name
from receipts.flows.models import Flow
from receipts.honesty import BACKDATE_TOLERANCE, FAST_SECONDS, Signals, TrustScore, trust_score
from receipts.models import Connection, Message, Receipt, TestMode, TestTrafficRefused
from receipts.phones import InvalidNumber, parse_number
from receipts.services import MessageRegistration, RegistrationConflict, message_register
from receipts.statuses import FINAL_STATUSES, Status
from retries.models import ConnectionSender, Pilot, PilotSend
from retries.senders.base import SendError

logger = logging.getLogger(__name__)

MAX_PER_ROUTE = 50
MAX_SENDS = 600
SENDS_PER_PASS = 10
PASS_INTERVAL_SECONDS = 1
# A temporary send error (provider down, rate limited) is tried again on the next passes.
MAX_TRIES = 3
SEND_TASK = "retries.tasks.send_pilot"
# A route is compared once this share of its sent messages has a final status, and at least
# MIN_FINISHED of them: below that a rate says more about chance than about the route.
FINISHED_SHARE = 0.8
MIN_FINISHED = 5
# A pilot's few messages are judged for believable receipts from this many delivered on.
PILOT_MIN_DELIVERED = 5
DEFAULT_BODY = "DLR Console route test. No action needed."


class PilotInvalid(ValueError):
    """The pilot cannot be run as asked; `errors` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = errors


def _within_flow(
    flow: Flow, countries: Sequence[str], connections: Sequence[Connection], errors: dict[str, str]
) -> None:
    """A pilot of a flow tries the flow's own routes: a country or connection the flow does not
    have would recommend a route it cannot take."""
    if outside := [c for c in countries if c not in flow.countries]:
        own_countries = ", ".join(sorted(flow.countries))
        text = _("not among the countries of the flow “%(flow)s” (%(own)s): %(outside)s")
        errors["countries"] = text % {"flow": flow.name, "own": own_countries, "outside": ", ".join(outside)}
    own = {c.pk: c.slug for c in flow.connections.all()}
    if foreign := [c.slug for c in connections if c.pk not in own]:
        allowed = ", ".join(sorted(own.values())) or _("none chosen yet")
        text = _("not among the connections of the flow “%(flow)s” (%(own)s): %(outside)s")
        errors["connections"] = text % {"flow": flow.name, "own": allowed, "outside": ", ".join(foreign)}


Recipients = dict[tuple[int, str], list[str]]


def _recipients(connections: Sequence[Connection], countries: Sequence[str], errors: dict[str, str]) -> Recipients:
    """Per route, whom its test messages go to: a connection in test mode sends only to its
    own test numbers, a simulated one to example numbers; a live one sends nothing."""
    recipients: Recipients = {}
    refusals: list[str] = []
    for connection in connections:
        for country in countries:
            try:
                recipients[(connection.pk, country)] = connection.test_recipients(country)
            except TestTrafficRefused as exc:
                refusals.append(str(exc))
    if refusals:
        # One sentence per connection is enough: the first country it cannot reach says what to do.
        errors["connections"] = "; ".join(dict.fromkeys(refusals)) + "."
    return recipients


def pilot_validate(
    *,
    countries: Sequence[str],
    connections: Sequence[Connection],
    messages_per_route: int,
    flow: Flow | None = None,
) -> Recipients:
    """Each route's recipients, or PilotInvalid with every reason."""
    errors: dict[str, str] = {}
    recipients: Recipients = {}
    if not countries:
        errors["countries"] = "name at least one country"
    unknown = [c for c in countries if c not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        errors["countries"] = f"not ISO 3166 country codes: {', '.join(unknown)}"
    if not connections:
        errors["connections"] = "choose at least one connection"
    if flow is not None and not errors:
        _within_flow(flow, countries, connections, errors)
    if not 1 <= messages_per_route <= MAX_PER_ROUTE:
        errors["messages_per_route"] = f"between 1 and {MAX_PER_ROUTE}"
    elif len(countries) * len(connections) * messages_per_route > MAX_SENDS:
        errors["messages_per_route"] = f"a pilot sends at most {MAX_SENDS} messages in all (routes times messages)"
    without_sender = [
        c.slug for c in connections if not ConnectionSender.objects.filter(connection=c, enabled=True).exists()
    ]
    if without_sender:
        errors["connections"] = f"no enabled send API on {', '.join(without_sender)}: configure one first"
    elif not errors:
        recipients = _recipients(connections, countries, errors)
    if errors:
        raise PilotInvalid(errors)
    return recipients


def pilot_create(
    *,
    name: str,
    messages_per_route: int,
    flow: Flow | None = None,
    countries: Sequence[str] = (),
    connections: Sequence[Connection] = (),
    body: str = DEFAULT_BODY,
    user: Any = None,
) -> Pilot:
    """Create the pilot and all its sends, then start sending (after commit). A pilot of a
    flow takes the flow's countries and connections unless given fewer of them."""
    if flow is not None:
        countries = countries or flow.countries
        connections = connections or list(flow.connections.order_by("slug"))
    countries = sorted({c.strip().upper() for c in countries if c.strip()})
    recipients = pilot_validate(
        countries=countries,
        connections=connections,
        messages_per_route=messages_per_route,
        flow=flow,
    )
    # The team's phones it sends to, kept for its page (masked for who may not see numbers).
    in_test_mode = {c.pk for c in connections if c.test_mode == TestMode.TEST}
    numbers = sorted({n for (pk, _country), route in recipients.items() if pk in in_test_mode for n in route})
    with transaction.atomic():
        person = user if getattr(user, "pk", None) else None
        pilot = Pilot(
            name=name, flow=flow, flow_slug=flow.slug if flow else "", countries=countries,
            messages_per_route=messages_per_route,
            test_numbers=numbers, simulated=all(c.test_mode == TestMode.SIMULATOR for c in connections),
            body=body or DEFAULT_BODY, created_by=person,
        )  # fmt: skip
        # Who, in the audit log, when no request says it (a command, a test).
        pilot._history_user = person  # type: ignore[attr-defined]
        pilot.save()
        pilot.connections.set(connections)
        PilotSend.objects.bulk_create(
            PilotSend(
                pilot=pilot, connection=connection, country=country, sequence=n,
                recipient=recipients[(connection.pk, country)][n % len(recipients[(connection.pk, country)])],
            )
            for connection in connections
            for country in countries
            for n in range(messages_per_route)
        )  # fmt: skip
        transaction.on_commit(lambda: pilot_kick(pilot.pk))
    return pilot


def flow_latest_pilot(flow: Flow) -> Pilot | None:
    """The flow's newest pilot, for its launch page."""
    return Pilot.objects.filter(flow=flow).prefetch_related("connections").first()


def pilot_kick(pilot_id: int) -> None:
    """Ask a worker to send the pilot's next pass now; best effort (the page can kick again)."""
    try:
        task_by_name(SEND_TASK).delay(pilot_id)
    except Exception:  # a broker down must not fail the request that created the pilot
        logger.warning("could not queue pilot %s; it is sent when kicked again", pilot_id, exc_info=True)


def pilot_cancel(pilot: Pilot, *, user: Any = None) -> int:
    """Stop sending: the sends not yet made are dropped. Returns how many."""
    with transaction.atomic():
        dropped = PilotSend.objects.filter(pilot=pilot, outcome=PilotSend.Outcome.PENDING).update(
            outcome=PilotSend.Outcome.FAILED, error="cancelled"
        )
        if pilot.state == Pilot.State.SENDING:
            pilot.state = Pilot.State.CANCELLED
            pilot.finished_at = timezone.now()
            pilot._history_user = user if getattr(user, "pk", None) else None  # type: ignore[attr-defined]
            pilot.save(update_fields=["state", "finished_at"])
    return dropped


def pilot_send_due(pilot_id: int, *, limit: int = SENDS_PER_PASS) -> int:
    """Send up to `limit` of the pilot's pending messages; returns how many are still pending."""
    pending = list(
        PilotSend.objects.filter(pilot_id=pilot_id, outcome=PilotSend.Outcome.PENDING)
        .order_by("sequence", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for send_id in pending:
        _send_one(send_id)
    remaining = PilotSend.objects.filter(pilot_id=pilot_id, outcome=PilotSend.Outcome.PENDING).count()
    if not remaining:
        Pilot.objects.filter(pk=pilot_id, state=Pilot.State.SENDING).update(
            state=Pilot.State.SENT, finished_at=timezone.now()
        )
    return remaining


def _send_one(send_id: int) -> None:
    with transaction.atomic():
        # Claimed under a lock, skipped if another pass holds it: each send is made once.
        send = (
            PilotSend.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("pilot", "connection")
            .filter(pk=send_id, outcome=PilotSend.Outcome.PENDING)
            .first()
        )
        if send is None:
            return
        send.tries += 1
        try:
            _send_and_register(send)
        except SendError as exc:
            send.error = exc.reason[:255]
            if exc.permanent or send.tries >= MAX_TRIES:
                send.outcome = PilotSend.Outcome.FAILED
        send.save(update_fields=["tries", "error", "outcome", "message", "sent_at"])


def _send_and_register(send: PilotSend) -> None:
    config = ConnectionSender.objects.filter(connection=send.connection, enabled=True).first()
    if config is None:
        raise SendError("no enabled send API on this connection", permanent=True)
    # Checked again at each send: a connection switched back to live traffic (or a test number
    # removed) since the pilot started sends nothing more.
    try:
        allowed = send.connection.test_recipients(send.country)
    except TestTrafficRefused as exc:
        raise SendError(str(exc)[:255], permanent=True) from None
    if send.recipient not in allowed:
        raise SendError(f"{send.recipient[:4]}… is no longer a test number of {send.connection.slug}", permanent=True)
    try:
        sender = config.build()
    except ValueError as exc:  # e.g. a send API on an address the outbound guard now refuses
        raise SendError(f"the send configuration is invalid: {exc}"[:255], permanent=True) from None
    result = sender.send(
        to=send.recipient, body=send.pilot.body, sender_id=config.sender_id, options={},
        idempotency_key=send.idempotency_key,
    )  # fmt: skip
    try:
        message, _created = message_register(
            MessageRegistration(
                connection=send.connection, provider_message_id=result.provider_message_id,
                recipient=parse_number(send.recipient), flow=send.pilot.message_flow,
                client_reference=send.idempotency_key,
            )
        )  # fmt: skip
    except (RegistrationConflict, InvalidNumber) as exc:
        raise SendError(f"sent, but not registered: {exc}"[:255], permanent=True) from None
    send.message = message
    send.outcome = PilotSend.Outcome.SENT
    send.sent_at = timezone.now()
    send.error = ""


@dataclass
class RouteResult:
    """One route's (connection, country) figures in a pilot."""

    connection: str
    country: str
    planned: int
    sent: int = 0
    not_sent: int = 0
    delivered: int = 0
    failed: int = 0
    fast: int = 0
    backdated: int = 0
    receipts_checked: int = 0
    delivery_seconds: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    costs: dict[str, Decimal] = field(default_factory=dict)
    trust: TrustScore | None = None

    @property
    def finished(self) -> int:
        return self.delivered + self.failed

    @property
    def pending(self) -> int:
        return self.sent - self.finished

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered / self.finished if self.finished else None

    def _percentile(self, fraction: float) -> float | None:
        if not self.delivery_seconds:
            return None
        ordered = sorted(self.delivery_seconds)
        return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]

    @property
    def ttd_p50(self) -> float | None:
        return self._percentile(0.5)

    @property
    def ttd_p95(self) -> float | None:
        return self._percentile(0.95)

    @property
    def cost_per_delivered(self) -> dict[str, Decimal | None]:
        return {
            currency: (cost / self.delivered).quantize(Decimal("0.000001")) if self.delivered else None
            for currency, cost in sorted(self.costs.items())
        }

    @property
    def top_reasons(self) -> list[tuple[str, int]]:
        return self.reasons.most_common(3)

    @property
    def enough_data(self) -> bool:
        return self.finished >= max(MIN_FINISHED, math.ceil(FINISHED_SHARE * self.sent))

    @property
    def believable(self) -> bool:
        return self.trust is None or self.trust.level != "untrusted"

    def summary(self) -> str:
        """In the reader's language; each part whole, for word orders other than English's."""
        if self.delivery_rate is None:
            rate = _("no finished message")
        else:
            rate = _("%(share)s delivered") % {"share": f"{self.delivery_rate:.0%}"}
        parts = [_("%(rate)s (%(delivered)s of %(finished)s finished)")
                 % {"rate": rate, "delivered": self.delivered, "finished": self.finished}]  # fmt: skip
        if self.ttd_p95 is not None:
            parts.append(_("p95 %(seconds)s s") % {"seconds": f"{self.ttd_p95:.1f}"})
        parts += [_("%(cost)s %(currency)s per delivered") % {"cost": v, "currency": c}
                  for c, v in self.cost_per_delivered.items() if v is not None]  # fmt: skip
        return f"{self.connection}: {', '.join(parts)}"


@dataclass
class Recommendation:
    primary: RouteResult | None
    fallback: RouteResult | None
    why: list[str]
    enough_data: bool


@dataclass
class CountryComparison:
    country: str
    routes: list[RouteResult]
    recommendation: Recommendation


def _rank_key(route: RouteResult) -> tuple[float, float, float]:
    rate = math.floor((route.delivery_rate or 0.0) * 100)
    p95 = route.ttd_p95 if route.ttd_p95 is not None else math.inf
    # Costs compare only in one currency; a route without a price (or in several) ranks last on cost.
    prices = [v for v in route.cost_per_delivered.values() if v is not None]
    cost = float(prices[0]) if len(prices) == 1 else math.inf
    return (-rate, p95, cost)


def recommend(routes: Sequence[RouteResult]) -> Recommendation:
    """Primary and fallback among one country's routes, and why, in words with the figures."""
    why: list[str] = []
    candidates: list[RouteResult] = []
    for route in routes:
        if not route.enough_data:
            needed = max(MIN_FINISHED, math.ceil(FINISHED_SHARE * route.sent))
            text = _("Not enough data yet for %(connection)s: %(finished)s of %(sent)s sent messages finished "
                     "(needs %(needed)s).")  # fmt: skip
            why.append(text % {"connection": route.connection, "finished": route.finished, "sent": route.sent,
                               "needed": needed})  # fmt: skip
        elif not route.believable and route.trust is not None:
            text = _("Left out %(connection)s: its receipts are not believable (trust %(score)s/100).") % {
                "connection": route.connection, "score": f"{route.trust.score:.0f}",
            }  # fmt: skip
            why.append(" ".join([text, *(str(reason) for reason in route.trust.reasons)]))
        else:
            candidates.append(route)
    ranked = sorted(candidates, key=lambda r: (*_rank_key(r), r.connection))
    primary = ranked[0] if ranked else None
    fallback = ranked[1] if len(ranked) > 1 else None
    if primary is None:
        why.insert(0, _("No route can be recommended yet."))
    else:
        why.insert(0, _("Primary: %(summary)s.") % {"summary": primary.summary()})
        if fallback is None:
            why.insert(1, _("No fallback: no second route with enough believable data."))
        else:
            why.insert(1, _("Fallback: %(summary)s.") % {"summary": fallback.summary()})
        why.insert(
            2,
            _(
                "Rule: highest delivery rate (whole points), then lowest p95 time to delivery, then lowest cost "
                "per delivered message."
            ),
        )
    return Recommendation(primary, fallback, why, enough_data=primary is not None)


def pilot_comparison(pilot: Pilot) -> list[CountryComparison]:
    """The pilot's routes per country with their figures and the recommendation. Reads the
    pilot's own sends and messages only (at most MAX_SENDS rows)."""
    results: dict[tuple[int, str], RouteResult] = {}
    sends = PilotSend.objects.filter(pilot=pilot).select_related("connection").order_by("connection__slug", "country")
    ids = [s.message_id for s in sends if s.message_id]
    messages = {
        m.pk: m for m in Message.objects.filter(pk__in=ids).only("status", "reason", "submitted_at", "cost", "currency")
    }
    delivered = _first_delivered_receipts(ids)
    for send in sends:
        result = results.setdefault(
            (send.connection_id, send.country), RouteResult(send.connection.slug, send.country, 0)
        )
        result.planned += 1
        if send.outcome == PilotSend.Outcome.FAILED:
            result.not_sent += 1
        message = messages.get(send.message_id or 0)
        if message is not None:
            result.sent += 1
            _count_message(result, message, delivered.get(message.pk))
    for result in results.values():
        signals = Signals(
            delivered=result.delivered, finished=result.finished, failed=result.failed,
            fast=result.fast, backdated=result.backdated, receipts_checked=result.receipts_checked,
        )  # fmt: skip
        result.trust = trust_score({"connection": result.connection}, signals, min_delivered=PILOT_MIN_DELIVERED)
    by_country: dict[str, list[RouteResult]] = {}
    for result in results.values():
        by_country.setdefault(result.country, []).append(result)
    return [CountryComparison(country, routes, recommend(routes)) for country, routes in sorted(by_country.items())]


def _first_delivered_receipts(message_ids: Sequence[int]) -> dict[int, tuple[datetime, datetime | None]]:
    """Per message, when its first "delivered" receipt reached us and the done date it gave.
    Times to delivery are read from our clock: done dates are often to the minute only."""
    first: dict[int, tuple[datetime, datetime | None]] = {}
    rows = (
        Receipt.objects.filter(message_id__in=message_ids, status=Status.DELIVERED)
        .order_by("received_at", "id")
        .values_list("message_id", "received_at", "provider_timestamp")
    )
    for message_id, received_at, done in rows:
        if message_id is not None:
            first.setdefault(message_id, (received_at, done))
    return first


def _count_message(result: RouteResult, message: Message, receipt: tuple[datetime, datetime | None] | None) -> None:
    # What every message sent cost, delivered or not, is what a delivered one comes to.
    if message.cost is not None and message.currency:
        result.costs[message.currency] = result.costs.get(message.currency, Decimal(0)) + message.cost
    if message.status not in FINAL_STATUSES:
        return
    if message.status != Status.DELIVERED:
        result.failed += 1
        result.reasons[message.reason or message.status] += 1
        return
    result.delivered += 1
    if receipt is None:
        return
    received_at, done = receipt
    seconds = (received_at - message.submitted_at) / timedelta(seconds=1)
    result.delivery_seconds.append(max(seconds, 0.0))
    result.receipts_checked += 1
    if seconds <= FAST_SECONDS:
        result.fast += 1
    if done is not None and done < message.submitted_at - BACKDATE_TOLERANCE:
        result.backdated += 1
