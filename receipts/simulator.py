"""A provider simulator: plays SMS providers against a running DLR Console over real HTTP.

For each simulated message it registers the message through the API (as the product would,
right after the provider accepted it) and then posts the provider's delivery receipts to the
connection's webhook URL, signed exactly as that provider signs them:

- twilio: x-www-form-urlencoded status callbacks with `X-Twilio-Signature` over the URL
  posted to (or the connection's `public_url`, the URL Twilio would have called through a
  proxy), one status per request;
- standard-webhooks: our generic JSON body with `webhook-id` / `webhook-timestamp` /
  `webhook-signature` headers, sometimes several events in one request (the list form).

Traffic is realistic rather than tidy: most messages end `delivered`, some `undelivered` with a
provider error code, some expire or are refused, a few never get a final receipt; a receipt is
sometimes posted twice (a provider retry), sometimes out of order, sometimes before the message
is registered (it is parked, then linked). `bad_signature_rate` adds deliberately forged posts
(wrong secret), which must be refused with 401.

Nothing here touches the database except `load_targets`, which reads connections' secrets
through the ORM; everything else goes through HTTP, so the real webhook path is exercised.
"""

from __future__ import annotations

import hashlib
import heapq
import ipaddress
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import phonenumbers
import requests

from receipts.providers import get_adapter, standard_webhooks, twilio
from receipts.statuses import resolve

SUPPORTED_PROVIDERS = ("twilio", "standard-webhooks")
USER_AGENT = "dlrconsole-simulator/1"
# A run gives up when the server has stopped answering at all.
MAX_CONSECUTIVE_CONNECTION_ERRORS = 20
# What each kind of request must be answered with; anything else is reported as unexpected.
EXPECTED_STATUS: dict[str, frozenset[int]] = {
    "register": frozenset({200, 201}),
    "receipt": frozenset({200}),
    "duplicate": frozenset({200}),
    "forged": frozenset({401}),
}


class SimulatorError(Exception):
    """The simulation cannot start as configured; the message says why."""


@dataclass(frozen=True)
class Target:
    """One connection to play a provider against, with the secret it signs with."""

    slug: str
    provider: str
    secret: str
    # When set, Twilio signatures cover this URL (what Twilio calls through a proxy).
    public_url: str = ""


