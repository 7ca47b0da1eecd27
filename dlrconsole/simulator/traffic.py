"""What simulated traffic looks like: who the messages go to, what happens to them in each
country, and when each of their requests is posted.

A message's fate (delivered, expired, or a failure reason) is drawn from its country's mix;
the player turns the fate into the provider's own statuses and error codes. Transport
anomalies (duplicates, out of order, late, missing, before registration, forged) are drawn
from the run's rates, independently of the country.

A lying route (a connection named in the run's `lying`) reports every message `delivered`
whatever happened: at once, well under the second a handset needs, with a done date before the
message was even submitted. Its receipts look perfect; the route trust score must catch it
(receipts/honesty.py).

What the receipts do not tell, the simulator still knows (plan_reach): whether a message truly
reached a handset (on an honest route, when it was delivered; on a lying route, only a share of
its "delivered", LYING_ROUTE_REACH) and whether the recipient then acted on it. For the flows that
send a code, most recipients who got it enter it a few seconds later, and the simulated product
reports that as a conversion through the API, as a real product would: the trust score's
strongest signal.

A resend (the console retrying a failed message through the simulated send API) is planned
the same way, except its fate: a temporary condition has often cleared by then (RESEND_RECOVERY).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import phonenumbers

from dlrconsole.simulator.base import FATES, Event, Player, SimulatorError, Target
from dlrconsole.simulator.players.registry import get_player
from receipts.providers.registry import get_adapter
from receipts.statuses import resolve

if TYPE_CHECKING:
    from dlrconsole.simulator.runner import SimulatorConfig

Mix = Mapping[str, float]

# Routes to Western Europe deliver nearly everything; a failure is most often a phone that is
# off or a number that no longer exists.
WESTERN_EUROPE: Mix = {
    "delivered": 96.0,
    "absent_subscriber": 1.2,
    "unknown_subscriber": 0.8,
    "expired": 0.5,
    "landline": 0.3,
    "network_error": 0.3,
    "handset_busy": 0.2,
    "memory_full": 0.2,
    "blocked_spam": 0.2,
    "opted_out": 0.2,
    "call_barred": 0.1,
}
# Country → fate weights. US carriers filter unregistered traffic (10DLC) and many numbers are
# landlines; India's DLT and DND registries block and opt out; on Nigerian and Brazilian routes
# phones are more often off or the network fails, and messages expire.
DEFAULT_MIXES: dict[str, Mix] = {
    "FR": WESTERN_EUROPE,
    "GB": WESTERN_EUROPE,
    "DE": WESTERN_EUROPE,
    "US": {
        "delivered": 91.0,
        "blocked_spam": 3.0,
        "landline": 1.5,
        "absent_subscriber": 1.5,
        "opted_out": 1.0,
        "unknown_subscriber": 1.0,
        "expired": 0.5,
        "network_error": 0.5,
    },
    "BR": {
        "delivered": 88.0,
        "absent_subscriber": 5.0,
        "network_error": 2.0,
        "expired": 2.0,
        "unknown_subscriber": 1.5,
        "memory_full": 1.0,
        "handset_busy": 0.5,
    },
    "IN": {
        "delivered": 84.0,
        "blocked_spam": 5.0,
        "opted_out": 4.0,
        "absent_subscriber": 3.0,
        "expired": 2.0,
        "network_error": 1.0,
        "unknown_subscriber": 1.0,
    },
    "NG": {
        "delivered": 78.0,
        "absent_subscriber": 9.0,
        "network_error": 4.0,
        "expired": 4.0,
        "unknown_subscriber": 2.0,
        "call_barred": 1.5,
        "memory_full": 1.0,
        "handset_busy": 0.5,
    },
}
# (region, share of traffic, number pattern); generated numbers are checked with phonenumbers.
COUNTRIES: tuple[tuple[str, int, str], ...] = (
    ("FR", 25, "+33{6|7}########"),
    ("GB", 20, "+447{4|5|7|8|9}########"),
    ("US", 20, "+1{212|310|415|512|617|646|702|718|786|917}{2|3|4|5|6|7|8|9}######"),
    ("DE", 15, "+49{151|152|157|160|162|170|171|172|176|177|178|179}#######"),
    ("BR", 8, "+55{11|21|31|41|51|61|71|81}9########"),
    ("IN", 7, "+91{6|7|8|9}#########"),
    ("NG", 5, "+234{803|806|813|816|703|706|810|814|903}#######"),
)
FLOWS: tuple[tuple[str, int], ...] = (
    ("login-otp", 45),
    ("order-update", 25),
    ("marketing", 20),
    ("password-reset", 10),
)
# Flows whose messages the product registers with an e-mail address, for the e-mail fallback:
# a sign-in or a reset must reach the user somehow; news and offers need not.
FALLBACK_EMAIL_FLOWS = frozenset({"login-otp", "password-reset"})


# How often a resend of a message that failed for a temporary reason is delivered; otherwise it
# fails again the same way. The console resends a minute or more later (its default backoff):
# a busy handset or a congested route has long recovered, a phone that was off or out of
# coverage usually is back (people step out of a tunnel or a meeting, not off the grid), an
# expired message mostly meant the same, a full inbox needs its owner to act, and a barring is
# the operator's decision, seldom lifted within minutes.
RESEND_RECOVERY: dict[str, float] = {
    "handset_busy": 0.9,
    "network_error": 0.8,
    "absent_subscriber": 0.75,
    "expired": 0.6,
    "memory_full": 0.4,
    "call_barred": 0.2,
}
MARKETING_OFFERS = (
    "20% off everything this weekend with code SPRING",
    "free delivery on your next order until Sunday",
    "your loyalty points expire soon: 450 points left",
)
ORDER_NEWS = ("has shipped and arrives tomorrow", "is out for delivery today", "is ready for pickup")


def parse_mixes(data: Any) -> dict[str, dict[str, float]]:
    """Country mixes from JSON (`{"NG": {"delivered": 70, "absent_subscriber": 30}}`), checked;
    they replace the default mix of the countries they name."""
    if not isinstance(data, dict):
        raise SimulatorError("a country mix is a JSON object: country → {fate: weight}")
    known = {region for region, _, _ in COUNTRIES}
    mixes: dict[str, dict[str, float]] = {}
    for country, weights in data.items():
        if country not in known:
            raise SimulatorError(f"no simulated country {country!r}; known: {', '.join(sorted(known))}")
        if not isinstance(weights, dict) or not weights:
            raise SimulatorError(f"the mix of {country} must be a non-empty object of fate → weight")
        for fate, weight in weights.items():
            if fate not in FATES:
                raise SimulatorError(f"unknown fate {fate!r} in the mix of {country}; known: {', '.join(FATES)}")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise SimulatorError(f"the weight of {fate} in {country} must be a non-negative number")
        if not sum(weights.values()):
            raise SimulatorError(f"the weights of {country} add up to zero")
        mixes[country] = {fate: float(weight) for fate, weight in weights.items()}
    return mixes


def choose_fate(rng: random.Random, mix: Mix) -> str:
    fates = list(mix)
    return rng.choices(fates, weights=[mix[fate] for fate in fates])[0]


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


def fallback_email(flow: str, reference: str) -> str:
    """The address the product registers for the e-mail fallback, or "" for flows without one;
    on a reserved domain (RFC 2606), from the reference so that it draws nothing from the run's
    random sequence (a seeded run plays the same traffic as before)."""
    return f"{reference}@example.net" if flow in FALLBACK_EMAIL_FLOWS else ""


def message_body(rng: random.Random, flow: str, reference: str) -> str:
    """The text the product sends for `flow`: what a resend sends again."""
    code = f"{rng.randrange(1_000_000):06d}"
    if flow == "login-otp":
        return f"Your ACME code is {code}. It expires in 10 minutes; never share it."
    if flow == "password-reset":
        return f"ACME: use {code} to reset your password. Not you? Ignore this message."
    if flow == "order-update":
        return f"ACME: your order {reference.removeprefix('order-')} {rng.choice(ORDER_NEWS)}."
    return f"ACME: {rng.choice(MARKETING_OFFERS)}. Reply STOP to opt out."


def resend_fate(rng: random.Random, config: SimulatorConfig, *, country: str, previous_fate: str) -> str:
    """What happens to a resend: recovery or the same failure again after a temporary one; the
    country's mix when the simulator did not play the original (a manual resend, say)."""
    recovery = RESEND_RECOVERY.get(previous_fate)
    if recovery is None:
        return choose_fate(rng, config.mix_for(country))
    return "delivered" if rng.random() < recovery else previous_fate


