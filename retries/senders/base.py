"""The sender contract, shared by provider send APIs and fallback channels.

Modelled on healthchecks' `hc/api/transports.py`: a sender raises `SendError(permanent=...)`;
only a permanent error stops retries. Reasons never carry credentials.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

# Explicit (connect, read) timeouts: a provider that hangs must not hold a worker past the task limit.
DEFAULT_TIMEOUT: tuple[float, float] = (3.0, 10.0)
EXCERPT_LENGTH = 200


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
    text: str
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


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove any secret that a provider might echo back, then cut to a short excerpt."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:EXCERPT_LENGTH]


def summary(reply: HttpReply, secrets: tuple[str, ...]) -> str:
    return f"HTTP {reply.status_code}: {scrub(reply.text, secrets)}"


def http_call(
    method: str,
    url: str,
    *,
    secrets: tuple[str, ...],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> HttpReply:
    """The one place senders talk HTTP: explicit timeout, no redirects, errors classified."""
    started = time.monotonic()
    try:
        response = requests.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise SendError("timed out waiting for the provider", permanent=False) from None
    except requests.ConnectionError:
        raise SendError("could not connect to the provider", permanent=False) from None
    except requests.RequestException as exc:
        # Exception text can include the URL (with credentials in it): keep only the type name.
        raise SendError(f"HTTP request failed ({type(exc).__name__})", permanent=False) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return HttpReply(
        status_code=response.status_code,
        text=response.text,
        json=body,
        retry_after=response.headers.get("Retry-After"),
        duration=time.monotonic() - started,
    )


def raise_for_http(reply: HttpReply, secrets: tuple[str, ...]) -> None:
    permanent = classify_http(reply.status_code, reply.retry_after)
    if permanent is not None:
        raise SendError(summary(reply, secrets), permanent=permanent, status_code=reply.status_code)


def parse_timeout(config: Mapping[str, Any]) -> tuple[float, float]:
    connect = float(config.get("connect_timeout", DEFAULT_TIMEOUT[0]))
    read = float(config.get("read_timeout", DEFAULT_TIMEOUT[1]))
    return (connect, read)


def require(config: Mapping[str, Any], *keys: str) -> None:
    missing = [key for key in keys if not str(config.get(key) or "").strip()]
    if missing:
        raise ValueError(f"missing required setting(s): {', '.join(missing)}")


def require_http_url(config: Mapping[str, Any], key: str) -> None:
    value = str(config.get(key) or "")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{key} must start with http:// or https://")


class Sender:
    """A configured sender. Subclasses set `kind`, validate config and implement `send`."""

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    secret_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.validate_config(config)
        self.config = dict(config)
        self.timeout = parse_timeout(config)

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
