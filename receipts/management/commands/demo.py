"""`manage.py demo` (what `make demo` runs): the console on the embedded default, fed live.

Migrates the SQLite database under ./var, makes sure the demo user, connections and API token
exist (one connection per provider the simulator can play in a demo), starts `runserver` on
127.0.0.1 in a subprocess and, once it answers /healthz, plays the simulated providers against it
through the real API and webhook path until Ctrl-C.

AWS SNS is not in the demo: SNS signs its envelopes with a certificate only an SNS host serves.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from rest_framework.authtoken.models import Token

from receipts.models import Connection
from receipts.providers import PROVIDER_LABELS
from receipts.services import connection_create
from receipts.simulation import Simulator, SimulatorConfig, SimulatorError, load_targets
from receipts.simulation.players import get_player, player_kinds

DEMO_USER = "demo"
# The demo connection of a provider is "<kind>-demo", except these (kept from earlier demos).
DEMO_SLUGS = {"standard-webhooks": "generic-demo"}
HOST = "127.0.0.1"


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
            targets = load_targets([demo_slug(kind) for kind in demo_kinds()], private_keys=private_keys)
            config = SimulatorConfig(
                base_url=base_url, token=token, targets=targets, rate=options["rate"], duration=options["duration"]
            )
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        connections.close_all()  # the server process writes; this one only posts over HTTP from here on

        log_path = Path(settings.VAR_DIR) / "demo-server.log"
        restore = _signals_as_interrupt()
        server = start_server(port, log_path)
        try:
            wait_until_healthy(server, f"{base_url}/healthz", log_path)
            self._banner(base_url, password, token, log_path, config)
            report = Simulator(
                config,
                emit=self.stdout.write,
                should_stop=lambda: "the server exited" if server.poll() is not None else None,
            ).run()
            self.stdout.write("")
            for line in report.summary_lines():
                self.stdout.write(line)
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stdout.write("\nInterrupted.")
        finally:
            stop_server(server)
            restore()
            self.stdout.write(f"Server stopped. Its log: {log_path}")

    def _banner(self, base_url: str, password: str, token: str, log_path: Path, config: SimulatorConfig) -> None:
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("DLR Console demo is running") + " (embedded SQLite, Celery tasks run in-process)")
        w("")
        w(f"  Console    {base_url}/")
        w(f"  Admin      {base_url}/admin/   messages live at {base_url}/admin/receipts/message/")
        w(f"  Login      {DEMO_USER} / {password}   (a new password each run unless --password)")
        w(f"  API docs   {base_url}/api/v1/docs/")
        w(f'  API token  {token}   curl -H "Authorization: Token {token}" {base_url}/api/v1/messages/')
        for target in config.targets:
            w(f"  Webhook    {config.webhook_url(target)}   ({target.provider})")
        w(f"  Server log {log_path}")
        w("")
        w(
            f"Simulated providers post signed receipts for {config.rate:g} new messages/s "
            f"for up to {config.duration:g} s. Ctrl-C stops everything."
        )
        w("")


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise CommandError(f"{HOST}:{port} is already in use (another demo?); pass --port") from None


def ensure_demo_user(password: str) -> str:
    """The demo superuser with `password` (reset every run, so it is always known); its API token."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=DEMO_USER)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


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
            name = f"{PROVIDER_LABELS[kind]} (simulated)"
            connection_create(slug=slug, provider=kind, name=name, secrets=[secret])
            created.append(slug)
        elif key != secret:
            connection.secrets = [secret]
            connection.save(update_fields=["secrets"])
        if key != secret:
            private_keys[kind] = key
    return created, private_keys


def start_server(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    manage = Path(settings.BASE_DIR) / "manage.py"
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, str(manage), "runserver", f"{HOST}:{port}", "--noreload"],
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
