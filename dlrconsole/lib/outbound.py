"""Every call this project makes to a peer goes through here: provider send APIs, fallback
webhooks, the product's feed endpoints, Amazon SNS.

Those URLs are typed in by admins (or, for SNS, read from a signed envelope), so the server must
never be turned into a client of its own network: a URL pointing at the cloud's metadata service
(169.254.169.254), at a database on 10.0.0.5 or at the console itself on 127.0.0.1 is refused.

Three properties, each needed for the next to mean anything:

- The address is checked when the socket connects, on the address it connects to: the name is
  resolved once, each address is judged, and only an allowed one is connected to. A name that
  resolves to a public address when a URL is saved and to 127.0.0.1 when it is called (DNS
  rebinding) is refused then.
- Redirects are never followed (a public host answering 302 to http://127.0.0.1/ would
  otherwise lead us in), environment proxies are ignored (a proxy connects for us and would
  bypass the check) and so is ~/.netrc.
- Replies are read up to a bound, within a total deadline: a peer cannot hold a worker by
  trickling bytes, nor fill its memory.

Refused: loopback, link-local, private, reserved, multicast, unspecified, shared (CGNAT) and
documentation addresses, IPv4 and IPv6; an IPv6 address that embeds an IPv4 one (mapped,
NAT64, 6to4) is judged by that IPv4 address. Networks listed in DLR_OUTBOUND_ALLOWED_NETWORKS
are allowed whatever their kind (a gateway on the private network; loopback in tests and the
demo, whose peers are local servers).

A well-kept library (requests-hardened) does the same check but can only allow loopback as a
whole, not configured networks; the adapter here is small and owns that rule.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What we read of a reply at most: ids, codes and certificates are a few KiB.
MAX_REPLY_BYTES = 64 * 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SETTING = "DLR_OUTBOUND_ALLOWED_NETWORKS"


class DestinationRefused(requests.RequestException):
    """The peer's address is one we never call (not a connection failure: retrying cannot help
    until the URL or DLR_OUTBOUND_ALLOWED_NETWORKS changes)."""


class _Refused(Exception):
    # Raised inside urllib3, which wraps every OSError (RequestException is one) into a
    # connection error and retries it; this passes through and becomes DestinationRefused.
    pass


def _allowed_networks() -> Sequence[IPNetwork]:
    return settings.DLR_OUTBOUND_ALLOWED_NETWORKS


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _kind(ip: IPAddress) -> str:
    """What makes an address one we do not call, or "" for a public unicast address."""
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)),
        ("reserved", ip.is_reserved),
        # CGNAT (100.64.0.0/10) and the like: not private by the RFC's word, not reachable either.
        ("non-public", not ip.is_global),
    )
    return next((name for name, applies in checks if applies), "")


def refusal(address: str) -> str:
    """Why `address` (an IP literal) is not called, or "" when it may be."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    judged: IPAddress = _embedded_ipv4(ip) or ip
    if any(candidate in network for candidate in {ip, judged} for network in _allowed_networks()):
        return ""
    kind = _kind(judged)
    if not kind:
        return ""
    shown = f"{ip} ({judged})" if judged != ip else str(ip)
    return f"{shown} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


def _unreachable(why: str) -> str:
    return f"{why}, which outbound calls may not reach unless {SETTING} lists it"


def _literal(host: str) -> str | None:
    """The IP address a host names without any lookup, or None for a name. Shorthand IPv4
    forms that the resolver accepts (127.1, 2130706433, 0x7f.0.0.1) count as addresses."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def url_problem(url: str) -> str:
    """What is wrong with `url` as a peer's URL, or "". No network I/O: a literal address is
    judged, and so are `localhost` names (RFC 6761: always loopback); other names are judged
    at connect time, on what they resolve to then."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - parsing it raises on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not host:
        return "has no host"
    address = _literal(host)
    if address is not None:
        why = refusal(address)
    elif host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
        why = refusal("127.0.0.1") and f"{host} is a loopback name"
    else:
        why = ""
    return f"is refused: {_unreachable(why)}" if why else ""


