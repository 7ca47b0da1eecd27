"""Settings as a fresh process reads them from a given environment (settings are read once,
at import: a test cannot change the environment of the process it runs in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The production-like environment of the suite's own processes, minus what each probe decides.
PROBED = {"DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS"}
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "probe-" + "s" * 50,
    "DLR_SECRETS_KEYS": "cHJvYmUtb25seS1zZWNyZXRzLWtleS0wMTIzNDU2Nzg=",
    "ALLOWED_HOSTS": "dlr.example.com",
    "DLR_TRUSTED_PROXIES": "10.0.0.0/8",
    "BEHIND_TLS_PROXY": "1",
}


def run_with(env: dict[str, str], *args: str, drop: set[str] = frozenset()) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in PROBED | set(drop)}
    return subprocess.run(
        [sys.executable, *args],
        env={**base, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def settings_with(env: dict[str, str], expression: str, *, drop: set[str] = frozenset()) -> str:
    """Evaluate `expression` on the settings (as `s`) in a fresh interpreter with `env`."""
    result = run_with(env, "-c", f"from django.conf import settings as s; print({expression})", drop=drop)
    if result.returncode:
        raise AssertionError(result.stderr[-2000:])
    return result.stdout.strip()


def refusal_with(env: dict[str, str], *, drop: set[str] = frozenset()) -> str:
    """The configuration error a fresh process stops with, given `env`."""
    result = run_with(env, "-c", "from django.conf import settings; settings.DEBUG", drop=drop)
    assert result.returncode != 0, "the settings were accepted"
    return result.stderr.strip().splitlines()[-1]
