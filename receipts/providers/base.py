"""What every provider adapter implements, and the request and event types they share.

An adapter only verifies and maps; the ingestion flow (receipts/ingestion.py) is the same for
every provider and is never overridden.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring_ascii
from typing import Any, ClassVar, NoReturn, final
from urllib.parse import parse_qs

from receipts.statuses import Status


class WebhookError(Exception):
    """Base for refusals; the message is safe to send back to the caller (no secrets)."""


class SignatureError(WebhookError):
    """The request is not proven to come from the provider: answer 401, store nothing."""


class TemporaryError(WebhookError):
    """We could not check the request for a reason of ours (a certificate fetch failed):
    answer 503 so the provider sends it again, store nothing."""


class PayloadError(WebhookError):
    """The body cannot be read as this provider's receipt: answer 400, store nothing."""


class ControlMessage(Exception):
    """Not a receipt but a provider handshake (an AWS SNS subscription confirmation): answered
    200 without storing anything. `task` names a Celery task that completes the handshake
    off the request path, called with `args`."""

    def __init__(self, reason: str, *, task: str = "", args: tuple[Any, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task = task
        self.args_for_task = args


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request as the adapter needs it, independent of Django."""

    method: str
    # The URL the provider called, as the provider saw it (scheme, host, port, path, query).
    url: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    remote_addr: str = ""
    # The secret token from /hooks/<slug>/<token>/, for providers that cannot sign.
    path_token: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def query(self) -> dict[str, list[str]]:
        _, _, query = self.url.partition("?")
        return parse_qs(query, keep_blank_values=True)

    def form(self) -> dict[str, list[str]]:
        """The url-encoded body; bad encodings are a 400, never a 500."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("body is not UTF-8") from None
        try:
            return parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError:
            raise PayloadError("body is not application/x-www-form-urlencoded") from None

    def json(self) -> Any:
        return loads_json(self.body, what="body")

    def json_parts(self, key: str) -> tuple[Any, list[str] | None]:
        """The JSON body, and the texts of the elements of its array `key` (loads_json_parts)."""
        return loads_json_parts(self.body, key, what="body")

    def raw_text(self) -> str:
        """The raw payload a receipt keeps when it has no part of its own: the body, or the
        query of a request without one (GET callbacks)."""
        return self.body.decode("utf-8", errors="replace") or self.url.partition("?")[2]


# No provider sends a number beyond 64 bits (20 digits); Python would read thousands of digits
# (slowly: its conversion is quadratic) and then fail wherever the number is used.
MAX_JSON_INT_DIGITS = 20


_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: object) -> str:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, by one encoder made
    once: how a report of a batch keeps its own part of the body."""
    return _COMPACT_JSON.encode(value)


def loads_json(text: str | bytes, *, what: str) -> Any:
    """JSON as RFC 8259 has it: NaN, Infinity, numbers that overflow a float (1e400) and
    integers longer than MAX_JSON_INT_DIGITS are refused (400), which Python's json reads."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError(f"{what} is not valid JSON") from None
    except RecursionError:  # '[' * 100000 fits in the size limit
        raise PayloadError(f"{what} is nested too deeply") from None


def _refuse_constant(name: str) -> NoReturn:
    raise PayloadError(f"JSON has no {name}: a number is out of range")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError("a number is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise PayloadError(f"a number has more than {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def loads_json_parts(body: bytes, key: str, *, what: str) -> tuple[Any, list[str] | None]:
    """`loads_json(body)`, and when it is an object whose `key` holds an array (the last `key`,
    as json keeps a repeated one), each element's own text as the body writes it; None exactly
    when the body is shaped otherwise.

    How a report of a batch keeps its own part of the body: cut out as the provider sent it,
    as a receipt alone in its request keeps the whole body, where writing each parsed report
    out again (compact_json) took as long as reading the whole body (bench/profile_batch.py).
    Values are read by json's own scanner with loads_json's checks; a body this does not read
    (a malformed one, another shape) is read again by loads_json, whose reading is the answer.
    """
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        return _object_with_parts(text, key)
    except (ValueError, StopIteration, IndexError, RecursionError, PayloadError):
        payload = loads_json(body, what=what)
    # Read alike, this is not reached with an array under `key`; should the two readers ever
    # differ, its elements are written out again rather than kept without a part.
    value = payload.get(key) if isinstance(payload, dict) else None
    return payload, list(map(compact_json, value)) if isinstance(value, list) else None


# JSON's whitespace, as json.decoder skips it. The pattern matches the empty string, so a match
# is never None.
_skip_space: Callable[[str, int], re.Match[str]] = re.compile(r"[ \t\n\r]*").match  # type: ignore[assignment]
# The value at an index and where it ends: the scanner json.loads uses (C), with loads_json's
# checks. A JSONDecoder makes it in __init__; typeshed does not declare the attribute.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
).scan_once


def _object_with_parts(text: str, key: str) -> tuple[dict[str, Any], list[str] | None]:
    """json.loads(text) for an object, as its decoder reads one, and `key`'s elements' texts."""
    at = _skip_space(text, 0).end()
    if text[at] != "{":
        raise ValueError("not an object")
    found: dict[str, Any] = {}
    parts: list[str] | None = None
    at = _skip_space(text, at + 1).end()
    if text[at] == "}":
        at += 1
    else:
        while True:
            if text[at] != '"':
                raise ValueError("a name is not a string")
            name, at = _scan_value(text, at)  # a string, as json reads a name
            at = _skip_space(text, at).end()
            if text[at] != ":":
                raise ValueError("no colon")
            at = _skip_space(text, at + 1).end()
            if name == key and text[at] == "[":
                found[name], parts, at = _array_with_parts(text, at)
            else:
                found[name], at = _scan_value(text, at)
                if name == key:
                    parts = None
            at = _skip_space(text, at).end()
            if text[at] == ",":
                at = _skip_space(text, at + 1).end()
                continue
            if text[at] != "}":
                raise ValueError("no comma")
            at += 1
            break
    if _skip_space(text, at).end() != len(text):
        raise ValueError("extra data")
    return found, parts


def _array_with_parts(text: str, at: int) -> tuple[list[Any], list[str], int]:
    values: list[Any] = []
    parts: list[str] = []
    at = _skip_space(text, at + 1).end()
    if text[at] == "]":
        return values, parts, at + 1
    while True:
        start = at
        value, at = _scan_value(text, at)
        values.append(value)
        parts.append(text[start:at])
        at = _skip_space(text, at).end()
        if text[at] == ",":
            at = _skip_space(text, at + 1).end()
            continue
        if text[at] != "]":
            raise ValueError("no comma")
        return values, parts, at + 1


FIELD_LIMITS = {"provider_message_id": 128, "provider_status": 64, "error_code": 32, "error_description": 255}
DEDUPE_KEY_LENGTH = 128  # Receipt.dedupe_key
# The event's texts that must be storable as PostgreSQL text.
_TEXT_FIELDS = (*FIELD_LIMITS, "event_id", "raw")
# A provider's time is kept only between these: earlier, it is a placeholder (the epoch, year 1,
# a two-digit year read in the wrong century), never when a message of ours changed; further
# ahead of our clock than a day (carrier clocks in local time read as UTC are off by up to
# 14 h), it is a wrong clock. Outside them it is dropped, not refused, as an unreadable time
# is: the raw body keeps it. The bounds also keep every stored time far from the ends of what
# Python and psycopg can read back (years 1 and 9999) in any display zone.
EARLIEST_PROVIDER_TIME = datetime(2000, 1, 1, tzinfo=UTC)
PROVIDER_CLOCK_AHEAD = timedelta(days=1)


def provider_time(value: datetime | None, *, now: datetime | None = None) -> datetime | None:
    """`value` in UTC when it is a plausible time for a receipt arriving `now`, else None.

    A time without a zone is read as UTC. Converting is what keeps an offset PostgreSQL refuses
    (beyond ±15:59) or an instant outside years 1 to 9999 in UTC out of the database.
    """
    if value is None:
        return None
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 once in UTC
        return None
    latest = (now or datetime.now(UTC)) + PROVIDER_CLOCK_AHEAD
    return utc if EARLIEST_PROVIDER_TIME <= utc <= latest else None


# What a receipt says about the network and the price is informational: a value we cannot keep
# as it is (too long, not a number, out of range) is dropped, never a reason to refuse the
# receipt, whose status matters more. The raw body keeps what was sent.
NETWORK_LENGTH = 64  # Receipt.network, Message.network
PRICE_PLACES = 6  # Receipt.price: decimal(12, 6)
PRICE_LIMIT = Decimal(1_000_000)


def clean_network(value: object) -> str:
    """The network as the provider names it (an MCC/MNC such as "20801", or an operator's
    name), trimmed; "" when absent or unusable."""
    if value is None or isinstance(value, bool):
        return ""
    text = str(value).strip()
    if not text or len(text) > NETWORK_LENGTH or not text.isprintable():
        return ""
    return text


_PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_PLACES)
# clean_price's answers by the text it reads: a batch's reports mostly repeat one price, and
# each is read twice (by its adapter, again by ReceiptEvent). Decimals are immutable; bounded.
_prices_read: dict[str, Decimal | None] = {}
_PRICES_KEPT = 1024


def clean_price(value: object) -> Decimal | None:
    """A non-negative price below PRICE_LIMIT, to PRICE_PLACES places; None otherwise."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    text = str(value).strip()
    try:
        return _prices_read[text]
    except KeyError:
        pass
    try:
        price: Decimal | None = Decimal(text)
    except (InvalidOperation, ValueError):
        price = None
    if price is not None:
        price = price.quantize(_PRICE_QUANTUM) if price.is_finite() and 0 <= price < PRICE_LIMIT else None
    if len(_prices_read) >= _PRICES_KEPT:
        _prices_read.clear()
    _prices_read[text] = price
    return price


def clean_currency(value: object) -> str:
    """An ISO 4217 code (three letters, upper-cased), "" otherwise."""
    text = str(value or "").strip().upper()
    return text if len(text) == 3 and text.isascii() and text.isalpha() else ""


@dataclass(frozen=True)
class ReceiptEvent:
    """One delivery event parsed from a provider request (a request may carry several)."""

    provider_message_id: str
    provider_status: str
    status: Status
    error_code: str = ""
    error_description: str = ""
    # When it happened, by the provider's clock: kept in UTC, and only when plausible
    # (provider_time); every adapter's times go through here.
    provider_timestamp: datetime | None = None
    # The provider's own id for this event, when it gives one; the dedupe key then.
    event_id: str = ""
    # The provider's own statement that the failure is permanent (Infobip `error.permanent`);
    # None when it does not say. It wins over the error catalog's class.
    permanent: bool | None = None
    # For a request carrying many events (Infobip's batches of 100), this event's own part of
    # the body, stored instead of the whole body with each receipt (see EVENT_OVERHEAD_CHARS).
    raw: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The network the message went to (MCC/MNC or the operator), and what the provider
    # charged for it, when the receipt says; see clean_network and clean_price.
    network: str = ""
    price: Decimal | None = None
    currency: str = ""

    # Written here, not generated: the __init__ of a frozen dataclass sets each field through
    # object.__setattr__, 3.7 µs for these 14 per report of a 1,000-report batch before any
    # check. This one cleans and checks the values, then fills the instance's __dict__ at once.
    # Its parameters are the fields above, in their order and with their defaults (a test pins
    # them); `extra` defaults to a new empty dict, as its field's factory makes.
    def __init__(
        self,
        provider_message_id: str,
        provider_status: str,
        status: Status,
        error_code: str = "",
        error_description: str = "",
        provider_timestamp: datetime | None = None,
        event_id: str = "",
        permanent: bool | None = None,
        raw: str = "",
        extra: Mapping[str, Any] | None = None,
        network: str = "",
        price: Decimal | None = None,
        currency: str = "",
    ) -> None:
        price = clean_price(price)
        values: dict[str, Any] = {
            "provider_message_id": provider_message_id,
            "provider_status": provider_status,
            "status": status,
            "error_code": error_code,
            "error_description": error_description,
            "provider_timestamp": provider_time(provider_timestamp),
            "event_id": event_id,
            "permanent": permanent,
            "raw": raw,
            "extra": {} if extra is None else extra,
            "network": clean_network(network),
            "price": price,
            # A currency without a price says nothing; a price without one is kept (a price
            # list may name it).
            "currency": clean_currency(currency) if price is not None else "",
        }
        # Bounds of the columns these land in: refuse rather than truncate an identifier.
        for name, limit in FIELD_LIMITS.items():
            if len(values[name]) > limit:
                raise PayloadError(f"{name} is longer than {limit} characters")
        for name in _TEXT_FIELDS:
            value = values[name]
            # What PostgreSQL text cannot hold (NUL, a lone surrogate from a JSON "\ud800"
            # escape) is refused here, as bad input, rather than failing to store (a 503
            # the provider would retry for hours).
            if "\x00" in value:
                raise PayloadError(f"{name} contains a NUL character")
            if value.isascii():  # known without reading it: no surrogate
                continue
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise PayloadError(f"{name} is not valid Unicode") from None
        self.__dict__.update(values)

    def dedupe_key(self) -> str:
        if len(self.event_id) > DEDUPE_KEY_LENGTH:
            # Cut to the column, two long ids sharing their first 128 characters would be one
            # event, the second dropped as a retry; the hash is as stable and stays distinct.
            return "sha256:" + hashlib.sha256(self.event_id.encode()).hexdigest()
        if self.event_id:
            return self.event_id
        # Without an event id, a retry of the same event is recognised by the fields that
        # identify it; the separator cannot appear in any of them un-escaped by json.
        # The text json.dumps() writes for this list of strings, written as it does (each string
        # by json's own escaping, ", " between), without building an encoder per receipt.
        identity = ", ".join(
            map(
                encode_basestring_ascii,
                (
                    self.provider_message_id,
                    self.provider_status,
                    self.error_code,
                    self.provider_timestamp.isoformat() if self.provider_timestamp else "",
                ),
            )
        )
        return "sha256:" + hashlib.sha256(f"[{identity}]".encode()).hexdigest()


# What one request may store. A receipt alone in its request keeps the whole body; receipts
# that share a request each keep their own part of it (`ReceiptEvent.raw`: an Infobip result,
# a Standard Webhooks item, a Sinch report cut to one recipient), never the whole body again.
# The parts add up to the body plus, for each receipt, what it repeats to be read alone (the
# batch id, the status, JSON punctuation): at most EVENT_OVERHEAD_CHARS each, else the request
# is refused. With each kept header cut to KEPT_HEADER_CHARS (they are repeated on every
# receipt's row) and at most `max_events` receipts, a request stores its own size plus a
# bounded amount per receipt, however its body is shaped.
EVENT_OVERHEAD_CHARS = 512
KEPT_HEADER_CHARS = 256


def check_stored_size(events: Sequence[ReceiptEvent], request: WebhookRequest) -> None:
    whole = request.raw_text()
    stored = sum(len(event.raw or whole) for event in events)
    if stored > len(whole) + EVENT_OVERHEAD_CHARS * len(events):
        raise PayloadError(
            f"the request's {len(events)} receipts would keep {stored} characters: more than its own "
            f"{len(whole)} and {EVENT_OVERHEAD_CHARS} per receipt"
        )


class ProviderAdapter:
    """Subclass per provider: set `kind`, `label`, `status_map`; implement verify and
    parse_events. `parse` is the flow every provider goes through, never overridden."""

    kind: ClassVar[str]
    label: ClassVar[str]
    # Provider status (as sent, compared case-insensitively) → normalized status.
    status_map: ClassVar[Mapping[str, Status]]
    # Headers worth keeping with the receipt. Never list one that carries a secret.
    kept_headers: ClassVar[tuple[str, ...]] = ("content-type", "user-agent")
    # Other tables of the error catalog (receipts/data/error_codes.csv) this provider's codes
    # come from, after its own: "gsm" where it relays the network's GSM MAP / SMPP codes.
    shared_code_tables: ClassVar[tuple[str, ...]] = ()
    # The most receipts one request may carry: each is a row written in the request's
    # transaction. Beyond it the request is refused (400). Batching providers raise it.
    max_events: ClassVar[int] = 1

    def validate_secret(self, secret: str) -> None:
        """Raise ValueError when `secret` cannot be used by this provider's scheme."""

    def generate_secret(self) -> str:
        """A fresh secret, for providers where we choose it (the others give theirs)."""
        return secrets.token_urlsafe(32)

    def validate_options(self, options: Mapping[str, Any]) -> None:
        """Raise ValueError when the connection's provider-specific options are not usable."""
        if options:
            raise ValueError(f"{self.label} connections take no options")

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise SignatureError unless the request provably comes from the provider."""
        raise NotImplementedError

    @final
    def parse(self, request: WebhookRequest) -> list[ReceiptEvent]:
        """The request's receipts, within this provider's bounds (`max_events`, and what they
        would store: see EVENT_OVERHEAD_CHARS). PayloadError (400) on malformed input."""
        events = self.parse_events(request)
        if len(events) > self.max_events:
            raise PayloadError(f"the request carries more than {self.max_events} receipts")
        check_stored_size(events, request)
        return events

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        """Map the request to receipts; a batching provider checks `max_events` as it reads."""
        raise NotImplementedError

    def normalize_status(self, provider_status: str) -> Status:
        """An unmapped status is kept as `unknown`, never an error."""
        return self.status_map.get(provider_status.strip().lower(), Status.UNKNOWN)

    def raw_to_keep(self, request: WebhookRequest) -> str:
        """What a receipt keeps of the request when its event has no part of its own: the body,
        or the query of a GET. Providers that copy the message's text into their receipts (SMPP)
        leave it out: texts are shown to no one."""
        return request.raw_text()

    def headers_to_keep(self, request: WebhookRequest) -> dict[str, str]:
        """Kept for reading beside the receipt, cut to KEPT_HEADER_CHARS: they repeat on the row
        of every receipt the request carries, and none is read for a decision."""
        return {
            name: request.headers[name][:KEPT_HEADER_CHARS] for name in self.kept_headers if name in request.headers
        }


def url_as_called(request: WebhookRequest, public_url: str) -> str:
    """The URL a provider called and signed (Twilio, Plivo, MessageBird sign the URL): the
    connection's public URL when set (behind a TLS-terminating proxy Django sees another one),
    with the query the request arrived with. A query written into `public_url` is that same
    query, so it is replaced, never appended twice; a request without one had none."""
    if not public_url:
        return request.url
    _, _, query = request.url.partition("?")
    base = public_url.partition("?")[0]
    return f"{base}?{query}" if query else base


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def require_secrets(secrets: Sequence[str]) -> None:
    if not secrets:
        # A connection without a secret cannot prove anything; refuse rather than accept all.
        raise SignatureError("connection has no secret configured")


class TokenAuthenticated(ProviderAdapter):
    """For providers that cannot sign their callbacks (Infobip, Sinch SMS, Kannel, SMPP gateways):
    the connection's secret is a token the provider presents, as configured on its side, in one of:
    the URL path (/hooks/<slug>/<token>/), an `X-DLR-Token` header, `Authorization: Bearer <token>`,
    or HTTP Basic credentials whose `user:password` equals the secret. Any of the connection's
    secrets matches (rotation). Pair it with the connection's source address allowlist."""

    def verify(
        self,
        request: WebhookRequest,
        secrets: Sequence[str],
        *,
        public_url: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_secrets(secrets)
        presented = presented_tokens(request)
        if not presented:
            raise SignatureError("missing token: put it in the URL path, X-DLR-Token, Bearer or Basic credentials")
        for secret in secrets:
            if any(constant_time_equal(secret, token) for token in presented):
                return
        raise SignatureError("token does not match")


def presented_tokens(request: WebhookRequest) -> list[str]:
    tokens = [request.path_token, request.header("x-dlr-token")]
    scheme, _, credentials = request.header("authorization").partition(" ")
    if scheme.lower() == "bearer":
        tokens.append(credentials.strip())
    elif scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, ValueError):  # unreadable credentials are no token
            tokens.append(base64.b64decode(credentials.strip(), validate=True).decode("utf-8"))
    return [token for token in tokens if token]


def parse_iso_timestamp(value: object) -> datetime | None:
    """A provider's ISO 8601 time (`2019-11-09T16:00:00.000+0000`, `…Z`); without a zone it is
    read as UTC. An unreadable value is dropped, not refused: the raw body keeps it."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Unix seconds have 10 digits until 2286; 12 digits reach year 33658, far past anything we keep.
MAX_UNIX_TIME_DIGITS = 12


def unix_seconds(text: str) -> int | None:
    """A Unix time written as at most MAX_UNIX_TIME_DIGITS ASCII digits, else None.

    For the times signatures cover (a header, a signed field): `int()` would also take "+1",
    " 1", "1_0", other scripts' digits and numbers too large to subtract from a float clock.
    """
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_UNIX_TIME_DIGITS):
        return None
    return int(text)


def parse_unix_time(value: object, *, per_second: int = 1) -> datetime | None:
    """A provider's Unix time (a JSON number, or digits in a form or query), in seconds or in
    `per_second` units (1000: milliseconds), as an aware UTC datetime. Anything else, or a
    value no datetime can hold, is dropped, not refused: the raw body keeps it."""
    if isinstance(value, str):
        value = unix_seconds(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value / per_second, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
