#!/usr/bin/env python
"""What one outbound call costs in CPU: a feed POST's or a resend's HTTP, on a kept connection.

A keep-alive HTTP/1.1 server on loopback in this process answers every POST with a small JSON
reply; N POSTs of a 400-byte body with the feed's four headers are sent, one after another, on
one connection, three ways:

1. `outbound.call` with a session (what the feed and the attempt runner do);
2. urllib3's PoolManager alone, on the same guarded pools: the floor under (1);
3. a plain requests Session, as outbound calls were made until 2026-12-07.

CPU per call is the process's (so the in-process server's share is included, the same in all
three); compare the lines with each other, not with other machines.

    .venv/bin/python bench/outbound_call.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import serve_answers

BODY = b"x" * 400
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_1",
    "webhook-timestamp": "1",
    "webhook-signature": "v1,a",
}
TIMEOUT = (5.0, 5.0)


def timed(label: str, calls: int, call: Callable[[], object]) -> None:
    call()  # the connection opened before timing
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{label:<44} {cpu / calls * 1000:6.3f} ms CPU a call   {wall / calls * 1000:6.3f} ms wall")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="POSTs per way (default 3000)")
    args = parser.parse_args()
    if not 0 < args.calls <= 100_000:
        parser.error("--calls must be in 1..100000")
    # Settings that need no service and allow loopback peers: nothing here opens a database.
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_test"
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/unused")
    import django

    django.setup()
    import requests
    import urllib3

    from dlrconsole.lib import outbound

    server = serve_answers(lambda headers, body, received: (200, b'{"ok":true}'))
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    try:
        with outbound.OutboundSession() as session:

            def project() -> None:
                outbound.call("POST", url, data=BODY, headers=HEADERS, timeout=TIMEOUT, session=session)

            timed("outbound.call (the project)", args.calls, project)
        pool = urllib3.PoolManager(retries=False)
        pool.pool_classes_by_scheme = {"http": outbound._GuardedPool, "https": outbound._GuardedHTTPSPool}
        timeout = urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1])

        def bare() -> None:
            reply = pool.request("POST", url, body=BODY, headers=HEADERS, timeout=timeout, redirect=False,
                                 preload_content=False)  # fmt: skip
            reply.read()
            reply.release_conn()

        timed("urllib3 alone (the floor)", args.calls, bare)
        pool.clear()
        with requests.Session() as plain:
            plain.trust_env = False
            timed("a requests Session (until 2026-12-07)", args.calls,
                  lambda: plain.post(url, data=BODY, headers=HEADERS, timeout=TIMEOUT).content)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
