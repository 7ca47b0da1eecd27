#!/usr/bin/env python
"""Console page render times on demo-like data, measured with the Django test client.

By default on the demo's own configuration: SQLite in a temporary directory, tasks eager. With
--pg-url, a fresh PostgreSQL database instead (dropped first and afterwards). The data is what a
demo that ran a while holds: ten demo connections, the last hour at the simulator's 2 messages/s
(7,200), older traffic over a week, 1-3 receipts per message with raw payloads, decisions,
attempts and product notifications on failures. Each page is fetched `--runs` times after two
warm-ups, signed in as support (and as viewer where the role changes the page); the figures are
median, p95 and max in milliseconds. The goal is every page under 200 ms.

    .venv/bin/python bench/console_pages.py [--messages 20000] [--runs 20] [--pg-url postgres://…/postgres]

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback

DEMO_SLUGS = ["twilio-demo", "vonage-demo", "infobip-demo", "sinch-demo", "plivo-demo", "telnyx-demo",
              "messagebird-demo", "smpp-text-demo", "kannel-demo", "generic-demo"]  # fmt: skip
COUNTRIES = [("FR", "+336"), ("GB", "+447"), ("DE", "+4915"), ("US", "+1415"), ("IN", "+9198"), ("BR", "+55119"),
             ("NG", "+234803")]  # fmt: skip
# (status, reason, class, share of messages)
FATES = [("delivered", "", "", 88), ("undelivered", "absent_subscriber", "temporary", 5),
         ("rejected", "blocked_content", "permanent", 2), ("undelivered", "landline", "permanent", 1),
         ("expired", "expired", "temporary", 2), ("sent", "", "", 2)]  # fmt: skip
BUDGET_MS = 200
HTMX = {"HTTP_HX_REQUEST": "true"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="messages in all (default 20000)")
    parser.add_argument("--runs", type=int, default=20, help="timed fetches per page (default 20)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default="", help="maintenance PostgreSQL URL; default: SQLite like the demo")
    parser.add_argument("--database", default="dlrconsole_pages_bench", help="the PostgreSQL bench database; DROPPED")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.environ.pop("REDIS_URL", None)
    # The demo's settings: DEBUG on and keys of its own, as an in-process test client needs.
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_demo"
    if args.pg_url:
        if not is_loopback(urlsplit(args.pg_url).hostname or ""):
            sys.exit("refusing a non-loopback PostgreSQL URL")
        create_database(args.pg_url, args.database)
        os.environ["DATABASE_URL"] = database_url(args.pg_url, args.database)
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["DLR_VAR_DIR"] = tempfile.mkdtemp(prefix="dlr-pages-bench-")
    try:
        return run(args)
    finally:
        if args.pg_url:
            from django.db import connections

            connections.close_all()
            drop_database(args.pg_url, args.database)


def generate(args: argparse.Namespace) -> dict[str, object]:
    """Demo-like rows, in bulk. Returns what the page list needs (a failed message, a number, ...)."""
    from django.utils import timezone

    from receipts.models import Connection, Message, Receipt
    from retries.feed.models import FeedEvent
    from retries.models import Attempt, Decision

    rng = random.Random(args.seed)
    now = timezone.now()
    connections = Connection.objects.bulk_create(Connection(slug=s, provider="standard-webhooks") for s in DEMO_SLUGS)
    recent = min(7200, args.messages)
    messages = []
    for i in range(args.messages):
        ago = timedelta(seconds=i / 2) if i < recent else timedelta(seconds=rng.uniform(3600, 7 * 86400))
        country, prefix = rng.choice(COUNTRIES)
        status, reason, error_class = rng.choices([f[:3] for f in FATES], weights=[f[3] for f in FATES])[0]
        submitted = now - ago
        final = submitted + timedelta(seconds=rng.lognormvariate(1.5, 0.8)) if status != "sent" else None
        messages.append(Message(
            connection=rng.choice(connections), provider_message_id=f"SM{i:08x}{rng.getrandbits(32):08x}",
            recipient=prefix + f"{rng.randrange(10 ** 7):07d}"[: 12 - len(prefix) + 1], country=country,
            flow=rng.choice(["login-otp", "signup", "alerts"]), client_reference=f"order-{i}" if i % 3 == 0 else "",
            status=status, reason=reason, error_class=error_class, catalog_class=error_class,
            class_source="catalog" if reason else "", error_code="27" if reason else "", submitted_at=submitted,
            first_receipt_at=submitted + timedelta(milliseconds=500), final_at=final, status_changed_at=final,
        ))  # fmt: skip
    messages = Message.objects.bulk_create(messages, batch_size=2000)
    receipts = []
    for message in messages:
        steps = [("accepted", "ACCEPTD"), ("sent", "ENROUTE")] + (
            [(message.status, message.status.upper()[:7])] if message.status != "sent" else []
        )
        for n, (status, provider_status) in enumerate(steps[rng.randrange(0, 2) :]):
            receipts.append(Receipt(
                connection_id=message.connection_id, message=message, provider_message_id=message.provider_message_id,
                dedupe_key=f"{message.provider_message_id}-{n}", provider_status=provider_status, status=status,
                outcome="applied", received_at=message.submitted_at + timedelta(seconds=n + 0.5),
                reason=message.reason if status == message.status else "", error_code=message.error_code,
                raw_body=json.dumps({"id": message.provider_message_id, "status": provider_status,
                                     "to": message.recipient, "err": message.error_code}),
            ))  # fmt: skip
    Receipt.objects.bulk_create(receipts, batch_size=5000)
    failed = [m for m in messages if m.reason][:300]
    decisions = Decision.objects.bulk_create(
        Decision(message=m, action="retry_same", state=Decision.State.SCHEDULED, why="rule: attempt 1 of 3",
                 created_at=m.final_at or now) for m in failed
    )  # fmt: skip
    Attempt.objects.bulk_create(
        Attempt(decision=d, chain_root=d.message, number=1, idempotency_key=f"retry-of-message-{d.message.pk}",
                due_at=d.created_at + timedelta(seconds=60), outcome="failed", detail="no send API configured")
        for d in decisions
    )  # fmt: skip
    FeedEvent.objects.bulk_create(
        FeedEvent(type="message.failed", message=m, payload={"id": m.pk}, created_at=m.final_at or now) for m in failed
    )
    return {
        "failed": failed[0],
        "number": failed[0].recipient,
        "pmid": messages[len(messages) // 2].provider_message_id,
        "receipts": len(receipts),
    }


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from receipts.models import Message
    from receipts.search import NEWEST_FIRST, Cursor

    setup_test_environment()
    call_command("migrate", verbosity=0)
    started = time.monotonic()
    data = generate(args)
    print(f"{connection.vendor}: {args.messages:,} messages, {data['receipts']:,} receipts "
          f"generated in {time.monotonic() - started:.1f} s")  # fmt: skip
    # Rows were bulk-inserted, past the rollups' queue: count them all, as `recount_rollups --rebuild` does.
    from receipts.rollups import maintain, recount

    started = time.monotonic()
    recount.rebuild()
    maintain.roll_up_all(seconds=float("inf"))
    print(f"rollups counted in {time.monotonic() - started:.1f} s")
    clients = {}
    for role in ("support", "viewer"):
        user = User.objects.create_user(username=f"bench-{role}")
        user.groups.add(Group.objects.get(name=role))
        clients[role] = Client()
        clients[role].force_login(user)
    failed = data["failed"]
    assert isinstance(failed, Message)
    deep = Message.objects.order_by(*NEWEST_FIRST)[1000]
    number = str(data["number"])
    spaced = f"{number[:3]} {number[3:6]} {number[6:9]} {number[9:]}"
    pages = [
        ("support", "overview 1 h", "/console/?window=1h", {}),
        ("support", "overview 24 h", "/console/?window=24h", {}),
        ("support", "overview 7 d", "/console/?window=7d", {}),
        ("support", "overview 30 d", "/console/?window=30d", {}),
        ("support", "overview fragment (htmx poll)", "/console/?window=24h", HTMX),
        ("support", "routes 24 h", "/console/routes/?window=24h", {}),
        ("support", "routes 7 d by network, by rate", "/console/routes/?window=7d&by_network=true&sort=-rate", {}),
        ("viewer", "routes 30 d", "/console/routes/?window=30d", {}),
        ("support", "flows 7 d", "/console/flows/?window=7d", {}),
        ("viewer", "API rollups 7 d by route", "/api/v1/rollups/?window=7d&group_by=connection&group_by=country", {}),
        ("viewer", "API rollups 24 h series", "/api/v1/rollups/?window=24h&group_by=flow&series=true", {}),
        ("support", "search, newest", "/console/messages/", {}),
        ("viewer", "search, newest (masked)", "/console/messages/", {}),
        ("support", "search q=number with spaces", f"/console/messages/?{urlencode({'q': spaced})}", {}),
        ("support", "search q=provider id", f"/console/messages/?q={data['pmid']}", {}),
        ("support", "search status+country", "/console/messages/?status=undelivered&country=FR", {}),
        ("support", "search fragment, page 21", f"/console/messages/?before={Cursor.of(deep).encode()}", HTMX),
        ("support", "message page (failed)", f"/console/messages/{failed.pk}/", {}),
        ("support", "resend confirmation", f"/console/messages/{failed.pk}/resend/", {}),
    ]  # fmt: skip
    print(f"\n{'page':34} {'role':8} {'median':>8} {'p95':>8} {'max':>8}   (ms, {args.runs} runs)")
    worst = 0.0
    for role, title, url, headers in pages:
        client = clients[role]
        timings = []
        for n in range(args.runs + 2):
            t0 = time.perf_counter()
            response = client.get(url, **headers)
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, (title, response.status_code)
            if n >= 2:
                timings.append(elapsed)
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        worst = max(worst, statistics.median(timings))
        flag = "  OVER BUDGET" if statistics.median(timings) > BUDGET_MS else ""
        print(f"{title:34} {role:8} {statistics.median(timings):8.1f} {p95:8.1f} {timings[-1]:8.1f}{flag}")
    t0 = time.perf_counter()
    response = clients["viewer"].get("/console/messages/export.csv")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    took = (time.perf_counter() - t0) * 1000
    print(f"\nexport of every message (viewer, streamed): {lines - 1:,} rows in {took:.0f} ms")
    print(f"slowest page median: {worst:.1f} ms (budget {BUDGET_MS} ms)")
    return 0 if worst <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