def validate_url(url: str, *, name: str = "URL") -> None:
    """Raise ValueError with a message an admin can act on."""
    if problem := url_problem(url):
        raise ValueError(f"{name} {problem}")


def validate_outbound_url(value: str) -> None:
    """A model and form field validator."""
    if problem := url_problem(value):
        raise ValidationError(f"This URL {problem}.", code="outbound_url")


def _connect(host: str, port: int, timeout: Any, source_address: tuple[str, int] | None, options: Any) -> socket.socket:
    """Resolve once, judge each address, connect only to an allowed one."""
    host = host.strip("[]")
    refused, error = "", None
    for family, kind, proto, _name, address in socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM):
        if why := refusal(str(address[0])):
            refused = refused or why
            continue
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT and timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if error is not None:
        raise error
    if refused:
        raise _Refused(_unreachable(refused))
    raise OSError("the name resolved to no address")


def connect(host: str, port: int, timeout: float, source_address: tuple[str, int] | None = None) -> socket.socket:
    """A TCP connection to an allowed address of `host` (for peers that are not HTTP: a fallback
    channel's mail server). Raises DestinationRefused, or OSError as socket.create_connection."""
    try:
        return _connect(host, port, timeout, source_address, None)
    except _Refused as exc:
        raise DestinationRefused(str(exc)) from None


def host_problem(host: str) -> str:
    """What is wrong with `host` (a name or an address, not a URL) as a peer, or "" (no lookup)."""
    return url_problem(f"http://{host}/") if ":" not in host else url_problem(f"http://[{host.strip('[]')}]/")


class _GuardedConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        # urllib3's own _new_conn, with the checked connect and the same error mapping.
        try:
            return _connect(self._dns_host, self.port, self.timeout, self.source_address, self.socket_options)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedPool(HTTPConnectionPool):
    ConnectionCls = _GuardedConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class OutboundSession:
    """Connections to peers, kept for a pass (keep one per pass to reuse them): only allowed
    addresses, never a redirect, no proxy, no ~/.netrc, no cookies.

    Built on urllib3, which does none of those unless asked, rather than on a requests
    Session, which does each unless told not to: requests' per-call preparation (merging the
    session's settings, cookies and hooks into each request, then building its Response) was a
    quarter of a feed POST's CPU, 0.21 ms a call on a kept connection (2026-12-07). Errors are
    still requests' exceptions, which callers catch."""

    def __init__(self) -> None:
        # Verified against certifi's bundle, as requests did.
        self._pool = urllib3.PoolManager(retries=False, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        self._pool.pool_classes_by_scheme = {"http": _GuardedPool, "https": _GuardedHTTPSPool}

    def __enter__(self) -> OutboundSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.clear()

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: tuple[float, float] | None = None,
        max_bytes: int = MAX_REPLY_BYTES,
        data: bytes | str | dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Reply:
        """One request, read within `connect + read` seconds in all: a reply still arriving
        then raises requests.Timeout. A redirect is returned as it is, never followed."""
        if timeout is None:
            raise ValueError("an outbound call needs explicit timeouts")
        started = time.monotonic()
        body, sent_headers = _encode(data=data, json_body=json, headers=headers or {}, auth=auth)
        with _as_requests_errors():
            response = self._pool.request(
                method, url, body=body, headers=sent_headers, redirect=False, preload_content=False,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            )  # fmt: skip
            complete = False
            try:
                content, truncated = _read(response, max_bytes, started + sum(timeout))
                complete = not truncated
            finally:
                if not complete:
                    response.close()  # half read: its connection cannot serve another call
                response.release_conn()
        return Reply(
            response.status, CaseInsensitiveDict(response.headers), content, truncated, time.monotonic() - started
        )


USER_AGENT = "dlrconsole"


def _encode(
    *, data: bytes | str | dict[str, Any] | None, json_body: Any, headers: dict[str, str], auth: tuple[str, str] | None
) -> tuple[bytes | None, dict[str, str]]:
    """The body and headers as requests would send them for data=, json= and auth=."""
    sent = CaseInsensitiveDict({"User-Agent": USER_AGENT, "Accept": "*/*"})
    body: bytes | None = None
    if json_body is not None:
        body = json.dumps(json_body, allow_nan=False).encode()
        sent["Content-Type"] = "application/json"
    elif isinstance(data, dict):
        body = urlencode(data, doseq=True).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = data.encode() if isinstance(data, str) else data
    if auth is not None:
        sent.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
    sent.update(headers)
    return body, dict(sent)


@contextmanager
def _as_requests_errors() -> Iterator[None]:
    """urllib3's errors as the requests exceptions callers catch (requests maps them so too)."""
    try:
        yield
    except requests.RequestException:
        raise  # ours already (a reply too slow, a refused address)
    except _Refused as exc:
        raise DestinationRefused(str(exc)) from None
    except urllib3.exceptions.ConnectTimeoutError as exc:
        raise requests.ConnectTimeout(str(exc)) from None
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise requests.ReadTimeout(str(exc)) from None
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(str(exc)) from None
    except (urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown) as exc:
        raise requests.exceptions.InvalidURL(str(exc)) from None
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError, OSError) as exc:
        raise requests.ConnectionError(str(exc)) from None
    except urllib3.exceptions.HTTPError as exc:
        raise requests.RequestException(str(exc)) from None


