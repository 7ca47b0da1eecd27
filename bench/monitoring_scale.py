#!/usr/bin/env python
"""Monitoring pages, the rollup API and search at 10 million messages: issue 12's bars.

On loopback only: a fresh PostgreSQL database (dropped first), migrated, filled with COPY:
--messages messages (default 10,000,000) over the last 35 days and ~2.5 receipts each, on ten
connections, ten countries with a few networks each and six flows, the fates of
bench/console_pages.py, prices with currencies, client references and provider ids. Indexes
and foreign keys are dropped during the load and made again after it, as a restore would.
Then the rollups are built with receipts/rollups/rebuild.py (timed), and every figure of the
URL table below is fetched --runs times (after two warm-ups) through the Django test client
signed in as support. A URL this build does not have (404, or 400 for an unknown overview
window) is reported "not on this build".

    .venv/bin/python bench/monitoring_scale.py --keep                 # generate 10 M, build, measure
    .venv/bin/python bench/monitoring_scale.py --reuse                # measure again on the kept database
    .venv/bin/python bench/monitoring_scale.py --reuse --rebuild      # also time the rollup rebuild again
    .venv/bin/python bench/monitoring_scale.py --messages 200000      # a smaller run, dropped afterwards

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.console_pages import FATES, HTMX
from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback

PAGE_BAR_MS = 300
SEARCH_BAR_MS = 50


@dataclass(frozen=True)
class Figure:
    title: str
    url: str  # may hold {number}, {pmid}, {reference}: filled from the generated data
    bar_ms: int
    headers: dict[str, str]


# Every figure the issue sets a bar for. Pages that are still being built elsewhere are listed
# too: they are measured as soon as a build has them.
FIGURES = [
    Figure("overview 1 h", "/console/?window=1h", PAGE_BAR_MS, {}),
    Figure("overview 24 h", "/console/?window=24h", PAGE_BAR_MS, {}),
    Figure("overview 7 d", "/console/?window=7d", PAGE_BAR_MS, {}),
    Figure("overview 30 d", "/console/?window=30d", PAGE_BAR_MS, {}),
    Figure("overview 24 h, htmx refresh", "/console/?window=24h", PAGE_BAR_MS, HTMX),
    Figure("routes", "/console/routes/", PAGE_BAR_MS, {}),
    Figure("flows", "/console/flows/", PAGE_BAR_MS, {}),
    Figure("rollup API", "/api/v1/rollups/", PAGE_BAR_MS, {}),
    Figure("search: number typed with spaces", "/console/messages/?{number}", SEARCH_BAR_MS, {}),
    Figure("search: provider id", "/console/messages/?{pmid}", SEARCH_BAR_MS, {}),
    Figure("search: client reference", "/console/messages/?{reference}", SEARCH_BAR_MS, {}),
]

DAYS = 35
# (country, E.164 prefix, digits after it, networks (MCC/MNC), share of traffic)
COUNTRIES = [
    ("FR", "+336", 8, ["20801", "20810", "20815", "20820"], 22),
    ("GB", "+447700", 6, ["23410", "23415", "23420", "23430"], 14),
    ("DE", "+49151", 8, ["26201", "26202", "26203"], 12),
    ("US", "+1415", 7, ["310260", "311480", "310410"], 12),
    ("IN", "+9198", 8, ["40445", "40410", "405854"], 10),
    ("BR", "+55119", 8, ["72405", "72406", "72431"], 8),
    ("ES", "+346", 8, ["21401", "21403", "21407"], 7),
    ("IT", "+393", 9, ["22201", "22210", "22288"], 6),
    ("NG", "+234803", 7, ["62130", "62150", "62120"], 5),
    ("NL", "+316", 8, ["20404", "20408", "20416"], 4),
]
CONNECTIONS = [("twilio-main", "USD"), ("vonage-eu", "EUR"), ("infobip-eu", "EUR"), ("sinch-global", "USD"),
               ("plivo-us", "USD"), ("telnyx-us", "USD"), ("messagebird-eu", "EUR"), ("smpp-direct-fr", "EUR"),
               ("kannel-local", "EUR"), ("bulk-uk", "GBP")]  # fmt: skip
FLOWS = [("login-otp", 40), ("signup", 12), ("password-reset", 8), ("alerts", 15), ("marketing", 15),
         ("transactional", 10)]  # fmt: skip
RECIPIENTS_PER_MESSAGE = 0.2  # a number gets ~5 messages over the period

MESSAGE_COLUMNS = (
    "id", "connection_id", "provider_message_id", "recipient", "country", "flow", "client_reference", "status",
    "error_code", "reason", "error_class", "catalog_class", "class_source", "submitted_at", "first_receipt_at",
    "final_at", "status_changed_at", "no_receipt_at", "chain_root_id", "body", "fallback_email", "network", "cost",
    "currency", "fallbacks", "created_at",
)  # fmt: skip
RECEIPT_COLUMNS = (
    "connection_id", "message_id", "provider_message_id", "dedupe_key", "provider_status", "status", "error_code",
    "error_description", "reason", "error_class", "catalog_class", "class_source", "provider_timestamp",
    "received_at", "outcome", "network", "price", "currency", "raw_body", "headers",
)  # fmt: skip
LOADED_TABLES = ("receipts_message", "receipts_receipt")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000, help="messages to generate (default 10,000,000)")
    parser.add_argument("--runs", type=int, default=20, help="timed fetches per figure (default 20)")
    parser.add_argument("--max-seconds", type=float, default=180, help="cap on one figure's fetches (default 180)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres", help="maintenance DB URL")
    parser.add_argument("--database", default="dlrconsole_bench_10m", help="the bench database; DROPPED unless --reuse")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure on a database kept by an earlier run")
    parser.add_argument("--rebuild", action="store_true", help="with --reuse: rebuild (and time) the rollups again")
    parser.add_argument("--json", default="", help="also write every figure to this file")
    parser.add_argument("--explain", action="store_true", help="print the plans of the searches' queries")
    parser.add_argument("--only", default="", help="measure only the figures whose title contains this text")
    args = parser.parse_args()
    if args.messages < 1000 or args.runs < 1 or args.max_seconds <= 0:
        parser.error("--messages must be at least 1000, --runs at least 1 and --max-seconds positive")
    return args


def main() -> int:
    args = parse_args()
    if not is_loopback(urlsplit(args.pg_url).hostname or ""):
        sys.exit("refusing a non-loopback PostgreSQL URL")
    os.environ.pop("REDIS_URL", None)
    # The demo's settings, as bench/console_pages.py: keys of its own, tasks eager.
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_demo"
    os.environ["DATABASE_URL"] = database_url(args.pg_url, args.database)
    if not args.reuse:
        create_database(args.pg_url, args.database)
    try:
        return run(args)
    finally:
        if not args.keep and not args.reuse:
            from django.db import connections

            connections.close_all()
            drop_database(args.pg_url, args.database)


# --------------------------------------------------------------------------- generation


def _pick(cumulative: list[float], rng: random.Random) -> int:
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _drop_constraints_and_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the loaded tables' unique and foreign-key constraints and secondary indexes;
    returns the statements that make them again."""
    again = []
    for table in LOADED_TABLES:
        rows = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        ).fetchall()
        for name, definition in rows:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        rows = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
            [table],
        ).fetchall()
        for name, definition in rows:
            conn.execute(f"DROP INDEX {name}")
            again.insert(0, definition)  # indexes first: the foreign keys' checks use them
    return again