@dataclass
class Post:
    """One webhook request; a duplicate re-sends another post's delivery (same id and body)."""

    due: float  # seconds after the message started
    events: tuple[int, ...]  # indices into MessagePlan.events
    delivery_id: str  # webhook-id, Telnyx event id, Twilio's I-Twilio-Idempotency-Token, ...
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
    fate: str
    events: list[Event]
    posts: list[Post]
    register_due: float
    body: str = ""
    fallback_email: str = ""
    # Sent by the console through the simulated send API: the console registers it, not us.
    resend: bool = False
    traits: list[str] = field(default_factory=list)
    sent_log: list[str] = field(default_factory=list)
    pending: int = 0
    # What no receipt says (plan_reach): the message truly reached a handset, and when the
    # recipient acted on it (seconds after the start), which the product reports; None: never.
    reached_handset: bool = False
    converts_due: float | None = None

    @property
    def key(self) -> str:
        return f"{self.target.slug}:{self.provider_message_id}"

    def expected_status(self) -> str:
        """The status the console must end with, whatever order the receipts arrived in."""
        adapter = get_adapter(self.target.provider)
        return resolve([adapter.normalize_status(event.provider_status).value for event in self.events])


def plan_message(rng: random.Random, config: SimulatorConfig, *, now: datetime) -> MessagePlan:
    """Everything that will happen to one simulated message, with times relative to its start."""
    target = rng.choice(list(config.targets))
    player = get_player(target.provider)
    recipient, country = random_number(rng)
    flow = rng.choices(FLOWS, weights=[f[1] for f in FLOWS])[0][0]
    fate = "delivered" if target.slug in config.lying else choose_fate(rng, config.mix_for(country))
    message_id = player.message_id(rng)
    events, posts, traits = _plan_requests(rng, config, target, fate, now=now)

    register_due = 0.0
    if posts and rng.random() < config.early_receipt_rate:
        register_due = min(post.due for post in posts) + rng.uniform(0.3, 1.5) * config.time_scale
        traits.append("receipt before registration")
    posts += _extra_posts(rng, config, target, posts, traits)
    reference = client_reference(rng, flow, now)
    return MessagePlan(
        target=target,
        provider_message_id=message_id,
        recipient=recipient,
        country=country,
        flow=flow,
        client_reference=reference,
        submitted_at=now,
        fate=fate,
        events=events,
        posts=posts,
        register_due=register_due,
        body=message_body(rng, flow, reference),
        fallback_email=fallback_email(flow, reference),
        traits=traits,
    )


