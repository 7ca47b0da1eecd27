"""Production's processes for end-to-end tests: gunicorn serving the project and a PgBouncer in
front of the test's PostgreSQL, each on a free loopback port, stopped on exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import requests
from django.conf import settings

from tests.worker import database_url, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn_server(*, env: dict[str, str] | None = None, workers: int = 2) -> Iterator[str]:
    """gunicorn serving the project against the test database (or `env`'s); yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings_test",
        "DATABASE_URL": database_url(),
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "gunicorn", "dlrconsole.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--timeout", "60",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=environment, cwd=settings.BASE_DIR, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _answers(url), timeout=60, interval=0.2):
            raise RuntimeError("gunicorn did not start")
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/accounts/login/", timeout=2).status_code < 500
    except requests.RequestException:
        return False


class PgBouncer:
    """Debian's pgbouncer in transaction pooling mode, in front of the test's PostgreSQL."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        db = settings.DATABASES["default"]
        self.user = db["USER"] or "postgres"
        config = directory / "pgbouncer.ini"
        (directory / "users.txt").write_text(f'"{self.user}" ""\n')
        config.write_text(
            "[databases]\n"
            f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'users.txt'}\nadmin_users = {self.user}\n"
            "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
            f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
            # The test settings pass synchronous_commit=off as a startup option, which PgBouncer
            # cannot forward: it is dropped here (the pooled sessions keep the server default).
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        self.config = config

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def transactions(self, database: str) -> int:
        """Transactions PgBouncer has pooled for `database`, from its admin console."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as admin:
            rows = admin.execute("SHOW STATS").fetchall()
            columns = [column.name for column in admin.execute("SHOW STATS").description or []]
        return sum(int(row[columns.index("total_xact_count")]) for row in rows if row[0] == database)


@contextmanager
def pgbouncer() -> Iterator[PgBouncer]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        raise RuntimeError("pgbouncer is not installed: .ci/run installs Debian's package (apt-get install pgbouncer)")
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as name:
        directory = Path(name)
        bouncer = PgBouncer(directory)
        command = [binary, str(bouncer.config)]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root; it drops to this user instead
            directory.chmod(0o777)
            command[1:1] = ["-u", "postgres"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            if not wait_until(lambda: _accepts(bouncer.port), timeout=20, interval=0.1):
                log = directory / "pgbouncer.log"
                raise RuntimeError("pgbouncer did not start:\n" + (log.read_text() if log.exists() else ""))
            yield bouncer
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
