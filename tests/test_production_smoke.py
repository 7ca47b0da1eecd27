"""The production set-up end to end: the Procfile's web, worker and beat started by honcho, as a
platform or an operator would, on production's settings module with DEBUG off, behind a
(pretended) TLS proxy, against the test database and Redis on loopback. A signed receipt
posted to gunicorn becomes a decision in the worker and a signed notification to a real local
product endpoint; /readyz sees the worker and beat; static files come from whitenoise."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from dlrconsole.lib import standard_webhooks
from retries.feed.models import ProductEndpoint
from retries.models import Decision
from tests.factories import GENERIC_SECRET, MessageFactory
from tests.product_endpoint import ProductEndpointServer
from tests.webhooks import generic_body, generic_headers
from tests.worker import database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
ABSENT_SUBSCRIBER = "27"  # GSM MAP: temporary, so the shipped rules schedule a retry and tell the product
REQUEST_ID = uuid.uuid4().hex


@dataclass
class Deployment:
    base_url: str
    lines: list[str] = field(default_factory=list)

    def get(self, path: str) -> requests.Response:
        return self.call("GET", path)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        # As the TLS proxy in front would say: the production settings redirect plain HTTP.
        headers = {"X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.base_url + path, headers=headers, timeout=10, allow_redirects=False, **kwargs
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _production_environment(static_root: str, port: int, queue: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "DLR_TEST_"))},
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings",
        "DEBUG": "0",
        "DATABASE_URL": database_url(),  # the test database pytest-django made
        "REDIS_URL": os.environ["REDIS_URL"],
        "ALLOWED_HOSTS": "127.0.0.1",
        "BEHIND_TLS_PROXY": "1",
        "DLR_TRUSTED_PROXIES": "127.0.0.1/32",
        "SECURE_SSL_REDIRECT": "1",
        "SESSION_COOKIE_SECURE": "1",
        "CSRF_COOKIE_SECURE": "1",
        # The product endpoint is on loopback, which production refuses unless told.
        "DLR_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        "STATIC_ROOT": static_root,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "DLR_WORKER_CONCURRENCY": "1",
        # Queues of this run's own (the default one and its .decisions, .sends, .feed and .alerts, which
        # a worker without DLR_WORKER_QUEUES consumes): nothing another test left is consumed.
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def procfile_started(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`honcho start` in a process group of its own; TERM at the end, then KILL what is left."""
    process = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "--procfile", "Procfile", "--app-root", str(ROOT),
         "--env", os.devnull, "--no-colour"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def deployment(default_rules: None) -> Iterator[Deployment]:
    with tempfile.TemporaryDirectory(prefix="static-") as static_root:
        port = _free_port()
        env = _production_environment(static_root, port, f"dlrconsole-smoke-{uuid.uuid4().hex[:8]}")
        collected = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert collected.returncode == 0, collected.stderr[-2000:]
        with procfile_started(env) as process:
            running = Deployment(base_url=f"http://127.0.0.1:{port}")

            def read() -> None:
                assert process.stdout is not None
                for line in process.stdout:
                    running.lines.append(line)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            wait_until(lambda: process.poll() is not None or _answers(running), timeout=60)
            assert _answers(running), "".join(running.lines[-60:])
            yield running
        reader.join(timeout=10)


def _answers(running: Deployment) -> bool:
    with suppress(requests.RequestException):
        return running.get("/healthz").status_code == 200
    return False


def test_the_procfile_runs_a_receipt_through_to_a_decision_and_a_product_notification(
    deployment: Deployment, product: ProductEndpointServer
):
    ProductEndpoint.objects.create(name="product", url=product.url, secret=GENERIC_SECRET)
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "undelivered", error_code=ABSENT_SUBSCRIBER)
    headers = {**generic_headers(message.connection, body), "X-Request-ID": REQUEST_ID}

    reply = deployment.call("POST", f"/hooks/{message.connection.slug}/", data=body, headers=headers)

    assert reply.status_code == 200, reply.text
    assert reply.headers["X-Request-ID"] == REQUEST_ID
    assert wait_until(lambda: Decision.objects.filter(message=message).exists(), timeout=60), _tail(deployment)
    assert wait_until(lambda: len(product.received) >= 1, timeout=60), _tail(deployment)
    told = product.received[0]
    assert told.event["type"] == "message.retry_scheduled"
    assert told.event["data"]["message_id"] == message.pk
    assert standard_webhooks.signature_matches(
        secret=GENERIC_SECRET,
        msg_id=told.headers["webhook-id"],
        timestamp=int(told.headers["webhook-timestamp"]),
        body=told.body,
        header=told.headers["webhook-signature"],
    )
    # The worker's line about the decision carries the webhook's request id.
    assert wait_until(lambda: _decision_line(deployment, message.pk) is not None, timeout=10), _tail(deployment)
    assert _decision_line(deployment, message.pk)["request_id"] == REQUEST_ID

    # Ready: the database, Redis, the worker's heartbeat and beat's saved runs.
    assert wait_until(lambda: deployment.get("/readyz").status_code == 200, timeout=60), deployment.get("/readyz").text
    assert deployment.get("/readyz").json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "worker": "ok", "beat": "ok"},
    }

    # Static files from the web process, compressed, under their hashed names.
    page = deployment.get("/login/").text
    stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, page[:2000]
    served = deployment.call("GET", stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
    assert served.status_code == 200
    assert served.headers["Content-Encoding"] == "gzip"
    assert "max-age=315360000" in served.headers["Cache-Control"]


def _decision_line(deployment: Deployment, message_id: int) -> dict | None:
    for line in list(deployment.lines):
        _, _, payload = line.partition("| ")
        if not payload.startswith("{"):
            continue
        with suppress(ValueError):
            record = json.loads(payload)
            if record.get("logger") == "retries.decisions" and record["message"].startswith(f"message {message_id} "):
                return record
    return None


def _tail(deployment: Deployment) -> str:
    return "".join(deployment.lines[-80:])
