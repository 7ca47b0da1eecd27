"""A real local HTTP server standing in for the product's feed endpoint: replies as scripted,
records every request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when the server got it

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class ProductEndpointServer:
    """Answers the scripted (status, headers) replies in turn, then 200; records every request."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    gate: threading.Event | None = None  # once hold() is called, every request waits for release()
    waiting: int = 0  # requests that arrived while held

    def hold(self) -> None:
        """Make the endpoint hang, as a product whose database is locked: requests get no answer
        until release() (or 30 s)."""
        self.gate = threading.Event()

    def release(self) -> None:
        if self.gate is not None:
            self.gate.set()

    def fail_first(self, count: int, status: int = 500) -> None:
        self.script = [(status, {})] * count

    def next_reply(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            return self.script.pop(0) if self.script else (200, {})


@contextmanager
def serve_product() -> Iterator[ProductEndpointServer]:
    """A real local HTTP server standing in for the product's feed endpoint."""
    state = ProductEndpointServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                gate = state.gate
                if gate is not None and not gate.is_set():
                    state.waiting += 1
            if gate is not None:
                gate.wait(30)
            status, headers = state.next_reply()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    try:
        yield state
    finally:
        state.release()
    server.shutdown()
    server.server_close()
    thread.join(5)
