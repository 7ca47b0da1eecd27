"""The outbound guard (dlrconsole/lib/outbound.py): every call to a peer refuses internal
addresses, judged on the address actually connected to, and never follows a redirect."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from dlrconsole.lib import outbound
from receipts.providers import sns_signature
from tests.senders.http_server import ScriptedServer, closed_port_url, provider_api
from tests.settings_probe import PRODUCTION, run_with

__all__ = ["closed_port_url", "provider_api"]

REFUSED_LITERALS = [
    ("http://[::1]:8000/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1 (127.0.0.1) is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/send", "10.0.0.1 is a private address"),
    ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
    ("https://127.1/", "127.0.0.1 is a loopback address"),  # shorthand the resolver accepts
    ("https://2130706433/", "127.0.0.1 is a loopback address"),  # 127.0.0.1 as one number
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://100.64.0.1/", "100.64.0.1 is a non-public address"),  # carrier-grade NAT
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://[64:ff9b::a00:1]/", "64:ff9b::a00:1 (10.0.0.1) is a private address"),  # NAT64 of 10.0.0.1
    ("http://[2002:a00:1::1]/", "2002:a00:1::1 (10.0.0.1) is a private address"),  # 6to4 of 10.0.0.1
    ("http://localhost:8000/", "localhost is a loopback name"),
    ("http://api.localhost/", "api.localhost is a loopback name"),
]

_watching: list[list[tuple[str, tuple[Any, ...]]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching and event in ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname"):
        _watching[-1].append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only inside `network_io`


@contextmanager
def network_io() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Records the lookups and connects made in the block (Python's audit events)."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    _watching.append(seen)
    try:
        yield seen
    finally:
        _watching.pop()


@pytest.fixture
def no_allowlist(settings: Any) -> None:
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []


def post(url: str, **kwargs: Any) -> outbound.Reply:
    return outbound.call("POST", url, timeout=(1.0, 2.0), json={"hello": "world"}, **kwargs)


def test_a_loopback_server_is_refused_without_the_allowlist_and_reached_with_it(
    provider_api: ScriptedServer, settings: Any
) -> None:
    loopback = settings.DLR_OUTBOUND_ALLOWED_NETWORKS
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(outbound.DestinationRefused, match=r"127\.0\.0\.1 is a loopback address"):
        post(provider_api.url)
    assert provider_api.requests == []

    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = loopback
    provider_api.reply(200, {"id": "x"})
    assert post(provider_api.url).status_code == 200
    assert len(provider_api.requests) == 1


def test_an_allowlisted_network_is_reached_and_its_neighbours_are_not(settings: Any) -> None:
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = outbound_networks("10.1.0.0/16")
    assert outbound.url_problem("http://10.1.2.3/send") == ""
    assert "10.2.0.1 is a private address" in outbound.url_problem("http://10.2.0.1/send")


def outbound_networks(*cidrs: str) -> list[Any]:
    import ipaddress

    return [ipaddress.ip_network(cidr) for cidr in cidrs]


def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(
    provider_api: ScriptedServer, no_allowlist: None
) -> None:
    """The check is on the address the name resolves to when connecting, whatever it resolved
    to before: `localhost` resolves to 127.0.0.1 (and ::1) from /etc/hosts."""
    port = provider_api.url.rsplit(":", 1)[1]
    with network_io() as seen, pytest.raises(outbound.DestinationRefused, match="is a loopback address"):
        post(f"http://localhost:{port}/send")
    assert provider_api.requests == []
    assert [event for event, _ in seen] == ["socket.getaddrinfo"]  # resolved, never connected


def test_a_name_accepted_when_saved_is_refused_when_it_resolves_to_an_internal_address(
    provider_api: ScriptedServer, no_allowlist: None
) -> None:
    """DNS rebinding's shape: a URL saved under a name the save cannot judge, which resolves to
    an internal address when called. This machine's own name resolves to one."""
    host = socket.gethostname()
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    port = provider_api.url.rsplit(":", 1)[1]
    url = f"http://{host}:{port}/send"
    outbound.validate_url(url)  # accepted when saved: a name, not judged without a lookup
    with pytest.raises(outbound.DestinationRefused):
        post(url)
    assert provider_api.requests == []


@pytest.mark.parametrize(("url", "why"), REFUSED_LITERALS)
def test_internal_addresses_are_refused_when_saved_without_any_network_io(
    url: str, why: str, no_allowlist: None
) -> None:
    with network_io() as seen, pytest.raises(ValueError, match="url is refused") as caught:
        outbound.validate_url(url, name="url")
    assert why in str(caught.value)
    assert "DLR_OUTBOUND_ALLOWED_NETWORKS" in str(caught.value)
    assert seen == []


@pytest.mark.parametrize(("url", "why"), [case for case in REFUSED_LITERALS if "name" not in case[1]])
def test_internal_addresses_are_refused_when_called_without_connecting(url: str, why: str, no_allowlist: None) -> None:
    with network_io() as seen, pytest.raises(outbound.DestinationRefused):
        post(url)
    assert [event for event, _ in seen if event == "socket.connect"] == []


@pytest.mark.parametrize(
    "url", ["https://api.twilio.com/2010-04-01", "https://93.184.216.34/", "http://[2606:4700::1111]/"]
)
def test_public_addresses_and_names_are_accepted_when_saved(url: str, no_allowlist: None) -> None:
    with network_io() as seen:
        assert outbound.url_problem(url) == ""
    assert seen == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [("ftp://files.example/x", "must start with http"), ("https:///nohost", "has no host"), ("http://x:99999/", "URL")],
)
def test_malformed_urls_are_refused_when_saved(url: str, problem: str) -> None:
    assert problem in outbound.url_problem(url)


