"""The decision benchmark's two remote peers, on loopback, in a process of their own.

- the **product**: receives the feed (POST, Standard Webhooks headers), checks the signature,
  answers 204;
- the **gateway**: the generic HTTP JSON send API (retries/senders/generic_http.py). It honours
  `Idempotency-Key`: a key seen before gets the first send's id back and sends nothing, so its log
  tells sends (side effects) from calls. It answers 200 {"id": "gw-<n>"}.

Each request is logged as one JSON line with the wall-clock time (`time.time()`, the clock the
workers stamp the database with) at which its headers were read. The log is written when the
process stops (SIGTERM), so writing it costs nothing during the run.

A process of its own, so that the peers do not share a GIL with the bench's paced senders and
their receive times are not delayed by them.

    python -m bench.peers --log PATH --max-seconds 900    # secret in BENCH_FEED_SECRET
    -> prints "ready product=<port> gateway=<port>", serves until SIGTERM or --max-seconds
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlrconsole.lib.standard_webhooks import sign

LOOPBACK = "127.0.0.1"


class Peers:
    def __init__(self, feed_secret: str) -> None:
        self.feed_secret = feed_secret
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.sends: dict[str, str] = {}  # idempotency key → the id of its one send

    def product(self, headers: Any, body: bytes, received: float) -> tuple[int, bytes]:
        webhook_id = headers.get("webhook-id", "")
        expected = sign(self.feed_secret, webhook_id, int(headers.get("webhook-timestamp") or 0), body)
        offered = headers.get("webhook-signature", "").split()
        try:
            event = json.loads(body)
            event_type, message_id = event["type"], event["data"]["message_id"]
        except (ValueError, KeyError, TypeError):
            event_type, message_id = "", None
        record = {
            "peer": "product", "t": received, "webhook_id": webhook_id, "type": event_type,
            "message_id": message_id, "signature_ok": any(hmac.compare_digest(expected, s) for s in offered),
        }  # fmt: skip
        with self.lock:
            self.records.append(record)
        return 204, b""

    def gateway(self, headers: Any, body: bytes, received: float) -> tuple[int, bytes]:
        key = headers.get("Idempotency-Key", "")
        with self.lock:
            new = not key or key not in self.sends
            if new:
                self.sends[key or f"no-key-{len(self.records)}"] = gw_id = f"gw-{len(self.sends) + 1}"
            else:
                gw_id = self.sends[key]
            self.records.append({"peer": "gateway", "t": received, "key": key, "id": gw_id, "new": new})
        return 200, json.dumps({"id": gw_id}).encode()


def serve(peers: Peers, name: str) -> ThreadingHTTPServer:
    return serve_answers(peers.product if name == "product" else peers.gateway)


def serve_answers(answer: Callable[[Any, bytes, float], tuple[int, bytes]]) -> ThreadingHTTPServer:
    """A keep-alive HTTP server on loopback, in a thread, whose POSTs `answer` (headers, body,
    arrival time) → (status, JSON reply)."""

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as a product's web server and a send API keep connections open: a new TCP
        # connection per request was a cost of this peer, not of the console.
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm the body waited for the
        # client's delayed ACK, 40 ms per reply on a kept connection. Web servers set
        # TCP_NODELAY (nginx's tcp_nodelay is on by default).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            received = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reply = answer(self.headers, body, received)
            self.send_response(status)
            if reply:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # The default backlog of 5 drops SYNs in a burst (a 1 s retransmit): not the product's cost.
        request_queue_size = 256

    httpd = Server((LOOPBACK, 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd


def main() -> int:
    parser = argparse.ArgumentParser(description="the benchmark's product endpoint and send gateway")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    peers = Peers(os.environ["BENCH_FEED_SECRET"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers = [serve(peers, "product"), serve(peers, "gateway")]
    print(f"ready product={servers[0].server_address[1]} gateway={servers[1].server_address[1]}", flush=True)
    stop.wait(args.max_seconds)
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
    with peers.lock, args.log.open("w") as log:
        for record in peers.records:
            log.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