class Timestamps:
    """PostgreSQL text for epoch seconds; the whole-second part is cached, as a message's
    timestamps are seconds apart (formatting a datetime per value is most of the CPU)."""

    def __init__(self) -> None:
        self.seconds: dict[int, str] = {}

    def __call__(self, moment: float) -> str:
        whole = int(moment)
        prefix = self.seconds.get(whole)
        if prefix is None:
            if len(self.seconds) > 100_000:
                self.seconds.clear()
            prefix = self.seconds[whole] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{prefix}.{int((moment - whole) * 1_000_000):06d}+00"


def batches(n: int, seed: int, connections: dict[str, int], now: float) -> Iterator[tuple[str, str, int]]:
    """COPY text for messages 1..n and their receipts, ~20,000 messages at a time:
    (message lines, receipt lines, receipts in the batch)."""
    rng = random.Random(seed)
    currency_of = dict(CONNECTIONS)
    slugs = [slug for slug, _ in CONNECTIONS]
    # Each country is served by three or four connections, at a price of their own.
    routes = {}
    for country, *_ in COUNTRIES:
        served = rng.sample(slugs, rng.choice((3, 4)))
        routes[country] = [(str(connections[s]), currency_of[s], f"{rng.uniform(0.004, 0.09):.6f}") for s in served]
    country_weights = _cumulative([c[4] for c in COUNTRIES])
    flow_weights = _cumulative([f[1] for f in FLOWS])
    fate_weights = _cumulative([f[3] for f in FATES])
    pool = max(10, int(n * RECIPIENTS_PER_MESSAGE))
    start = now - DAYS * 86400
    step = DAYS * 86400 / n
    ts = Timestamps()
    random_ = rng.random
    mlines: list[str] = []
    rlines: list[str] = []
    for i in range(1, n + 1):
        submitted = start + (i - 1) * step + random_() * step
        country, prefix, digits, networks, _ = COUNTRIES[_pick(country_weights, rng)]
        connection_id, currency, price = rng.choice(routes[country])
        network = rng.choice(networks)
        flow = FLOWS[_pick(flow_weights, rng)][0]
        status, reason, error_class, _ = FATES[_pick(fate_weights, rng)]
        recipient = prefix + str(int(random_() * pool) * 7919 % (10**digits)).zfill(digits)
        pmid = f"{i:010x}{int(random_() * 4294967296):08x}"
        reference = f"ord-{i:09d}" if random_() < 0.7 else ""
        first = submitted + rng.lognormvariate(0.7, 0.9)
        final = first + rng.lognormvariate(1.2, 1.1) if status != "sent" else None
        missing = status == "sent" and submitted < now - 3600
        costed = random_() < 0.95
        chain_root = str(i - 1 - int(random_() * min(i - 1, 999))) if i > 1 and random_() < 0.01 else "\\N"
        fallbacks = "1" if error_class == "permanent" and random_() < 0.3 else "0"
        code = "27" if reason else ""
        submitted_text, first_text = ts(submitted), ts(first)
        final_text = ts(final) if final is not None else "\\N"
        mlines.append("\t".join((
            str(i), connection_id, pmid, recipient, country, flow, reference, status, code, reason, error_class,
            error_class, "catalog" if reason else "", submitted_text, first_text, final_text,
            final_text if final is not None else first_text, ts(now) if missing else "\\N", chain_root, "", "",
            network, price if costed else "\\N", currency if costed else "", fallbacks, submitted_text,
        )))  # fmt: skip
        steps = [("accepted", "ACCEPTD", first_text, first)] if random_() < 0.5 else []
        steps.append(
            ("sent", "ENROUTE", ts(first + 0.3), first + 0.3) if steps else ("sent", "ENROUTE", first_text, first)
        )
        if final is not None:
            steps.append((status, status.upper()[:7], final_text, final))
        message_id = str(i)
        for number, (state, provider_status, at_text, at) in enumerate(steps):
            last = state == status
            err = code if last else ""
            raw = f'{{"id": "{pmid}", "status": "{provider_status}", "to": "{recipient}", "err": "{err}"}}'
            rlines.append("\t".join((
                connection_id, message_id, pmid, f"{pmid}-{number}", provider_status, state, err, "",
                reason if last else "", error_class if last else "", error_class if last else "",
                "catalog" if last and reason else "", ts(at - 0.2), at_text, "applied", network,
                price if last and costed else "\\N", currency if last and costed else "", raw, "{}",
            )))  # fmt: skip
        if len(mlines) >= 20000 or i == n:
            yield "\n".join(mlines) + "\n", "\n".join(rlines) + "\n", len(rlines)
            mlines, rlines = [], []


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Connections through the ORM, then messages and receipts with COPY. Returns counts."""
    from receipts.models import Connection

    connections = {
        slug: Connection.objects.create(slug=slug, provider="standard-webhooks").pk for slug, _ in CONNECTIONS
    }
    db_url = os.environ["DATABASE_URL"]
    with psycopg.connect(db_url, autocommit=True) as admin:
        again = _drop_constraints_and_indexes(admin)
    messages = receipts = 0
    with (
        psycopg.connect(db_url) as message_conn,
        psycopg.connect(db_url) as receipt_conn,
        message_conn.cursor().copy(f"COPY receipts_message ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN") as mcopy,
        receipt_conn.cursor().copy(f"COPY receipts_receipt ({', '.join(RECEIPT_COLUMNS)}) FROM STDIN") as rcopy,
    ):
        for message_text, receipt_text, count in batches(args.messages, args.seed, connections, time.time()):
            mcopy.write(message_text)
            rcopy.write(receipt_text)
            before, messages, receipts = messages, messages + message_text.count("\n"), receipts + count
            if messages // 1_000_000 != before // 1_000_000:
                print(f"  {messages:,} messages, {receipts:,} receipts copied", flush=True)
    print("  rows copied; making indexes and constraints again", flush=True)
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SET maintenance_work_mem = '512MB'")
        for statement in again:
            admin.execute(statement)
        admin.execute("SELECT setval(pg_get_serial_sequence('receipts_message', 'id'), %s)", [messages])
        admin.execute("SELECT setval(pg_get_serial_sequence('receipts_receipt', 'id'), %s)", [receipts])
        for table in LOADED_TABLES:
            admin.execute(f"VACUUM ANALYZE {table}")
    return {"messages": messages, "receipts": receipts}


# --------------------------------------------------------------------------- measuring


def samples() -> dict[str, str]:
    """Query strings for the searches, from rows in the middle of the period."""
    from receipts.models import Message

    middle = Message.objects.order_by().values("id").filter(id__gte=Message.objects.count() // 2).first()
    assert middle is not None
    base = Message.objects.filter(id__gte=middle["id"], country="FR")
    number = base.values_list("recipient", flat=True).first()
    pmid = base.values_list("provider_message_id", flat=True).first()
    reference = base.exclude(client_reference="").values_list("client_reference", flat=True).first()
    assert number
    assert pmid
    assert reference
    spaced = f"{number[:3]} {number[3:4]} {number[4:6]} {number[6:8]} {number[8:10]} {number[10:]}"
    return {
        "number": urlencode({"q": spaced}),
        "pmid": urlencode({"q": pmid}),
        "reference": urlencode({"q": reference}),
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, round(fraction * len(sorted_values)) - 1)]


def measure(args: argparse.Namespace, client: Any, figure: Figure, values: dict[str, str]) -> dict[str, Any]:
    """Median, p95 and max of the page's wall time, and the median of its SQL's time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = figure.url.format(**values)
    first = client.get(url, **figure.headers)
    if first.status_code == 404 or (first.status_code == 400 and "window" in url):
        return {"title": figure.title, "url": url, "bar_ms": figure.bar_ms, "present": False}
    assert first.status_code == 200, (figure.title, first.status_code)
    client.get(url, **figure.headers)
    timings, sql = [], []
    deadline = time.monotonic() + args.max_seconds
    for _ in range(args.runs):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(url, **figure.headers)
            timings.append((time.perf_counter() - t0) * 1000)
        sql.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
        assert response.status_code == 200, (figure.title, response.status_code)
        if time.monotonic() > deadline:
            break
    timings.sort()
    p95 = percentile(timings, 0.95)
    return {
        "title": figure.title, "url": url, "bar_ms": figure.bar_ms, "present": True, "runs": len(timings),
        "median_ms": statistics.median(timings), "p95_ms": p95, "max_ms": timings[-1], "pass": p95 < figure.bar_ms,
        "sql_median_ms": statistics.median(sql), "queries": len(captured.captured_queries),
    }  # fmt: skip