def test_a_redirect_is_never_followed(provider_api: ScriptedServer) -> None:
    other = ScriptedServer()
    other.start()
    try:
        provider_api.reply(302, {}, Location=other.url + "/inside")
        provider_api.reply(307, {}, Location=other.url + "/inside")
        assert post(provider_api.url).status_code == 302
        with outbound.OutboundSession() as session:  # no way to ask for one
            response = session.request("POST", provider_api.url, timeout=(1, 2))
        assert response.status_code == 307
    finally:
        other.stop()
    assert other.requests == []
    assert len(provider_api.requests) == 2


def test_environment_proxies_are_ignored(provider_api: ScriptedServer, closed_port_url: str, monkeypatch: Any) -> None:
    """A proxy would connect for us, past the check: calls go straight to the peer."""
    monkeypatch.setenv("HTTP_PROXY", closed_port_url)
    monkeypatch.setenv("HTTPS_PROXY", closed_port_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    provider_api.reply(200, {"id": "x"})
    assert post(provider_api.url).status_code == 200


def test_a_call_without_timeouts_is_refused() -> None:
    with outbound.OutboundSession() as session, pytest.raises(ValueError, match="timeouts"):
        session.request("GET", "https://api.twilio.com/")


def test_a_large_reply_is_read_only_up_to_the_bound(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, b'{"id": "' + b"x" * (outbound.MAX_REPLY_BYTES + 10) + b'"}')
    reply = post(provider_api.url)
    assert (reply.truncated, len(reply.content), reply.json()) == (True, outbound.MAX_REPLY_BYTES, None)


def test_a_connection_refused_by_the_peer_is_a_connection_error_not_a_refusal(closed_port_url: str) -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        post(closed_port_url)
    assert not isinstance(caught.value, outbound.DestinationRefused)


def test_sns_certificates_are_fetched_through_the_guard(provider_api: ScriptedServer, settings: Any) -> None:
    settings.DLR_SNS_CERT_HOST_PATTERN = r"127\.0\.0\.1:\d+"
    settings.DLR_SNS_CERT_URL_SCHEMES = ["http"]
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    sns_signature.clear_cache()
    with pytest.raises(sns_signature.CertificateUnavailable):
        sns_signature.signing_certificate(provider_api.url + "/SimpleNotificationService.pem")
    assert provider_api.requests == []


def settings_error(**env: str) -> str:
    """Import the settings in a fresh interpreter with production's environment and `env`; the
    error it prints, or ""."""
    result = run_with({**PRODUCTION, **env}, "-c", "import dlrconsole.settings")
    return result.stderr if result.returncode else ""


def test_the_allowlist_must_be_networks() -> None:
    assert "DLR_OUTBOUND_ALLOWED_NETWORKS must be comma-separated IP networks" in settings_error(
        DLR_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8,intranet"
    )
    assert settings_error(DLR_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8, ::1/128") == ""


def test_timeouts_that_cannot_fit_inside_the_soft_time_limit_are_refused_at_start_up() -> None:
    assert "must fit in CELERY_TASK_SOFT_TIME_LIMIT (15 s)" in settings_error(CELERY_TASK_SOFT_TIME_LIMIT="15")
    assert "DLR_SEND_TIMEOUT_MAX_SECONDS (40 s)" in settings_error(DLR_SEND_TIMEOUT_MAX_SECONDS="40")
    assert "below CELERY_TASK_TIME_LIMIT" in settings_error(CELERY_TASK_SOFT_TIME_LIMIT="90")
    assert settings_error(CELERY_TASK_SOFT_TIME_LIMIT="50", DLR_SEND_TIMEOUT_MAX_SECONDS="40") == ""


def test_calls_in_a_pass_share_a_session_that_never_sends_back_a_cookie(provider_api: ScriptedServer) -> None:
    # One session serves every peer of a pass: a cookie set by one reply (one account's API, one
    # product endpoint) must not ride along with the next request to the same host.
    provider_api.reply(200, {"id": "a"}, Set_Cookie="session=account-a; Path=/")
    provider_api.reply(200, {"id": "b"})
    with outbound.reusing_connections() as session:
        assert post(provider_api.url).json() == {"id": "a"}
        assert post(provider_api.url).json() == {"id": "b"}
        assert not hasattr(session, "cookies")  # no jar to keep one in
    assert "cookie" not in provider_api.requests[1].headers


def test_a_reply_cut_at_the_bound_leaves_nothing_behind_for_the_next_call(provider_api: ScriptedServer) -> None:
    # Its unread rest must not be taken for the next reply on a kept connection.
    provider_api.reply(200, b'{"id": "' + b"x" * (outbound.MAX_REPLY_BYTES * 2) + b'"}')
    provider_api.reply(200, {"id": "next"})
    with outbound.reusing_connections():
        assert post(provider_api.url).truncated
        assert post(provider_api.url).json() == {"id": "next"}


def test_form_fields_json_and_basic_auth_are_sent_as_the_peers_expect(provider_api: ScriptedServer) -> None:
    provider_api.reply(200, {})
    provider_api.reply(200, {})
    outbound.call(
        "POST", provider_api.url, timeout=(1, 2), data={"To": "+33612345678", "Body": "é"}, auth=("AC1", "tok")
    )
    outbound.call("POST", provider_api.url, timeout=(1, 2), json={"to": "+33612345678"})
    form, as_json = provider_api.requests
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.body == b"To=%2B33612345678&Body=%C3%A9"
    assert form.headers["authorization"] == "Basic QUMxOnRvaw=="
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.body == b'{"to": "+33612345678"}'
    assert form.headers["user-agent"] == "dlrconsole"
