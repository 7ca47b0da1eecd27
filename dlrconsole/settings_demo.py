"""Settings of the embedded demo (`make demo`): the project's settings with DEBUG on, on
loopback over plain HTTP, with a secret key and a secrets-encryption key of its own.

The keys are made at the first run and kept under var/ (readable by their owner only), so that
sessions and stored connection secrets survive a restart; they are never a value published in
this repository, which any demo left running on a reachable machine would otherwise share.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

VAR_DIR = Path(os.environ.get("DLR_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))


def _kept_key(name: str, make: str) -> str:
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make)
    return path.read_text().strip()


os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", _kept_key("demo-secret-key", secrets.token_urlsafe(50)))
os.environ.setdefault("DLR_SECRETS_KEYS", _kept_key("demo-secrets-key", Fernet.generate_key().decode()))

from dlrconsole.settings import *  # noqa: E402, F403