def load_targets(slugs: Sequence[str]) -> list[Target]:
    """Read the connections' provider and first secret from the database."""
    from receipts.models import Connection

    targets = []
    for slug in slugs:
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise SimulatorError(f"no connection {slug!r}; create it with `manage.py create_connection`")
        if not connection.enabled:
            raise SimulatorError(f"connection {slug!r} is disabled; its webhook answers 404")
        if connection.provider not in SUPPORTED_PROVIDERS:
            raise SimulatorError(
                f"connection {slug!r} is a {connection.provider!r} connection; the simulator plays "
                f"{', '.join(SUPPORTED_PROVIDERS)}"
            )
        if not connection.secrets:
            raise SimulatorError(f"connection {slug!r} has no secret to sign with")
        targets.append(
            Target(
                slug=slug, provider=connection.provider, secret=connection.secrets[0], public_url=connection.public_url
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
    duplicate_rate: float = 0.05
    out_of_order_rate: float = 0.1
    early_receipt_rate: float = 0.05  # receipt posted before the registration (parked, then linked)
    batch_rate: float = 0.15  # standard-webhooks only: two events in one request (list form)
    bad_signature_rate: float = 0.0  # deliberately forged posts, expected to get 401
    time_scale: float = 1.0  # multiplies the delays between a message's events
    allow_remote: bool = False
    request_timeout: float = 10.0
    summary_every: float = 10.0
    # In-flight messages get this long after `duration` to post their last receipts.
    drain_grace: float = 30.0

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
        for name in ("duplicate_rate", "out_of_order_rate", "early_receipt_rate", "batch_rate", "bad_signature_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise SimulatorError(f"{name.replace('_', '-')} must be between 0 and 1")
        for target in self.targets:
            if target.provider not in SUPPORTED_PROVIDERS:
                raise SimulatorError(f"no simulator for provider {target.provider!r}")
        object.__setattr__(self, "base_url", check_base_url(self.base_url, allow_remote=self.allow_remote))

    def webhook_url(self, target: Target) -> str:
        return f"{self.base_url}/hooks/{target.slug}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1/messages/"


# --- What a simulated message looks like -----------------------------------------------------

# (region, weight, national-number generator); generated numbers are checked with phonenumbers.
COUNTRIES: tuple[tuple[str, int, str], ...] = (
    ("FR", 25, "+33{6|7}########"),
    ("GB", 20, "+447{4|5|7|8|9}########"),
    ("US", 20, "+1{212|310|415|512|617|646|702|718|786|917}{2|3|4|5|6|7|8|9}######"),
    ("DE", 15, "+49{151|152|157|160|162|170|171|172|176|177|178|179}#######"),
    ("BR", 8, "+55{11|21|31|41|51|61|71|81}9########"),
    ("IN", 7, "+91{6|7|8|9}#########"),
    ("NG", 5, "+234{803|806|813|816|703|706|810|814|903}#######"),
)
# Failures are more common on some routes; a simple multiplier of the failure weights.
COUNTRY_FAILURE_FACTOR = {"NG": 3.0, "IN": 2.0, "BR": 1.5}
FLOWS: tuple[tuple[str, int], ...] = (
    ("login-otp", 45),
    ("order-update", 25),
    ("marketing", 20),
    ("password-reset", 10),
)

# Twilio error codes seen in status callbacks (https://www.twilio.com/docs/api/errors).
TWILIO_UNDELIVERED = ("30003", "30005", "30006", "30007", "30008")
TWILIO_FAILED = ("30001", "30007")
TWILIO_VALIDITY_EXPIRED = "30036"  # Twilio reports an expired validity period as `failed`
# GSM MAP errors as generic gateways pass them through from the SMSC.
MAP_UNDELIVERED = (
    ("1", "Unknown subscriber"),
    ("6", "Absent subscriber for SM"),
    ("27", "Absent subscriber"),
    ("31", "Subscriber busy for MT-SMS"),
    ("32", "SM delivery failure"),
    ("34", "System failure"),
)
MAP_REJECTED = (("11", "Teleservice not provisioned"), ("13", "Call barred"), ("9", "Illegal subscriber"))

# outcome → weight; failures scaled per country.
OUTCOMES: tuple[tuple[str, float], ...] = (
    ("delivered", 82),
    ("undelivered", 9),
    ("expired", 4),
    ("refused", 3),
    ("no-final", 2),
)


@dataclass(frozen=True)
class Event:
    """One status the provider reports, at the moment it happened at the provider."""

    provider_status: str
    at: datetime
    offset: float  # seconds after the message started (scaled)
    error_code: str = ""
    error_description: str = ""


@dataclass
class Post:
    """One webhook request; a duplicate re-sends another post's delivery (same id and body)."""

    due: float  # seconds after the message started
    events: tuple[int, ...]  # indices into MessagePlan.events
    delivery_id: str  # webhook-id, or Twilio's I-Twilio-Idempotency-Token
    kind: str = "receipt"  # "receipt" | "duplicate" | "forged"


@dataclass
class MessagePlan:
    target: Target
    provider_message_id: str
    recipient: str
    country: str
    flow: str
    client_reference: str
    submitted_at: datetime
    outcome: str
    events: list[Event]
    posts: list[Post]
    register_due: float
    traits: list[str] = field(default_factory=list)
    sent_log: list[str] = field(default_factory=list)
    pending: int = 0

    @property
    def key(self) -> str:
        return f"{self.target.slug}:{self.provider_message_id}"

    def expected_status(self) -> str:
        """The status the console must end with, whatever order the receipts arrived in."""
        adapter = get_adapter(self.target.provider)
        return resolve([adapter.normalize_status(event.provider_status).value for event in self.events])


def random_number(rng: random.Random) -> tuple[str, str]:
    """A valid mobile number in E.164 and its region, from a weighted set of countries."""
    region, _, pattern = rng.choices(COUNTRIES, weights=[c[1] for c in COUNTRIES])[0]
    for _attempt in range(20):
        number = _fill(rng, pattern)
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                return number, region
        except phonenumbers.NumberParseException:
            continue
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        raise SimulatorError(f"cannot make a valid number for {region}")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164), region


def _fill(rng: random.Random, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "#":
            out.append(str(rng.randrange(10)))
        elif char == "{":
            end = pattern.index("}", i)
            out.append(rng.choice(pattern[i + 1 : end].split("|")))
            i = end
        else:
            out.append(char)
        i += 1
    return "".join(out)


def client_reference(rng: random.Random, flow: str, now: datetime) -> str:
    if flow == "login-otp":
        return f"otp-{rng.getrandbits(32):08x}"
    if flow == "password-reset":
        return f"pwreset-{rng.getrandbits(32):08x}"
    if flow == "order-update":
        return f"order-{rng.randrange(1_000_000, 9_999_999)}"
    return f"camp-{now:%Y%m%d}-{rng.randrange(10_000, 99_999)}"


def _statuses(rng: random.Random, target: Target, outcome: str) -> list[tuple[str, float, str, str]]:
    """(provider status, delay after the previous event in seconds, error code, description)."""
    up = rng.uniform
    delivered_after = min(8.0, rng.lognormvariate(0.7, 0.5))  # median ~2 s, a long tail
    if target.provider == "twilio":
        head = rng.choice(
            [
                [("sent", up(0.3, 1.2))],
                [("accepted", up(0.1, 0.3)), ("sent", up(0.2, 0.8))],
                [("queued", up(0.1, 0.3)), ("sent", up(0.2, 0.8))],
            ]
        )
        rows = [(status, delay, "", "") for status, delay in head]
        if outcome == "delivered":
            rows.append(("delivered", delivered_after, "", ""))
        elif outcome == "undelivered":
            rows.append(("undelivered", up(2.0, 8.0), rng.choice(TWILIO_UNDELIVERED), ""))
        elif outcome == "expired":
            rows.append(("failed", up(5.0, 9.0), TWILIO_VALIDITY_EXPIRED, ""))
        elif outcome == "refused":
            rows = [("accepted", up(0.1, 0.3), "", ""), ("failed", up(0.2, 1.0), rng.choice(TWILIO_FAILED), "")]
        return rows
    smpp_words = rng.random() < 0.25  # some gateways pass the SMPP DLR words through
    rows = [
        ("submitted" if smpp_words else "accepted", up(0.1, 0.3), "", ""),
        ("enroute" if smpp_words else "sent", up(0.2, 1.0), "", ""),
    ]
    if outcome == "delivered":
        rows.append(("DELIVRD" if smpp_words else "delivered", delivered_after, "", ""))
    elif outcome == "undelivered":
        code, description = rng.choice(MAP_UNDELIVERED)
        rows.append(("UNDELIV" if smpp_words else "undelivered", up(2.0, 8.0), code, description))
    elif outcome == "expired":
        rows.append(("expired", up(5.0, 9.0), "", "Validity period expired"))
    elif outcome == "refused":
        code, description = rng.choice(MAP_REJECTED)
        rows = [("REJECTD" if smpp_words else "rejected", up(0.1, 0.5), code, description)]
    return rows


def plan_message(rng: random.Random, config: SimulatorConfig, *, now: datetime) -> MessagePlan:
    """Everything that will happen to one simulated message, with times relative to its start."""
    target = rng.choice(list(config.targets))
    recipient, country = random_number(rng)
    flow = rng.choices(FLOWS, weights=[f[1] for f in FLOWS])[0][0]
    factor = COUNTRY_FAILURE_FACTOR.get(country, 1.0)
    outcome = rng.choices(
        [name for name, _ in OUTCOMES], weights=[w if name == "delivered" else w * factor for name, w in OUTCOMES]
    )[0]
    # Twilio SIDs are SM + 32 hex digits; gateways have ids of their own making.
    message_id = f"SM{rng.getrandbits(128):032x}" if target.provider == "twilio" else f"gw-{rng.getrandbits(96):024x}"

    scale = config.time_scale
    events: list[Event] = []
    offset = 0.0
    # "no-final" messages get their in-flight statuses only: a receipt that never comes.
    for status, delay, code, description in _statuses(rng, target, outcome):
        offset += delay * scale
        events.append(Event(status, now + timedelta(seconds=offset), offset, code, description))

    def delivery_id() -> str:
        return f"msg_{rng.getrandbits(128):032x}" if target.provider != "twilio" else _uuid(rng)

    traits: list[str] = []
    groups: list[tuple[int, ...]] = [(i,) for i in range(len(events))]
    if target.provider == "standard-webhooks" and len(events) >= 2 and rng.random() < config.batch_rate:
        groups = [(0, 1), *groups[2:]]
        traits.append("batch")
    # Each post leaves shortly after its last event happened.
    posts = [Post(events[g[-1]].offset + rng.uniform(0.02, 0.2) * scale, g, delivery_id()) for g in groups]

    if len(posts) >= 2 and rng.random() < config.out_of_order_rate:
        posts[-1].due, posts[-2].due = posts[-2].due, posts[-1].due
        traits.append("out of order")
    register_due = 0.0
    if posts and rng.random() < config.early_receipt_rate:
        first = min(post.due for post in posts)
        register_due = first + rng.uniform(0.3, 1.5) * scale
        traits.append("receipt before registration")
    extra: list[Post] = []
    if posts and rng.random() < config.duplicate_rate:
        original = rng.choice(posts)
        extra.append(
            Post(original.due + rng.uniform(0.2, 2.0) * scale, original.events, original.delivery_id, "duplicate")
        )
        traits.append("duplicate")
    if posts and rng.random() < config.bad_signature_rate:
        original = rng.choice(posts)
        extra.append(Post(original.due + 0.05 * scale, original.events, delivery_id(), "forged"))
        traits.append("forged signature")
    flow_ref = client_reference(rng, flow, now)
    return MessagePlan(
        target=target,
        provider_message_id=message_id,
        recipient=recipient,
        country=country,
        flow=flow,
        client_reference=flow_ref,
        submitted_at=now,
        outcome=outcome,
        events=events,
        posts=posts + extra,
        register_due=register_due,
        traits=traits,
    )


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


# --- Building the provider's requests ----------------------------------------------------------


@dataclass(frozen=True)
class OutgoingRequest:
    url: str
    body: bytes
    headers: dict[str, str]


def twilio_request(config: SimulatorConfig, plan: MessagePlan, post: Post, *, secret: str) -> OutgoingRequest:
    (index,) = post.events  # Twilio posts one status per callback
    event = plan.events[index]
    target = plan.target
    form = {
        "AccountSid": "AC" + hashlib.md5(target.slug.encode(), usedforsecurity=False).hexdigest(),
        "ApiVersion": "2010-04-01",
        "From": "+15017122661",
        "To": plan.recipient,
        "MessageSid": plan.provider_message_id,
        "SmsSid": plan.provider_message_id,
        "MessageStatus": event.provider_status,
        "SmsStatus": event.provider_status,
    }
    if event.error_code:
        form["ErrorCode"] = event.error_code
    if event.provider_status in {"delivered", "undelivered"}:
        form["RawDlrDoneDate"] = event.at.astimezone(UTC).strftime("%y%m%d%H%M")
    url = config.webhook_url(target)
    signed_url = target.public_url or url
    return OutgoingRequest(
        url=url,
        body=urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio.signature(secret, signed_url, {k: [v] for k, v in form.items()}),
            "I-Twilio-Idempotency-Token": post.delivery_id,
            "User-Agent": "TwilioProxy/1.1",
        },
    )


def generic_request(
    config: SimulatorConfig, plan: MessagePlan, post: Post, *, secret: str, now: float
) -> OutgoingRequest:
    items: list[dict[str, str]] = []
    for index in post.events:
        event = plan.events[index]
        item = {
            "message_id": plan.provider_message_id,
            "status": event.provider_status,
            "timestamp": _rfc3339(event.at),
        }
        if event.error_code:
            item["error_code"] = event.error_code
        if event.error_description:
            item["error_description"] = event.error_description
        items.append(item)
    data: object = items if len(items) > 1 else items[0]
    first = plan.events[post.events[0]]
    # Deterministic from the post: a retry re-sends the very same body under the same id.
    body = json.dumps({"type": "message.status", "timestamp": _rfc3339(first.at), "data": data}).encode()
    timestamp = int(now)  # a retry is signed afresh, with the time of that attempt
    return OutgoingRequest(
        url=config.webhook_url(plan.target),
        body=body,
        headers={
            "Content-Type": "application/json",
            "webhook-id": post.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_webhooks.sign(secret, post.delivery_id, timestamp, body),
            "User-Agent": USER_AGENT,
        },
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


FORGED_TWILIO_TOKEN = "forged-auth-token-not-the-connections"  # noqa: S105 - deliberately wrong
FORGED_GENERIC_SECRET = standard_webhooks.SECRET_PREFIX + "Zm9yZ2VkLXNlY3JldC1ub3QtdGhlLWNvbm5lY3Rpb25zIQ=="


def build_request(config: SimulatorConfig, plan: MessagePlan, post: Post, *, now: float) -> OutgoingRequest:
    twilio_kind = plan.target.provider == "twilio"
    secret = plan.target.secret
    if post.kind == "forged":
        secret = FORGED_TWILIO_TOKEN if twilio_kind else FORGED_GENERIC_SECRET
    if twilio_kind:
        return twilio_request(config, plan, post, secret=secret)
    return generic_request(config, plan, post, secret=secret, now=now)


# --- Running -----------------------------------------------------------------------------------


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
        self.report = SimulationReport()
        self._queue: list[tuple[float, int, str, MessagePlan, Post | None]] = []
        self._seq = 0
        self._connection_errors = 0

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
        start = self.clock()
        spawn_until = start + config.duration
        deadline = spawn_until + config.drain_grace
        next_summary = start + config.summary_every
        try:
            while True:
                reason = self.should_stop()
                if reason:
                    self.report.stopped_because = reason
                    break
                now = self.clock()
                spawning = now < spawn_until and (config.count is None or self.report.started < config.count)
                if not spawning and not self._queue:
                    break
                if now >= deadline:
                    self.report.stopped_because = (
                        f"in-flight messages still pending {config.drain_grace:.0f} s after --duration"
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
        self.report.abandoned = len({id(entry[3]) for entry in self._queue})
        self.report.elapsed = self.clock() - start
        return self.report

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
        self.report.started += 1
        self.report.expected_status[plan.key] = plan.expected_status()
        self._push(now + plan.register_due, "register", plan, None)
        for post in plan.posts:
            self._push(now + post.due, post.kind, plan, post)

    def _execute(self, kind: str, plan: MessagePlan, post: Post | None) -> None:
        if post is None:
            status = self._register(plan)
            plan.sent_log.append("registered" + _mark(kind, status))
        else:
            status = self._post_receipt(plan, post)
            label = "+".join(plan.events[i].provider_status + _code(plan.events[i]) for i in post.events)
            suffix = {"duplicate": " (again)", "forged": " (forged)"}.get(post.kind, "")
            plan.sent_log.append(label + suffix + _mark(kind, status))
        plan.pending -= 1
        if plan.pending == 0:
            self.report.completed += 1
            if self.verbose:
                self.emit(self._describe(plan))

    def _describe(self, plan: MessagePlan) -> str:
        traits = f"  [{', '.join(plan.traits)}]" if plan.traits else ""
        return (
            f"{plan.target.slug:<14} {plan.provider_message_id[:14]:<14} {plan.recipient:<15} {plan.country} "
            f"{plan.flow:<14} {' > '.join(plan.sent_log)}{traits}"
        )

    def _register(self, plan: MessagePlan) -> int:
        payload = {
            "connection": plan.target.slug,
            "provider_message_id": plan.provider_message_id,
            "to": plan.recipient,
            "flow": plan.flow,
            "client_reference": plan.client_reference,
            "submitted_at": _rfc3339(plan.submitted_at),
        }
        return self._send(
            "register",
            plan,
            self.config.api_url,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", "Authorization": f"Token {self.config.token}"},
        )

    def _post_receipt(self, plan: MessagePlan, post: Post) -> int:
        request = build_request(self.config, plan, post, now=time.time())
        return self._send(post.kind, plan, request.url, request.body, request.headers)

    def _send(self, kind: str, plan: MessagePlan, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            response = self.session.post(url, data=body, headers=headers, timeout=self.config.request_timeout)
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
