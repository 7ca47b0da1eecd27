"""A simulated send API: the generic HTTP contract (retries/senders/generic_http.py) served on
loopback, so the console's retries have a provider to resend through.

`POST /send/<connection-slug>` with `{"to", "body", "sender_id", "options", "status_callback_url"}`
and an `Idempotency-Key` header answers `{"id": ...}`, an id in the style of that connection's
provider. A key seen before on the same connection answers the first id and sends nothing
(the same key with another request is refused with 422, as the IETF draft says). Each new send
is handed to the simulator's main loop through a thread-safe queue; the simulator then plays
that message's receipts like any other's, without registering it: the console does, as it
records its attempt. Receipts go to the console the simulator plays against, never to the
request's `status_callback_url`: the simulator posts only to the base URL it was given.

Bounded: at most `max_resends` new sends per run (then 429), small bodies only, loopback only.
"""

from __future__ import annotations

import json
import queue
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import phonenumbers

from dlrconsole.simulator.base import Target
from dlrconsole.simulator.players.registry import get_player

HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 16 * 1024
# An oversized body is read (up to this) before the 413, so the caller gets the answer rather
# than a connection reset for the bytes it was still sending.
MAX_DISCARD_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 255
# A client that opens a connection and sends nothing must not hold a handler thread for long.
SOCKET_TIMEOUT = 5.0


@dataclass(frozen=True)
class AdoptedResend:
    """One new send, for the simulator to play: which connection, under which id, to whom."""

    slug: str
    provider_message_id: str
    to: str  # E.164
    country: str
    body: str


class GatewayRefusal(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SendGateway:
    """The simulated send API of every connection the simulator plays. Start it, give the
    console `url_for(slug)` as each connection's send API URL, hand it to the Simulator."""

    def __init__(self, targets: Sequence[Target], *, max_resends: int = 500, seed: int | None = None) -> None:
        if max_resends < 0:
            raise ValueError("max_resends must not be negative")
        self.targets = {target.slug: target for target in targets}
        self.max_resends = max_resends
        # What the simulator's main loop takes from; the only thing the HTTP threads share with it.
        self.adopted: queue.Queue[AdoptedResend] = queue.Queue()
        self._lock = threading.Lock()
        # Never the simulator's own sequence, even with the same seed: its ids would come again.
        self._rng = random.Random(None if seed is None else f"send-gateway:{seed}")  # noqa: S311 - not security
        self._sends: dict[tuple[str, str], tuple[str, str, str]] = {}  # (slug, key) → (id, to, body)
        self._accepting = True
        self.requests = 0
        self.replayed = 0
        self.refused = 0
        self._httpd = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="send-gateway", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def sent(self) -> int:
        with self._lock:
            return len(self._sends)

    def url_for(self, slug: str) -> str:
        return f"http://{HOST}:{self.port}/send/{slug}"

    def start(self) -> SendGateway:
        self._thread.start()
        return self

    def stop_accepting(self) -> None:
        """From now on new sends get 503: nobody would play their receipts."""
        with self._lock:
            self._accepting = False

    def stop(self) -> None:
        self.stop_accepting()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> SendGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def summary(self) -> str:
        with self._lock:
            return (
                f"Send API: {len(self._sends)} resends taken, {self.replayed} repeated keys answered with the "
                f"first id, {self.refused} requests refused"
            )

    def answer(self, path: str, key: str, raw: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        """The reply to one POST; called by the HTTP threads."""
        with self._lock:
            self.requests += 1
        try:
            slug, to, body = self._parse(path, raw)
            country = _country(to)
            status, message_id = self._send(slug, key, to, body, country)
        except GatewayRefusal as refusal:
            with self._lock:
                self.refused += 1
            return refusal.status, {"error": refusal.reason}
        return status, {"id": message_id}

    def _parse(self, path: str, raw: bytes) -> tuple[str, str, str]:
        prefix, _, slug = path.partition("/send/")
        if prefix or slug not in self.targets:
            raise GatewayRefusal(HTTPStatus.NOT_FOUND, "no such connection: POST /send/<connection-slug>")
        try:
            payload = json.loads(raw)
        except ValueError:
            raise GatewayRefusal(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(payload, dict):
            raise GatewayRefusal(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        to, body = payload.get("to"), payload.get("body")
        if not isinstance(to, str) or not to or not isinstance(body, str) or not body:
            raise GatewayRefusal(HTTPStatus.BAD_REQUEST, "'to' and 'body' must be non-empty strings")
        return slug, to, body

    def _send(self, slug: str, key: str, to: str, body: str, country: str) -> tuple[HTTPStatus, str]:
        with self._lock:
            if key and (slug, key) in self._sends:
                message_id, first_to, first_body = self._sends[(slug, key)]
                if (first_to, first_body) != (to, body):
                    raise GatewayRefusal(
                        HTTPStatus.UNPROCESSABLE_ENTITY, "this Idempotency-Key was used for another request"
                    )
                self.replayed += 1
                return HTTPStatus.OK, message_id
            if not self._accepting:
                raise GatewayRefusal(HTTPStatus.SERVICE_UNAVAILABLE, "the simulation is over")
            if len(self._sends) >= self.max_resends:
                raise GatewayRefusal(
                    HTTPStatus.TOO_MANY_REQUESTS, f"this simulation sends at most {self.max_resends} messages"
                )
            message_id = get_player(self.targets[slug].provider).message_id(self._rng)
            # Without a key every request is a new send, as at a provider; keyed or not, it counts.
            self._sends[(slug, key or f"unkeyed-{message_id}")] = (message_id, to, body)
        self.adopted.put(AdoptedResend(slug, message_id, to, country, body))
        return HTTPStatus.OK, message_id


def _country(to: str) -> str:
    try:
        number = phonenumbers.parse(to)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise GatewayRefusal(HTTPStatus.UNPROCESSABLE_ENTITY, "'to' is not a valid number in E.164")
    return phonenumbers.region_code_for_number(number) or ""


def _handler(gateway: SendGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                length = -1
            if length < 0:
                self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length is required"})
                return
            if length > MAX_REQUEST_BYTES:
                self.rfile.read(min(length, MAX_DISCARD_BYTES))
                self.close_connection = True
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"at most {MAX_REQUEST_BYTES} bytes"})
                return
            raw = self.rfile.read(length)
            key = self.headers.get("Idempotency-Key", "")
            if len(key) > MAX_KEY_LENGTH:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": f"Idempotency-Key: at most {MAX_KEY_LENGTH} characters"})
                return
            self._reply(*gateway.answer(self.path, key, raw))

        def do_GET(self) -> None:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST /send/<connection-slug>"})

        def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except OSError:
                pass  # the caller gave up (timeout, closed): nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the simulator reports what the gateway did; no access log over its output

    return Handler
