"""The sender contract, shared by provider send APIs and fallback channels.

Modelled on healthchecks' `hc/api/transports.py`: a sender raises `SendError(permanent=...)`;
only a permanent error stops retries. Reasons never carry credentials.

What a sender keeps of a reply (the attempt's summary and reason, shown on the timeline, to the
product's API token and in the feed) is the status code and the fields it parses and the
provider documents: a message id, an error code. Never the reply's text: a peer's words are not
ours to republish, and the reply of a URL that should not have been called is exactly what an
attacker would read back. Calls go through dlrconsole/lib/outbound.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import requests
from django.conf import settings

from dlrconsole.lib import outbound

# Explicit (connect, read) timeouts: a provider that hangs must not hold a worker past the task limit.
DEFAULT_TIMEOUT: tuple[float, float] = (3.0, 10.0)
FIELD_LENGTH = 64
# What a parsed field may show: ids and codes are letters, digits and a little punctuation.
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")


class SendError(Exception):
    def __init__(self, reason: str, *, permanent: bool, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status_code = status_code


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    response_summary: str
    duration: float


@dataclass(frozen=True)
class HttpReply:
    status_code: int
    json: Any
    retry_after: str | None
    duration: float


def classify_http(status_code: int, retry_after: str | None = None) -> bool | None:
    """True for a permanent failure, False for a temporary one, None for success (2xx)."""
    if 200 <= status_code < 300:
        return None
    if status_code == 429:
        return False  # rate limited: the same request succeeds later (Retry-After says when)
    if status_code >= 500:
        return False  # the provider's own fault; a retry may land on a healthy node
    if status_code == 400:
        return True  # the request itself is malformed; resending it unchanged fails again
    if status_code in (401, 403):
        return True  # bad or disabled credentials: needs a human to fix the configuration
    if status_code == 404:
        return True  # wrong base URL or account: retrying hits the same missing resource
    if status_code == 422:
        return True  # well-formed but rejected content (number, sender): same answer every time
    # 408 timeout, 409 conflict, 425 too early are transient by definition; other 4xx are client
    # errors, and a 3xx means a misconfigured URL (we never follow redirects).
    return status_code not in (408, 409, 425)


def scrub(value: object, secrets: tuple[str, ...]) -> str:
    """A field parsed from a reply (an id, a documented code) as it may be shown: without any
    secret the provider echoed, only id-like characters, cut short."""
    text = str(value if value is not None else "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _UNSAFE.sub("", text)[:FIELD_LENGTH]


def summary(status_code: int, *fields: str) -> str:
    """`HTTP 201: sid SM…`: the status and what the sender parsed (already scrubbed)."""
    parsed = " ".join(field for field in fields if field)
    return f"HTTP {status_code}: {parsed}" if parsed else f"HTTP {status_code}"


def field(payload: Any, *path: str) -> Any:
    """payload[path[0]][path[1]]…, or None where the shape differs."""
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def http_call(
    method: str,
    url: str,
    *,
    secrets: tuple[str, ...],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> HttpReply:
    """The one place senders talk HTTP: through the outbound guard, with explicit timeouts, no
    redirects, errors classified."""
    try:
        reply = outbound.call(method, url, timeout=timeout, **kwargs)
    except outbound.DestinationRefused as exc:
        # Permanent: only an admin changing the URL (or the allowlist) makes it callable.
        raise SendError(f"refused: {exc}", permanent=True) from None
    except requests.Timeout:
        raise SendError("timed out waiting for the provider", permanent=False) from None
    except requests.ConnectionError:
        raise SendError("could not connect to the provider", permanent=False) from None
    except requests.RequestException as exc:
        # Exception text can include the URL (with credentials in it): keep only the type name.
        raise SendError(f"HTTP request failed ({type(exc).__name__})", permanent=False) from None
    return HttpReply(
        status_code=reply.status_code,
        json=reply.json(),
        retry_after=reply.headers.get("Retry-After"),
        duration=reply.duration,
    )


def raise_for_http(reply: HttpReply, error_code: str = "") -> None:
    """Raise the classified SendError for a non-2xx reply; `error_code` is what the sender
    parsed of the provider's documented error field (already scrubbed)."""
    permanent = classify_http(reply.status_code, reply.retry_after)
    if permanent is not None:
        reason = summary(reply.status_code, f"error {error_code}" if error_code else "")
        raise SendError(reason, permanent=permanent, status_code=reply.status_code)


def parse_timeout(config: Mapping[str, Any]) -> tuple[float, float]:
    connect = float(config.get("connect_timeout", DEFAULT_TIMEOUT[0]))
    read = float(config.get("read_timeout", DEFAULT_TIMEOUT[1]))
    return (connect, read)


def require(config: Mapping[str, Any], *keys: str) -> None:
    missing = [key for key in keys if not str(config.get(key) or "").strip()]
    if missing:
        raise ValueError(f"missing required setting(s): {', '.join(missing)}")


def require_http_url(config: Mapping[str, Any], key: str) -> None:
    """An http(s) URL whose host is not an address we never call (checked without any lookup;
    names are judged when called)."""
    value = str(config.get(key) or "")
    if value:
        outbound.validate_url(value, name=key)


def validate_timeouts(config: Mapping[str, Any]) -> None:
    """Each timeout a positive number; together no longer than a pass can wait for one send
    (DLR_SEND_TIMEOUT_MAX_SECONDS, which settings.py fits inside Celery's soft time limit)."""
    values = []
    for key, default in zip(("connect_timeout", "read_timeout"), DEFAULT_TIMEOUT, strict=True):
        raw = config.get(key)
        try:
            value = float(default if raw in (None, "") else raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number of seconds") from None
        if not value > 0:
            raise ValueError(f"{key} must be a positive number of seconds")
        values.append(value)
    longest = settings.DLR_SEND_TIMEOUT_MAX_SECONDS
    if sum(values) > longest:
        raise ValueError(f"connect_timeout + read_timeout must be at most {longest:g} seconds")


class Sender:
    """A configured sender. Subclasses set `kind`, validate config and implement `send`."""

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    secret_keys: ClassVar[tuple[str, ...]] = ()
    # The settings besides the credential, for the console's channel form (it shows these).
    setting_fields: ClassVar[tuple[str, ...]] = ()
    # The peer drops a second send carrying the same idempotency key: sending again after a
    # crash costs nothing, so the attempt runner may record such sends together
    # (retries/attempts.py); others' sends are recorded one by one, as each returns.
    deduplicates: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.validate_config(config)
        self.config = dict(config)
        self.timeout = parse_timeout(config)

    @property
    def longest(self) -> float:
        """The most one send may take: a pass starts it only with this much time left."""
        return sum(self.timeout)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Raise ValueError with a message an admin form can show."""

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(str(self.config.get(key) or "") for key in self.secret_keys)

    def send(
        self,
        *,
        to: str,
        body: str,
        sender_id: str,
        options: Mapping[str, Any],
        idempotency_key: str,
        status_callback_url: str = "",
    ) -> SendResult:
        raise NotImplementedError