def plan_resend(
    rng: random.Random,
    config: SimulatorConfig,
    *,
    target: Target,
    provider_message_id: str,
    recipient: str,
    country: str,
    body: str,
    original: MessagePlan | None,
    now: datetime,
) -> MessagePlan:
    """A message the console resent through the simulated send API, under the id the API gave
    it: its receipts as for any message, its fate after RESEND_RECOVERY; no registration."""
    if target.slug in config.lying:
        fate = "delivered"
    else:
        fate = resend_fate(rng, config, country=country, previous_fate=original.fate if original else "")
    events, posts, traits = _plan_requests(rng, config, target, fate, now=now)
    posts += _extra_posts(rng, config, target, posts, traits)
    return MessagePlan(
        target=target,
        provider_message_id=provider_message_id,
        recipient=recipient,
        country=country,
        flow=original.flow if original else "",
        client_reference=original.client_reference if original else "",
        submitted_at=now,
        fate=fate,
        events=events,
        posts=posts,
        register_due=0.0,
        body=body,
        resend=True,
        traits=["resend", *traits],
    )


def _plan_requests(
    rng: random.Random, config: SimulatorConfig, target: Target, fate: str, *, now: datetime
) -> tuple[list[Event], list[Post], list[str]]:
    """The provider's events for `fate` and the webhook posts that report them, in disorder."""
    player = get_player(target.provider)
    if target.slug in config.lying:
        return _faked_delivery(rng, player, now=now)
    scale = config.time_scale
    events: list[Event] = []
    offset = 0.0
    for step in player.steps(rng, fate):
        offset += step.delay * scale
        events.append(Event(step.status, now + timedelta(seconds=offset), offset, step.error_code, step.description))
    traits: list[str] = []
    if events and rng.random() < config.missing_rate:
        # The provider never reports the outcome: the final receipt is lost, not posted.
        events.pop()
        traits.append("final receipt missing")

    groups: list[tuple[int, ...]] = [(i,) for i in range(len(events))]
    if player.batches and len(events) >= 2 and rng.random() < config.batch_rate:
        groups = [(0, 1), *groups[2:]]
        traits.append("batch")
    # Each post leaves shortly after its last event happened.
    posts = [Post(events[g[-1]].offset + rng.uniform(0.02, 0.2) * scale, g, player.delivery_id(rng)) for g in groups]
    _disorder(rng, config, posts, traits)
    return events, posts, traits


