"""`manage.py demo` (what `make demo` runs): the console on the embedded default, fed live.

Migrates the SQLite database under ./var, makes sure the demo user, connections and a new API key
exist (one connection per provider the simulator can play in a demo), starts `runserver` on
127.0.0.1 in a subprocess and, once it answers /healthz, plays the simulated providers against it
through the real API and webhook path until Ctrl-C.

Decisions are executed as in production: each demo connection resends through a simulated send
API (dlrconsole/simulator/gateway.py) whose resends the simulator plays, and a thread of this
process does beat's periodic work (dlrconsole/demo/ticker.py): due retries, the missing-receipt
sweep, the product feed, the outbox sweeper. The rules are the shipped ones, first retry after
60 s, plus the demo's own (dlrconsole/demo/world.py): a sign-in or reset code that failed for a
temporary reason is resent after 20 s, then e-mailed through a simulated mail server this
process serves (dlrconsole/simulator/mailbox.py). Only the receipt SLA is shortened
(DEMO_RECEIPT_SLA_SECONDS) so that a missing receipt becomes a decision within the demo rather
than after six hours.

After `--duration` the traffic stops and the console keeps serving, with its periodic jobs,
until Ctrl-C (`--exit-after-traffic` ends the run there instead, for scripts).

AWS SNS is not in the demo: SNS signs its envelopes with a certificate only an SNS host serves.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.models import Count, QuerySet

from dlrconsole.accounts.keys import api_key_create, api_key_revoke
from dlrconsole.accounts.models import UserAPIKey
from dlrconsole.demo.ticker import Ticker, beat_jobs
from dlrconsole.demo.world import (
    RETRY_AFTER_SECONDS,
    ensure_demo_fallback_channel,
    ensure_demo_flows,
    ensure_demo_policy,
)
from dlrconsole.log_filters import RedactSecrets
from dlrconsole.simulator import SendGateway, Simulator, SimulatorConfig, SimulatorError, Target, load_targets
from dlrconsole.simulator.mailbox import HOST as MAILBOX_HOST
from dlrconsole.simulator.mailbox import Mailbox
from dlrconsole.simulator.players.registry import get_player, player_kinds
from receipts.models import Connection, Message, TestMode
from receipts.providers.registry import provider_label
from receipts.services import connection_create
from retries.models import Attempt, ConnectionSender, Decision

DEMO_USER = "demo"
# The demo connection of a provider is "<kind>-demo", except these (kept from earlier demos).
DEMO_SLUGS = {"standard-webhooks": "generic-demo"}
# A generic gateway played as a lying route (every message "delivered" at once, dated before its
# submission): the Routes page's trust score and the pilots show it being caught.
GREY_ROUTE = "grey-route-demo"
HOST = "127.0.0.1"
# A message still pending this long is swept as "no receipt". The simulated providers report
# within ~30 s (late receipts included), so a minute is overdue here; production keeps 6 h.
DEMO_RECEIPT_SLA_SECONDS = 60
TICK_SECONDS = 5.0
# After the last new message, how long resends may still come: the first retry's 60 s backoff
# plus a tick and the resend's receipts.
RESEND_WAIT_SECONDS = 75.0
SENDER_ID = "ACME"
# Where the demo's peers listen (the simulated send API; a product endpoint an admin adds).
DEMO_OUTBOUND_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"


class Command(BaseCommand):
    help = "Run the demo: the console on the embedded SQLite default, with simulated providers feeding it live."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Port on 127.0.0.1 (default 8000).")
        parser.add_argument("--rate", type=float, default=2.0, help="Simulated messages per second (default 2).")
        parser.add_argument(
            "--duration",
            type=float,
            default=3600.0,
            help="Seconds of simulated traffic before stopping (default 3600).",
        )
        parser.add_argument("--password", default="", help="Password for the demo user (default: a new random one).")
        parser.add_argument(
            "--exit-after-traffic",
            action="store_true",
            help="Stop when the traffic is over instead of serving until Ctrl-C (for scripts).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("DATABASE_URL", "REDIS_URL"):
            if os.environ.get(name):
                raise CommandError(
                    f"{name} is set: the demo runs on the embedded default (SQLite under ./var, Celery eager) and "
                    f"creates a superuser. Unset {name}, or run the server and `manage.py simulate` yourself."
                )
        port: int = options["port"]
        ensure_port_free(port)
        base_url = f"http://{HOST}:{port}"

        db_path = settings.DATABASES["default"]["NAME"]
        self.stdout.write(f"Migrating the demo database {db_path} …")
        call_command("migrate", interactive=False, verbosity=0)
        password = options["password"] or secrets.token_urlsafe(12)
        token = ensure_demo_user(password)
        created, private_keys = ensure_demo_connections()
        for slug in created:
            self.stdout.write(f"Created connection {slug}.")
        try:
            if ensure_demo_grey_route():
                self.stdout.write(f"Created connection {GREY_ROUTE} (a route that fakes delivered).")
            slugs = [*(demo_slug(kind) for kind in demo_kinds()), GREY_ROUTE]
            targets = load_targets(slugs, private_keys=private_keys)
            config = SimulatorConfig(
                base_url=base_url, token=token, targets=targets, rate=options["rate"], duration=options["duration"],
                resend_wait=RESEND_WAIT_SECONDS, lying=frozenset({GREY_ROUTE}),
            )  # fmt: skip
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        sla = use_demo_receipt_sla()
        allow_loopback_peers()
        gateway = SendGateway(targets)  # bound now, serving from start(): its URLs are known
        ensure_demo_senders(gateway, targets)
        mailbox = Mailbox()
        ensure_demo_policy(ensure_demo_fallback_channel(host=MAILBOX_HOST, port=mailbox.port))
        ensure_demo_flows(get_user_model().objects.get(username=DEMO_USER), [target.slug for target in targets])
        connections.close_all()  # from here on this process writes only from the ticker's thread
        ticker = Ticker(beat_jobs(), interval=TICK_SECONDS)

        log_path = Path(settings.VAR_DIR) / "demo-server.log"
        restore = _signals_as_interrupt()
        gateway.start()
        mailbox.start()
        server = start_server(port, log_path, sla)
        try:
            wait_until_healthy(server, f"{base_url}/healthz", log_path)
            self._banner(base_url, password, token, log_path, config, gateway, mailbox, sla)
            with log_into(log_path):
                ticker.start()
                report = Simulator(
                    config,
                    emit=self.stdout.write,
                    should_stop=lambda: "the server exited" if server.poll() is not None else None,
                    gateway=gateway,
                ).run()
                self.stdout.write("")
                summary = [*report.summary_lines(), gateway.summary(), mailbox.summary()]
                for line in [*summary, f"Periodic jobs run: {ticker.summary()}", *console_summary()]:
                    self.stdout.write(line)
                if not options["exit_after_traffic"]:
                    self._serve_until_interrupted(server, base_url)
                self._stop_ticker(ticker)
            connections.close_all()
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stdout.write("\nInterrupted.")
        finally:
            self._stop_ticker(ticker)
            gateway.stop()
            mailbox.stop()
            stop_server(server)
            restore()
            self.stdout.write(f"Server stopped. Its log (and this process's): {log_path}")

    def _serve_until_interrupted(self, server: subprocess.Popen[bytes], base_url: str) -> None:
        """The traffic is over; the console is not: pages, the API, retries, fallbacks and the
        feed go on until Ctrl-C (README: `make demo` runs until Ctrl-C)."""
        self.stdout.write("")
        self.stdout.write(
            f"The simulated traffic is over. The console keeps serving at {base_url}/ (retries, fallbacks and "
            "the feed go on; resends now get no receipts). Ctrl-C stops it."
        )
        while server.poll() is None:
            time.sleep(0.5)
        self.stdout.write(f"The server exited with code {server.returncode}.")

    def _stop_ticker(self, ticker: Ticker) -> None:
        if not ticker.stop():
            self.stdout.write("The periodic jobs' thread is still busy; leaving it to end with the process.")

    def _banner(
        self,
        base_url: str,
        password: str,
        token: str,
        log_path: Path,
        config: SimulatorConfig,
        gateway: SendGateway,
        mailbox: Mailbox,
        sla: int,
    ) -> None:
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("DLR Console demo is running") + " (embedded SQLite, Celery tasks run in-process)")
        w("")
        w(f"  Console    {base_url}/")
        w(f"  Admin      {base_url}/admin/   messages live at {base_url}/admin/receipts/message/")
        w(f"  Login      {DEMO_USER} / {password}   (a new password each run unless --password)")
        w(f"  API docs   {base_url}/api/v1/docs/ (signed in)")
        w(f'  API key    {token}   curl -H "Authorization: Api-Key {token}" {base_url}/api/v1/messages/')
        for target in config.targets:
            w(f"  Webhook    {config.webhook_url(target)}   ({target.provider})")
        w(f"  Send API   {gateway.url_for('<connection>')}   (simulated; the console's retries resend through it)")
        w(f"  Mail       smtp://{MAILBOX_HOST}:{mailbox.port}   (simulated; the e-mail fallback delivers into it)")
        w(f"  Log        {log_path}   (the server's and the periodic jobs')")
        w("")
        w(
            f"Simulated providers post signed receipts for {config.rate:g} new messages/s "
            f"for up to {config.duration:g} s; the console keeps serving after that. Ctrl-C stops everything."
        )
        w(
            f"Beat's periodic jobs run here every {TICK_SECONDS:g} s: retries are due 60 s after a temporary "
            f"failure (the shipped rules), a message without a final receipt after {sla} s becomes a decision."
        )
        w(
            f"Sign-in and reset codes that fail for a temporary reason are resent after {RETRY_AFTER_SECONDS} s, "
            "then e-mailed if the resend fails too (the demo's rule, before the shipped ones)."
        )
        w(f"Decisions and attempts: {base_url}/admin/retries/decision/ and {base_url}/admin/retries/attempt/")
        w(
            f"The simulated product reports the codes entered as conversions; {GREY_ROUTE} fakes delivered, "
            f"and its trust score on {base_url}/console/routes/ shows it."
        )
        w("")


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise CommandError(f"{HOST}:{port} is already in use (another demo?); pass --port") from None


def ensure_demo_user(password: str) -> str:
    """The demo superuser with `password` (reset every run, so it is always known) and a new API
    key (keys are stored hashed: the previous runs' are revoked, as their passwords are replaced)."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=DEMO_USER)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    for previous in UserAPIKey.objects.filter(user=user, name=DEMO_USER, revoked=False):
        api_key_revoke(prefix=previous.prefix)
    return api_key_create(user=user, name=DEMO_USER)[1]


def demo_kinds() -> list[str]:
    """The providers the simulator can play in the demo (all those with a player, but AWS SNS)."""
    return [kind for kind in player_kinds() if not get_player(kind).not_in_demo]


def demo_slug(kind: str) -> str:
    return DEMO_SLUGS.get(kind, f"{kind}-demo")


def ensure_demo_connections() -> tuple[list[str], dict[str, str]]:
    """Create the demo connections that are missing, with generated secrets.

    Returns the slugs created and, per provider that signs with a private key whose public half
    the connection holds (Telnyx), that private key: a fresh pair every run, kept in memory only.
    """
    created: list[str] = []
    private_keys: dict[str, str] = {}
    for kind in demo_kinds():
        slug = demo_slug(kind)
        secret, key = get_player(kind).demo_keys()
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            name = f"{provider_label(kind)} (simulated)"
            connection_create(slug=slug, provider=kind, name=name, secrets=[secret])
            created.append(slug)
        elif key != secret:
            connection.secrets = [secret]
            connection.save(update_fields=["secrets"])
        if key != secret:
            private_keys[kind] = key
    return created, private_keys


def ensure_demo_grey_route() -> bool:
    """The demo's lying route, created when missing; whether it was."""
    if Connection.objects.filter(slug=GREY_ROUTE).exists():
        return False
    kind = "standard-webhooks"
    secret, _key = get_player(kind).demo_keys()
    connection_create(slug=GREY_ROUTE, provider=kind, name="Grey route (simulated, fakes delivered)", secrets=[secret])
    return True


def use_demo_receipt_sla() -> int:
    """The receipt SLA of this run: DLR_RECEIPT_SLA_SECONDS if set, else the demo's minute. Set
    on this process's settings, where the sweep runs (the ticker), and given to the server."""
    if not os.environ.get("DLR_RECEIPT_SLA_SECONDS"):
        settings.DLR_RECEIPT_SLA_SECONDS = DEMO_RECEIPT_SLA_SECONDS
    return int(settings.DLR_RECEIPT_SLA_SECONDS)


def allow_loopback_peers() -> None:
    """The demo's send API and product are local servers: outbound calls may reach loopback in
    this process (the ticker's thread) and in the server (eager tasks; start_server passes it
    on), and nowhere else private."""
    networks = [ipaddress.ip_network(n) for n in DEMO_OUTBOUND_ALLOWED_NETWORKS.split(",")]
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = [*settings.DLR_OUTBOUND_ALLOWED_NETWORKS, *networks]


def ensure_demo_senders(gateway: SendGateway, targets: list[Target]) -> None:
    """Each demo connection resends through the simulated send API (its port changes each run)."""
    for target in targets:
        connection = Connection.objects.get(slug=target.slug)
        if connection.test_mode != TestMode.SIMULATOR:
            # Pilots and fallback tests may send through the demo's routes: no phone is behind them.
            connection.test_mode = TestMode.SIMULATOR
            connection.save(update_fields=["test_mode"])
        ConnectionSender.objects.update_or_create(
            connection=connection,
            defaults={
                "kind": "generic-http",
                "config": {"url": gateway.url_for(target.slug)},
                "sender_id": SENDER_ID,
                "enabled": True,
            },
        )


def console_summary() -> list[str]:
    """What the console made of the run, read back from its database."""
    messages = Message.objects.count()
    resends = Message.objects.filter(chain_root__isnull=False).count()
    decisions = _counts(Decision.objects.all(), "action")
    attempts = _counts(Attempt.objects.all(), "outcome")
    return [
        f"In the console: {messages} messages ({resends} of them resends)",
        f"  decisions by action: {decisions}",
        f"  attempts by outcome: {attempts}",
    ]


def _counts(queryset: QuerySet[Any], field: str) -> str:
    rows = queryset.values_list(field).annotate(n=Count("id")).order_by(field)
    return ", ".join(f"{value} {n}" for value, n in rows) or "none"


@contextmanager
def log_into(path: Path) -> Iterator[None]:
    """This process logs into `path` for the block (next to the server's lines), not over the
    simulator's lines on the terminal: the loggers with a handler of their own (settings.LOGGING)
    have their terminal handler swapped for the file."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets())
    swapped: list[tuple[logging.Logger, logging.Handler]] = []
    for logger in (logging.getLogger(), logging.getLogger("django"), logging.getLogger("django.server")):
        streams: list[logging.Handler] = [h for h in logger.handlers if type(h) is logging.StreamHandler]
        for stream in streams:
            logger.removeHandler(stream)
            swapped.append((logger, stream))
        if any(swapped_logger is logger for swapped_logger, _ in swapped):
            logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, stream in swapped:
            logger.removeHandler(handler)
            logger.addHandler(stream)
        handler.close()


def start_server(port: int, log_path: Path, receipt_sla: int) -> subprocess.Popen[bytes]:
    manage = Path(settings.BASE_DIR) / "manage.py"
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, str(manage), "runserver", f"{HOST}:{port}", "--noreload"],
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "DLR_RECEIPT_SLA_SECONDS": str(receipt_sla),
                "DLR_OUTBOUND_ALLOWED_NETWORKS": ",".join(str(n) for n in settings.DLR_OUTBOUND_ALLOWED_NETWORKS),
            },
        )


def wait_until_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"the server exited with code {server.returncode}:\n{_tail(log_path)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise CommandError(f"the server did not answer {url} within {timeout:.0f} s:\n{_tail(log_path)}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _signals_as_interrupt() -> Callable[[], None]:
    """Let Ctrl-C and `kill` stop the demo alike, so the server subprocess is stopped too.

    SIGINT is set explicitly: a process started in the background inherits it ignored.
    Returns what puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
