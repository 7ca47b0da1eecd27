"""A real local SMS gateway for tests: the generic HTTP JSON send API (retries/senders/generic_http.py)
on loopback. It honours Idempotency-Key the way a gateway should: a repeated key returns the first
send's id and sends nothing, so `sends` counts side effects, `requests` every call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from retries.models import ConnectionSender


class FakeGateway:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.connections: list[int] = []  # each request's client port: which connection it came on
        self.sends: dict[str, dict[str, Any]] = {}  # idempotency key → the send, with its id
        self.failures: list[int] = []  # statuses to answer (and not send) before succeeding
        self.hang_after_send = 0.0  # seconds to hold the first reply after sending (a slow provider)
        self.on_send: Callable[[], None] | None = None  # runs once a send happened, before the reply
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/send"

    def fail_next(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def configure(self, connection: Any, **fields: Any) -> ConnectionSender:
        return ConnectionSender.objects.create(
            connection=connection, kind="generic-http", config={"url": self.url, "read_timeout": 15}, **fields
        )

    def _answer(self, key: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self.lock:
            self.requests.append({"key": key, "at": time.time(), **payload})
            if self.failures:
                return self.failures.pop(0), {"error": "try later"}, 0.0
            if key in self.sends:
                return 200, {"id": self.sends[key]["id"]}, 0.0
            self.sends[key] = {"id": f"gw-{len(self.sends) + 1}", **payload}
            hang, self.hang_after_send = self.hang_after_send, 0.0
            if self.on_send is not None:
                self.on_send()
            return 200, {"id": self.sends[key]["id"]}, hang

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection, as providers' APIs do
            disable_nagle_algorithm = True  # or each reply's body waits for a delayed ACK (40 ms)

            def do_POST(self) -> None:
                gateway.connections.append(self.client_address[1])
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, reply, hang = gateway._answer(self.headers.get("Idempotency-Key", ""), json.loads(body))
                if hang:
                    time.sleep(hang)
                raw = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller died or gave up meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