# How a lying route answers: "delivered" posted within a fraction of a second, whatever the run's
# time scale (it never waited for a handset), dated 3 to 15 minutes before the submission (well
# past the minute that honest done dates are rounded down to).
FAKED_POST_DELAY = (0.05, 0.4)
FAKED_BACKDATE = (180.0, 900.0)


def _faked_delivery(rng: random.Random, player: Player, *, now: datetime) -> tuple[list[Event], list[Post], list[str]]:
    offset = rng.uniform(*FAKED_POST_DELAY)
    done = now - timedelta(seconds=rng.uniform(*FAKED_BACKDATE))
    return [Event(player.delivered, done, offset)], [Post(offset, (0,), player.delivery_id(rng))], ["faked delivered"]


# The simulated product's conversions (receipts/conversions.py): the share of the codes that reach
# a handset which the recipient enters (some give up, some sign in another way), and when. Only
# the flows that send a code are reported; a real product may report links opened too.
CONVERSION_RATES: dict[str, float] = {"login-otp": 0.9, "password-reset": 0.85}
CONVERSION_KIND = "otp_entered"  # Conversion.Kind.OTP_ENTERED, not imported: models load after this app
# Seconds between the handset getting the code and the product seeing it entered: reading the
# message, switching apps, typing six digits.
CONVERSION_DELAY = (3.0, 15.0)
# A lying route forwards only some of what it calls delivered (a grey route drops the rest) and
# those that arrive take their time.
LYING_ROUTE_REACH = 0.3
LYING_ROUTE_ARRIVAL = (2.0, 20.0)


def plan_reach(rng: random.Random, config: SimulatorConfig, plan: MessagePlan) -> None:
    """Whether `plan` truly reaches a handset and whether, and when, the recipient enters its
    code. Drawn from its own random sequence (`rng`), so a seeded run posts the same receipts as
    before conversions were simulated. A resend is not reported on: the product knows only the
    messages it registered, under their ids."""
    scale = config.time_scale
    if plan.target.slug in config.lying:
        plan.reached_handset = rng.random() < LYING_ROUTE_REACH
        arrived = rng.uniform(*LYING_ROUTE_ARRIVAL) * scale
        if not plan.reached_handset:
            plan.traits.append("never reached a handset")
    else:
        plan.reached_handset = plan.fate == "delivered"
        # The delivered event; the last one there is when the final receipt is lost.
        arrived = max((event.offset for event in plan.events), default=0.0)
    rate = CONVERSION_RATES.get(plan.flow)
    if plan.resend or not plan.reached_handset or rate is None or rng.random() >= rate:
        return
    # Never before the product registered it: the product reports what it knows of.
    plan.converts_due = max(arrived, plan.register_due) + rng.uniform(*CONVERSION_DELAY) * scale


def _extra_posts(
    rng: random.Random, config: SimulatorConfig, target: Target, posts: list[Post], traits: list[str]
) -> list[Post]:
    """A provider retry of one post (same delivery id) and a forgery, as the rates say."""
    player = get_player(target.provider)
    scale = config.time_scale
    extra: list[Post] = []
    if posts and rng.random() < config.duplicate_rate:
        original = rng.choice(posts)
        extra.append(
            Post(original.due + rng.uniform(0.2, 2.0) * scale, original.events, original.delivery_id, "duplicate")
        )
        traits.append("duplicate")
    if posts and rng.random() < config.bad_signature_rate:
        original = rng.choice(posts)
        extra.append(Post(original.due + 0.05 * scale, original.events, player.delivery_id(rng), "forged"))
        traits.append("forged signature")
    return extra


def _disorder(rng: random.Random, config: SimulatorConfig, posts: list[Post], traits: list[str]) -> None:
    """Out of order: the last two posts swap. Late: an earlier post arrives well after the last."""
    if len(posts) >= 2 and rng.random() < config.out_of_order_rate:
        posts[-1].due, posts[-2].due = posts[-2].due, posts[-1].due
        traits.append("out of order")
    if len(posts) >= 2 and rng.random() < config.late_rate:
        late = rng.choice(posts[:-1])
        late.due = max(post.due for post in posts) + rng.uniform(3.0, 10.0) * config.time_scale
        traits.append("late receipt")