@dataclass(frozen=True)
class Reply:
    """What a caller may use of a reply: its status, headers and at most MAX_REPLY_BYTES."""

    status_code: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    truncated: bool
    duration: float

    def json(self) -> Any:
        """The parsed body, or None when it is not (complete) JSON."""
        if self.truncated:
            return None
        try:
            return json.loads(self.content)
        except ValueError:
            return None


def call(
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    session: OutboundSession | None = None,
    max_bytes: int = MAX_REPLY_BYTES,
    **kwargs: Any,
) -> Reply:
    """One request through `session`, else the pass's (reusing_connections), else one of its
    own. Raises DestinationRefused for an address we do not call, and requests' exceptions for
    the rest (see OutboundSession.request)."""
    session = session or _pass_session.get()
    if session is not None:
        return session.request(method, url, timeout=timeout, max_bytes=max_bytes, **kwargs)
    with OutboundSession() as own:
        return own.request(method, url, timeout=timeout, max_bytes=max_bytes, **kwargs)


_pass_session: ContextVar[OutboundSession | None] = ContextVar("outbound_pass_session", default=None)


@contextmanager
def reusing_connections() -> Iterator[OutboundSession]:
    """Calls made inside share one session, so a pass that calls the same peer again and again
    (a provider's send API, for each resend) keeps its connection, and over HTTPS its TLS
    session, instead of opening a new one per call. Closed on leaving."""
    with OutboundSession() as session:
        token = _pass_session.set(session)
        try:
            yield session
        finally:
            _pass_session.reset(token)


def _read(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
    content = bytearray()
    for chunk in response.stream(8192):
        content += chunk
        if len(content) > max_bytes:
            return bytes(content[:max_bytes]), True
        if time.monotonic() > deadline:
            raise requests.Timeout("the reply took longer than the call's timeouts")
    return bytes(content), False


def remaining(deadline: float) -> float:
    """Seconds left until a time.monotonic() deadline (never negative)."""
    return max(0.0, deadline - time.monotonic())


def pass_deadline(started: float | None = None) -> float:
    """When a periodic pass (attempts, the feed) must have finished its last request: Celery's
    soft time limit less the margin it keeps to record and release what it holds. A time.monotonic()
    value; settings.py checks at start-up that the longest request fits inside it."""
    begin = time.monotonic() if started is None else started
    return begin + float(settings.CELERY_TASK_SOFT_TIME_LIMIT) - float(settings.DLR_PASS_MARGIN_SECONDS)
