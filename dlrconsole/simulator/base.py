"""What the simulator's core and its provider players share: the events a provider reports,
the request a player builds for them, and the player interface itself."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from receipts.providers.registry import get_adapter
from receipts.statuses import Status

if TYPE_CHECKING:
    from dlrconsole.simulator.traffic import MessagePlan

USER_AGENT = "dlrconsole-simulator/1"

# What can happen to a message at the provider, besides `delivered` and `expired`: failure
# reasons named as in the error catalog (receipts/reasons.py). Each player says how its provider
# reports each of them, with error codes from providers.md §3 that the catalog recognises.
FAILURE_REASONS: tuple[str, ...] = (
    "absent_subscriber",
    "unknown_subscriber",
    "handset_busy",
    "memory_full",
    "network_error",
    "call_barred",
    "blocked_spam",
    "opted_out",
    "landline",
)
FATES: tuple[str, ...] = ("delivered", "expired", *FAILURE_REASONS)


class SimulatorError(Exception):
    """The simulation cannot start as configured; the message says why."""


@dataclass(frozen=True)
class Target:
    """One connection to play a provider against, with the key its requests are signed with."""

    slug: str
    provider: str
    # What the player signs with: the connection's secret, or what the player's `signing_key`
    # made of it (Telnyx: the private key of its public key; AWS SNS: token, key, certificate URL).
    secret: str
    # When set, URL-signed schemes (Twilio, Plivo) sign this URL, as the provider would call it.
    public_url: str = ""
    # The connection's options (e.g. which Vonage signature method the account uses).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One status a player's provider reports, `delay` seconds after the previous one."""

    status: str
    delay: float
    error_code: str = ""
    description: str = ""


@dataclass(frozen=True)
class Failure:
    """How a provider reports one failure reason: final status, error code and its text."""

    status: str
    code: str
    description: str = ""
    # Refused by the provider or the first network before any `sent` (no in-flight receipts).
    early: bool = False


@dataclass(frozen=True)
class Event:
    """One status the provider reports, at the moment it happened at the provider."""

    provider_status: str
    at: datetime
    offset: float  # seconds after the message started (scaled)
    error_code: str = ""
    error_description: str = ""


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    """What a player needs to build one webhook request."""

    plan: MessagePlan
    events: Sequence[Event]
    webhook_url: str  # /hooks/<slug>/ on the console, without a token
    secret: str  # the key to sign with: the connection's, or a wrong one for a forgery
    delivery_id: str  # the provider's id for this delivery, the same on its retries
    attempt: int  # 1, or 2 when the provider retries the same delivery
    now: float  # unix time of this attempt


class Player:
    """Plays one provider: its ids, realistic status sequences, error codes and signed requests.

    Subclasses set `kind` (a provider kind of the registry), `delivered`, `expired` and
    `failures` (one per FAILURE_REASONS entry), and implement message_id, in_flight and request.
    """

    kind: ClassVar[str]
    delivered: ClassVar[str]
    expired: ClassVar[Failure]
    failures: ClassVar[Mapping[str, Failure]]
    # Several events of one message may share a request (Standard Webhooks' list form).
    batches: ClassVar[bool] = False
    # Why `manage.py demo` cannot play this provider, when it cannot.
    not_in_demo: ClassVar[str] = ""

    def message_id(self, rng: random.Random) -> str:
        raise NotImplementedError

    def delivery_id(self, rng: random.Random) -> str:
        return uuid4(rng)

    def in_flight(self, rng: random.Random) -> list[Step]:
        """The non-final statuses the provider reports before the final one."""
        raise NotImplementedError

    def request(self, delivery: Delivery) -> OutgoingRequest:
        raise NotImplementedError

    def steps(self, rng: random.Random, fate: str) -> list[Step]:
        head = self.in_flight(rng)
        if fate == "delivered":
            # Median ~2 s with a long tail, as handsets acknowledge.
            return [*head, Step(self.delivered, min(8.0, rng.lognormvariate(0.7, 0.5)))]
        failure = self.expired if fate == "expired" else self.failures[fate]
        if failure.early:
            # Refused before reaching the carrier: nothing was ever `sent`.
            adapter = get_adapter(self.kind)
            head = [step for step in head if adapter.normalize_status(step.status) is Status.ACCEPTED]
        if fate == "expired":
            delay = rng.uniform(5.0, 9.0)
        else:
            delay = rng.uniform(0.2, 1.0) if failure.early else rng.uniform(2.0, 8.0)
        return [*head, Step(failure.status, delay, failure.code, failure.description)]

    def signing_key(self, slug: str, secrets: Sequence[str], private_key: str) -> str:
        """The key that signs this connection's requests: its first secret, for shared secrets."""
        return secrets[0]

    def forged_key(self) -> str:
        """A key of the right shape that is not the connection's: its posts must get 401."""
        return get_adapter(self.kind).generate_secret()

    def demo_keys(self) -> tuple[str, str]:
        """A fresh (connection secret, signing key) pair for a demo connection."""
        secret = get_adapter(self.kind).generate_secret()
        return secret, secret


def token_url(webhook_url: str, token: str) -> str:
    """/hooks/<slug>/<token>/: how providers that cannot sign present the connection's token."""
    return f"{webhook_url}{quote(token, safe='')}/"


def uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
