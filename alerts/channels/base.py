"""The alert-channel contract, as healthchecks' transports: a channel raises
`ChannelError(permanent=...)`; only a permanent error stops retries. Reasons never carry
credentials, nor what the peer replied."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import requests

from dlrconsole.lib import outbound

# Seconds to connect and to read the reply: a chat service slower than this is retried later.
TIMEOUT = (5.0, 10.0)


class ChannelError(Exception):
    def __init__(self, reason: str, *, permanent: bool, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status_code = status_code


@dataclass(frozen=True)
class Notice:
    """What a channel says about one alert event: built from the alert (notify.py), so a channel
    needs no database."""

    event: str  # fired | resolved | test
    alert_id: int | None
    title: str
    severity: str  # critical | warning | info
    summary: str  # the figure against its threshold, in words
    url: str  # the alert's console page
    at: str  # ISO 8601, UTC

    @property
    def dedup_key(self) -> str:
        """One key per alert, the same for its fire and its resolve (PagerDuty's incident)."""
        return f"dlr-console-alert-{self.alert_id}" if self.alert_id else "dlr-console-test"

    @property
    def headline(self) -> str:
        prefix = {"fired": "FIRING", "resolved": "RESOLVED", "test": "TEST"}.get(self.event, self.event.upper())
        return f"[{prefix}] [{self.severity}] {self.title}"


class Channel:
    kind: ClassVar[str]
    label: ClassVar[str]
    # Keys of the configuration that hold credentials: write-only in forms, fingerprinted in
    # the audit log, never shown.
    secret_keys: ClassVar[tuple[str, ...]] = ()
    # The configuration keys the console's form asks for, with a label each (choices, no JSON).
    fields: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.validate_config(config)
        self.config = dict(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Raise ValueError, saying what is wrong, when `config` cannot be used."""

    def send(self, notice: Notice) -> int | None:
        """Tell the channel's audience; the peer's status code (None: not HTTP). Raise
        ChannelError when it could not."""
        raise NotImplementedError


def validate_https_url(config: Mapping[str, Any], key: str = "url") -> None:
    url = config.get(key)
    if not isinstance(url, str) or not url:
        raise ValueError(f"{key}: the URL to post to")
    problem = outbound.url_problem(url)
    if problem:
        raise ValueError(f"{key}: {problem}")


def post_json(url: str, payload: Any, *, headers: Mapping[str, str] | None = None, body: bytes | None = None) -> int:
    """POST through the outbound guard; the status code when the peer took it (2xx). A 4xx
    other than 408/429 will not get better by itself: permanent. Everything else is retried."""
    data = body if body is not None else json.dumps(payload, separators=(",", ":")).encode()
    try:
        reply = outbound.call(
            "POST", url, data=data, headers={"content-type": "application/json", **(headers or {})}, timeout=TIMEOUT
        )
    except outbound.DestinationRefused as exc:
        raise ChannelError(f"address refused: {exc}", permanent=True) from None
    except requests.Timeout:
        raise ChannelError("no reply in time", permanent=False) from None
    except requests.RequestException as exc:
        raise ChannelError(f"could not connect ({type(exc).__name__})", permanent=False) from None
    code = reply.status_code
    if 200 <= code < 300:
        return code
    permanent = 400 <= code < 500 and code not in (408, 429)
    raise ChannelError(f"the service answered {code}", permanent=permanent, status_code=code)
