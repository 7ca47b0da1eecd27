"""Runs a simulation against a running console over real HTTP: for each message, registers
it through the API (as the product would, right after the provider accepted it), then posts
the provider's receipts to the connection's webhook at their planned times, built and signed
by the provider's player. It only ever talks to the base URL it is given, which must be a
loopback host unless `allow_remote` is set.

Nothing here touches the database except `load_targets`, which reads connections' secrets
through the ORM; everything else goes through HTTP, so the real webhook path is exercised.
Playing the product too, it reports the codes recipients entered as conversions through the API
(traffic.plan_reach), by connection and provider message id, as a product would.

With a send gateway (gateway.py), messages the console resends through it are played too: the
gateway's HTTP threads only put them on a queue, which this loop drains; the loop alone plans
and posts, so its heap of due requests never needs a lock.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
import queue
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests

from dlrconsole.simulator.base import USER_AGENT, Delivery, Event, SimulatorError, Target, rfc3339
from dlrconsole.simulator.gateway import AdoptedResend, SendGateway
from dlrconsole.simulator.players.registry import get_player, player_kinds
from dlrconsole.simulator.traffic import (
    CONVERSION_KIND,
    DEFAULT_MIXES,
    WESTERN_EUROPE,
    MessagePlan,
    Mix,
    Post,
    plan_message,
    plan_reach,
    plan_resend,
)

# A run gives up when the server has stopped answering at all.
MAX_CONSECUTIVE_CONNECTION_ERRORS = 20
# Resends taken from the gateway's queue per pass of the loop, so a burst never starves the
# receipts already due.
MAX_ADOPTIONS_PER_PASS = 50
# What each kind of request must be answered with; anything else is reported as unexpected.
EXPECTED_STATUS: dict[str, frozenset[int]] = {
    "register": frozenset({200, 201}),
    "conversion": frozenset({201}),
    "receipt": frozenset({200}),
    "duplicate": frozenset({200}),
    "forged": frozenset({401}),
}
RATES = (
    "duplicate_rate",
    "out_of_order_rate",
    "early_receipt_rate",
    "late_rate",
    "missing_rate",
    "batch_rate",
    "bad_signature_rate",
)


def load_targets(slugs: Sequence[str], *, private_keys: Mapping[str, str] | None = None) -> list[Target]:
    """Read the connections' provider and signing key from the database.

    `private_keys` maps a provider kind to the key that signs for it where the connection only
    holds the provider's public key (Telnyx)."""
    # Not at the top: the simulator is an installed app whose package imports this module
    # while Django is still loading the apps, before any model may be imported.
    from receipts.models import Connection

    targets = []
    for slug in slugs:
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise SimulatorError(f"no connection {slug!r}; create it with `manage.py create_connection`")
        if not connection.enabled:
            raise SimulatorError(f"connection {slug!r} is disabled; its webhook answers 404")
        try:
            player = get_player(connection.provider)
        except LookupError:
            raise SimulatorError(
                f"connection {slug!r} is a {connection.provider!r} connection; the simulator plays "
                f"{', '.join(player_kinds())}"
            ) from None
        if not connection.secrets:
            raise SimulatorError(f"connection {slug!r} has no secret to sign with")
        key = player.signing_key(slug, connection.secrets, (private_keys or {}).get(connection.provider, ""))
        targets.append(
            Target(
                slug=slug,
                provider=connection.provider,
                secret=key,
                public_url=connection.public_url,
                options=dict(connection.options or {}),
            )
        )
    return targets