def explain_searches(client: Any, values: dict[str, str]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every query on the messages each search page makes, and of
    the single query with the three lookups OR'ed, as the search was before."""
    from urllib.parse import parse_qs

    from django.db import connection
    from django.db.models import Q
    from django.test.utils import CaptureQueriesContext

    from receipts.models import Message
    from receipts.search import NEWEST_FIRST, search_interpret

    for figure in FIGURES:
        if "{" not in figure.url:
            continue
        url = figure.url.format(**values)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        print(f"\n=== {figure.title}: {url}")
        for query in captured.captured_queries:
            if 'FROM "receipts_message"' not in query["sql"]:
                continue
            print(f"--- {query['sql']}")
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                print("\n".join(row[0] for row in cursor.fetchall()))
        term = search_interpret(parse_qs(url.split("?", 1)[1])["q"][0])
        either = Q(provider_message_id=term.text) | Q(client_reference=term.text)
        if term.number:
            either |= Q(recipient=term.number)
        print("--- before: the three lookups OR'ed in the page's query")
        print(Message.objects.filter(either).order_by(*NEWEST_FIRST)[:51].explain(analyze=True, buffers=True))


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from receipts.models import Message, Receipt
    from receipts.rollups.models import Rollup

    setup_test_environment()
    report: dict[str, Any] = {"messages": args.messages}
    if not args.reuse:
        call_command("migrate", verbosity=0)
        started = time.monotonic()
        report |= generate(args)
        report["generation_s"] = time.monotonic() - started
        print(f"{report['messages']:,} messages, {report['receipts']:,} receipts generated "
              f"in {report['generation_s']:.0f} s", flush=True)  # fmt: skip
    else:
        report["messages"] = Message.objects.count()
        report["receipts"] = Receipt.objects.count()
        print(f"reusing {args.database}: {report['messages']:,} messages, {report['receipts']:,} receipts")
    if not args.reuse or args.rebuild or not Rollup.objects.exists():
        from receipts.rollups import rebuild

        started = time.monotonic()
        counted = rebuild.rebuild()
        report["rebuild_s"] = time.monotonic() - started
        print(f"rollups rebuilt from {counted:,} messages in {report['rebuild_s']:.1f} s "
              f"({Rollup.objects.count():,} rollup rows)", flush=True)  # fmt: skip
    user, _ = User.objects.get_or_create(username="bench-support")
    user.groups.add(Group.objects.get(name="support"))
    client = Client()
    client.force_login(user)
    values = samples()
    if args.explain:
        explain_searches(client, values)
    results = []
    print(f"\n{'figure':36} {'bar':>6} {'median':>8} {'p95':>8} {'max':>8}  result  {'sql':>8} {'queries':>7}"
          f"   (ms, {args.runs} runs; sql: median time in the page's queries)")  # fmt: skip
    for figure in [f for f in FIGURES if args.only in f.title]:
        result = measure(args, client, figure, values)
        results.append(result)
        if not result["present"]:
            print(f"{figure.title:36} {figure.bar_ms:6} {'':>8} {'':>8} {'':>8}  not on this build", flush=True)
            continue
        verdict = "pass" if result["pass"] else "FAIL"
        print(f"{figure.title:36} {figure.bar_ms:6} {result['median_ms']:8.1f} {result['p95_ms']:8.1f} "
              f"{result['max_ms']:8.1f}  {verdict:6}  {result['sql_median_ms']:8.1f} {result['queries']:7}",
              flush=True)  # fmt: skip
    report["figures"] = results
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    measured = [r for r in results if r["present"]]
    failed = [r["title"] for r in measured if not r["pass"]]
    print(f"\n{len(measured) - len(failed)} of {len(measured)} measured figures under their bar"
          + (f"; over: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