def check_base_url(url: str, *, allow_remote: bool = False) -> str:
    """The base URL without a trailing slash; refuses non-loopback hosts unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SimulatorError(f"--url must be an http(s) URL such as http://127.0.0.1:8000, got {url!r}")
    if parts.query or parts.fragment:
        raise SimulatorError("--url is a base URL: no query or fragment")
    if not allow_remote and not is_loopback_host(parts.hostname):
        raise SimulatorError(
            f"{parts.hostname!r} is not a loopback host; the simulator posts test traffic, pass --allow-remote "
            "if you really mean to send it there"
        )
    return url.rstrip("/")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SimulatorConfig:
    base_url: str
    token: str
    targets: Sequence[Target]
    rate: float = 5.0  # new messages per second
    duration: float = 60.0  # seconds during which new messages start
    count: int | None = None  # stop starting messages after this many
    seed: int | None = None
    duplicate_rate: float = 0.05  # a post is retried by the provider (same delivery id)
    out_of_order_rate: float = 0.1  # the last two posts swap
    early_receipt_rate: float = 0.05  # receipt posted before the registration (parked, then linked)
    late_rate: float = 0.03  # an in-flight receipt arrives well after the final one
    missing_rate: float = 0.02  # the final receipt never comes
    batch_rate: float = 0.15  # players that batch: two events in one request
    bad_signature_rate: float = 0.0  # deliberately forged posts, expected to get 401
    # Country → fate weights, replacing DEFAULT_MIXES for the countries named.
    country_mixes: Mapping[str, Mix] = field(default_factory=dict)
    # Slugs of connections played as a lying route: every message "delivered", at once, with a
    # done date before its submission (traffic.py); the trust score's demo and tests.
    lying: frozenset[str] = frozenset()
    time_scale: float = 1.0  # multiplies the delays between a message's events
    allow_remote: bool = False
    request_timeout: float = 10.0
    summary_every: float = 10.0
    # In-flight messages get this long after `duration` to post their last receipts.
    drain_grace: float = 30.0
    # With a send gateway: once nothing is left to post, how long to wait for resends the
    # console may still send (its backoff plus its runner's period).
    resend_wait: float = 0.0

    def __post_init__(self) -> None:
        if not self.targets:
            raise SimulatorError("no connection to simulate")
        if not self.token:
            raise SimulatorError("an API token is needed to register messages")
        if self.rate <= 0:
            raise SimulatorError("--rate must be positive")
        if self.duration <= 0:
            raise SimulatorError("--duration must be positive")
        if self.count is not None and self.count < 1:
            raise SimulatorError("--count must be at least 1")
        if self.time_scale <= 0:
            raise SimulatorError("--time-scale must be positive")
        if self.resend_wait < 0:
            raise SimulatorError("resend_wait must not be negative")
        for name in RATES:
            if not 0 <= getattr(self, name) <= 1:
                raise SimulatorError(f"{name.replace('_', '-')} must be between 0 and 1")
        unknown = set(self.lying) - {target.slug for target in self.targets}
        if unknown:
            raise SimulatorError(f"--lying names connections the run does not play: {', '.join(sorted(unknown))}")
        for target in self.targets:
            if target.provider not in player_kinds():
                raise SimulatorError(f"no simulator player for provider {target.provider!r}")
        object.__setattr__(self, "base_url", check_base_url(self.base_url, allow_remote=self.allow_remote))

    def webhook_url(self, target: Target) -> str:
        return f"{self.base_url}/hooks/{target.slug}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1/messages/"

    def mix_for(self, country: str) -> Mix:
        return self.country_mixes.get(country) or DEFAULT_MIXES.get(country, WESTERN_EUROPE)


@dataclass
class SimulationReport:
    started: int = 0
    completed: int = 0
    # (kind, HTTP status) → count; status 0 is a connection error.
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    # What the webhook said it did with the receipts (received, duplicates, applied, parked, ...).
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    unexpected_count: int = 0
    # "slug:provider message id" → the status the console must show once all receipts are in.
    expected_status: dict[str, str] = field(default_factory=dict)
    abandoned: int = 0
    resends: int = 0  # messages the console resent through the send gateway, played here
    conversions: int = 0  # codes entered, reported to the console as conversions
    stopped_because: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.unexpected_count == 0

    def status_summary(self) -> str:
        if not self.responses:
            return "no request sent"
        return " · ".join(f"{kind} {status or 'error'} x{n}" for (kind, status), n in sorted(self.responses.items()))

    def outcome_summary(self) -> str:
        received = self.outcomes.get("received", 0)
        details = ", ".join(f"{name} {n}" for name, n in sorted(self.outcomes.items()) if name != "received" and n)
        return f"{received} received" + (f" ({details})" if details else "")

    def summary_lines(self) -> list[str]:
        lines = [
            f"Simulated {self.started} messages in {self.elapsed:.1f} s "
            f"({self.completed} with all their receipts posted"
            + (f", {self.abandoned} abandoned in flight" if self.abandoned else "")
            + ").",
            f"HTTP status counts: {self.status_summary()}",
            f"Receipts, as the console counted them: {self.outcome_summary()}",
        ]
        if self.conversions:
            lines.append(f"Conversions the product reported (codes entered): {self.conversions}")
        if self.resends:
            lines.append(f"Resends played (the console's retries through the simulated send API): {self.resends}")
        if self.stopped_because:
            lines.append(f"Stopped early: {self.stopped_because}")
        if self.unexpected_count:
            lines.append(f"{self.unexpected_count} unexpected responses, first ones:")
            lines.extend(f"  {line}" for line in self.unexpected)
        return lines


class Simulator:
    """Runs a simulation: new messages at `rate` per second for `duration` seconds (or until
    `count`), each message's registration and receipts at their planned times."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        emit: Callable[[str], None] = print,
        verbose: bool = True,
        should_stop: Callable[[], str | None] | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        gateway: SendGateway | None = None,
    ) -> None:
        self.config = config
        self.emit = emit
        self.verbose = verbose
        self.should_stop = should_stop or (lambda: None)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.clock = clock
        self.sleep = sleep
        self.rng = random.Random(config.seed)  # noqa: S311 - simulated traffic, not security
        # What the receipts do not tell (traffic.plan_reach), on a sequence of its own: a seeded
        # run posts the same receipts whether or not conversions are simulated.
        self.reach_rng = random.Random(None if config.seed is None else f"reach:{config.seed}")  # noqa: S311
        self.report = SimulationReport()
        self._queue: list[tuple[float, int, str, MessagePlan, Post | None]] = []
        self._seq = 0
        self._connection_errors = 0
        # One wrong key per provider and run: a forgery is signed, just not by the provider.
        self._forged_keys: dict[str, str] = {}
        self.gateway = gateway
        # Recipient → the last plan that failed there, so a resend knows what it recovers from.
        self._failed: dict[str, MessagePlan] = {}
        self._last_activity = 0.0

    def check_server(self) -> None:
        """Fail fast, before any traffic, when the server is not there or refuses the token."""
        url = f"{self.config.api_url}?page_size=1"
        headers = {"Authorization": f"Token {self.config.token}"}
        try:
            response = self.session.get(url, headers=headers, timeout=self.config.request_timeout)
        except requests.RequestException as exc:
            raise SimulatorError(f"no server answers at {self.config.base_url}: {exc}") from None
        if response.status_code in {401, 403}:
            raise SimulatorError(f"the API refused the token (HTTP {response.status_code}): {response.text[:200]}")
        if response.status_code != 200:
            raise SimulatorError(f"GET {url} answered HTTP {response.status_code}: {response.text[:200]}")

    def run(self) -> SimulationReport:
        """Check the server, then simulate; raises SimulatorError only from that check."""
        self.check_server()
        config = self.config
        start = self._last_activity = self.clock()
        spawn_until = start + config.duration
        deadline = spawn_until + config.drain_grace + (config.resend_wait if self.gateway else 0.0)
        next_summary = start + config.summary_every
        try:
            while True:
                reason = self.should_stop()
                if reason:
                    self.report.stopped_because = reason
                    break
                now = self.clock()
                self._adopt_resends(now)
                spawning = now < spawn_until and (config.count is None or self.report.started < config.count)
                if not spawning and not self._queue and (now >= deadline or self._resends_over(now)):
                    # Resends the console schedules later than this are not waited for.
                    break
                if now >= deadline:
                    self.report.stopped_because = (
                        f"in-flight messages still pending {deadline - spawn_until:.0f} s after --duration"
                    )
                    break
                if self.verbose and now >= next_summary:
                    self.emit(self._progress(now - start))
                    next_summary += config.summary_every
                next_spawn = start + self.report.started / config.rate if spawning else float("inf")
                next_action = self._queue[0][0] if self._queue else float("inf")
                due = min(next_spawn, next_action)
                if due > now:
                    self.sleep(min(due - now, 0.25))
                    continue
                self._last_activity = now
                if next_spawn <= next_action:
                    self._start_message(now)
                else:
                    _, _, kind, plan, post = heapq.heappop(self._queue)
                    self._execute(kind, plan, post)
                if self._connection_errors >= MAX_CONSECUTIVE_CONNECTION_ERRORS:
                    self.report.stopped_because = (
                        f"{self._connection_errors} connection errors in a row: is the server up?"
                    )
                    break
        except KeyboardInterrupt:
            self.report.stopped_because = "interrupted"
        finally:
            if self.gateway is not None:
                # Whatever the console sends from now on would never get its receipts.
                self.gateway.stop_accepting()
        self.report.abandoned = len({id(entry[3]) for entry in self._queue})
        self.report.elapsed = self.clock() - start
        return self.report

    def _resends_over(self, now: float) -> bool:
        """Without a gateway, at once; with one, once the console has been quiet a while."""
        return self.gateway is None or now - self._last_activity >= self.config.resend_wait

    def _adopt_resends(self, now: float) -> None:
        if self.gateway is None:
            return
        for _ in range(MAX_ADOPTIONS_PER_PASS):
            try:
                resend = self.gateway.adopted.get_nowait()
            except queue.Empty:
                return
            self._last_activity = now
            self._play_resend(resend, now)

    def _play_resend(self, resend: AdoptedResend, now: float) -> None:
        target = next(t for t in self.config.targets if t.slug == resend.slug)
        plan = plan_resend(
            self.rng, self.config, target=target, provider_message_id=resend.provider_message_id,
            recipient=resend.to, country=resend.country, body=resend.body,
            original=self._failed.get(resend.to), now=datetime.now(UTC),
        )  # fmt: skip
        self.report.resends += 1
        self._track(plan)
        for post in plan.posts:
            self._push(now + post.due, post.kind, plan, post)

    def _track(self, plan: MessagePlan) -> None:
        self.report.expected_status[plan.key] = plan.expected_status()
        if self.gateway is not None:
            if plan.fate == "delivered":
                self._failed.pop(plan.recipient, None)
            else:
                self._failed[plan.recipient] = plan

    def _progress(self, elapsed: float) -> str:
        r = self.report
        return (
            f"[{elapsed:5.0f} s] {r.started} messages started, {r.completed} done · {r.status_summary()} · "
            f"receipts {r.outcome_summary()}"
        )

    def _push(self, due: float, kind: str, plan: MessagePlan, post: Post | None) -> None:
        self._seq += 1
        plan.pending += 1
        heapq.heappush(self._queue, (due, self._seq, kind, plan, post))

    def _start_message(self, now: float) -> None:
        plan = plan_message(self.rng, self.config, now=datetime.now(UTC))
        plan_reach(self.reach_rng, self.config, plan)
        self.report.started += 1
        self._track(plan)
        self._push(now + plan.register_due, "register", plan, None)
        for post in plan.posts:
            self._push(now + post.due, post.kind, plan, post)
        if plan.converts_due is not None:
            self._push(now + plan.converts_due, "conversion", plan, None)

    def _execute(self, kind: str, plan: MessagePlan, post: Post | None) -> None:
        if kind == "conversion":
            status = self._report_conversion(plan)
            plan.sent_log.append("code entered" + _mark(kind, status))
        elif post is None:
            status = self._register(plan)
            plan.sent_log.append("registered" + _mark(kind, status))
        else:
            status = self._post_receipt(plan, post)
            label = "+".join(plan.events[i].provider_status + _code(plan.events[i]) for i in post.events)
            suffix = {"duplicate": " (again)", "forged": " (forged)"}.get(post.kind, "")
            plan.sent_log.append(label + suffix + _mark(kind, status))
        plan.pending -= 1
        if plan.pending == 0:
            self.report.completed += 0 if plan.resend else 1
            if self.verbose:
                self.emit(self._describe(plan))

    def _describe(self, plan: MessagePlan) -> str:
        traits = f"  [{', '.join(plan.traits)}]" if plan.traits else ""
        return (
            f"{plan.target.slug:<16} {plan.provider_message_id[:14]:<14} {plan.recipient:<15} {plan.country} "
            f"{plan.flow:<14} {plan.fate:<18} {' > '.join(plan.sent_log)}{traits}"
        )

    def _register(self, plan: MessagePlan) -> int:
        payload = {
            "connection": plan.target.slug,
            "provider_message_id": plan.provider_message_id,
            "to": plan.recipient,
            "flow": plan.flow,
            "client_reference": plan.client_reference,
            "submitted_at": rfc3339(plan.submitted_at),
            "body": plan.body,
        }
        if plan.fallback_email:
            payload["fallback_email"] = plan.fallback_email
        return self._send(
            "register",
            plan,
            self.config.api_url,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", "Authorization": f"Token {self.config.token}"},
        )

    def _report_conversion(self, plan: MessagePlan) -> int:
        """The product tells the console the recipient entered the code, dated when they did
        (the message's start on this run's clock, plus the planned delay)."""
        converted_at = plan.submitted_at + timedelta(seconds=plan.converts_due or 0.0)
        payload = {
            "connection": plan.target.slug,
            "provider_message_id": plan.provider_message_id,
            "kind": CONVERSION_KIND,
            "converted_at": rfc3339(converted_at),
        }
        status = self._send(
            "conversion",
            plan,
            f"{self.config.api_url}conversions/",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", "Authorization": f"Token {self.config.token}"},
        )
        if status in EXPECTED_STATUS["conversion"]:
            self.report.conversions += 1
        return status

    def _post_receipt(self, plan: MessagePlan, post: Post) -> int:
        player = get_player(plan.target.provider)
        if post.kind == "forged":
            secret = self._forged_keys.setdefault(player.kind, player.forged_key())
        else:
            secret = plan.target.secret
        request = player.request(
            Delivery(
                plan=plan,
                events=[plan.events[i] for i in post.events],
                webhook_url=self.config.webhook_url(plan.target),
                secret=secret,
                delivery_id=post.delivery_id,
                attempt=2 if post.kind == "duplicate" else 1,
                now=time.time(),
            )
        )
        if not request.url.startswith(f"{self.config.base_url}/"):
            # Players build URLs from the webhook URL they are given; anything else is a bug.
            raise SimulatorError(f"the {player.kind} player built a request for another host")
        return self._send(post.kind, plan, request.url, request.body, request.headers, method=request.method)

    def _send(
        self, kind: str, plan: MessagePlan, url: str, body: bytes, headers: dict[str, str], *, method: str = "POST"
    ) -> int:
        try:
            response = self.session.request(
                method, url, data=body or None, headers=headers, timeout=self.config.request_timeout
            )
        except requests.RequestException as exc:
            self._connection_errors += 1
            self.report.responses[(kind, 0)] += 1
            self._unexpected(f"{kind} {plan.key}: {type(exc).__name__}: {exc}")
            return 0
        self._connection_errors = 0
        self.report.responses[(kind, response.status_code)] += 1
        if response.status_code not in EXPECTED_STATUS[kind]:
            self._unexpected(f"{kind} {plan.key}: HTTP {response.status_code} {response.text[:200]}")
        elif kind in {"receipt", "duplicate"}:
            try:
                counts = response.json()
            except ValueError:
                counts = {}
            for name, value in counts.items() if isinstance(counts, dict) else ():
                if isinstance(value, int):
                    self.report.outcomes[name] += value
        return response.status_code

    def _unexpected(self, line: str) -> None:
        self.report.unexpected_count += 1
        if len(self.report.unexpected) < 10:
            self.report.unexpected.append(line)


def _mark(kind: str, status: int) -> str:
    """Nothing for the expected answer, the status otherwise."""
    return "" if status in EXPECTED_STATUS[kind] else f" !{status or 'error'}"


def _code(event: Event) -> str:
    return f"({event.error_code})" if event.error_code else ""
