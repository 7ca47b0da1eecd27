from __future__ import annotations

import pytest

from retries.senders.base import classify_http
from retries.senders.registry import SENDERS, get_sender, sender_choices


def test_every_kind_is_listed_with_a_label() -> None:
    assert {kind for kind, _ in sender_choices()} == {
        "twilio",
        "vonage",
        "infobip",
        "generic-http",
        "email",
        "generic-webhook",
    }
    assert all(cls.label for cls in SENDERS.values())


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown sender kind 'smoke'"):
        get_sender("smoke", {})


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("twilio", {"account_sid": "AC1"}, "auth_token"),
        ("vonage", {"api_key": "k"}, "api_secret"),
        ("infobip", {"api_key": "k"}, "base_url"),
        ("generic-http", {"url": "ftp://x"}, "url must start with http"),
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "read_timeout": "soon"}, "read_timeout"),
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "connect_timeout": "600"}, "at most 20 seconds"),
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "read_timeout": "0"}, "positive"),
        ("generic-http", {"url": "http://10.0.0.1/send"}, "url is refused: 10.0.0.1 is a private address"),
    ],
)
def test_invalid_config_names_the_setting(kind: str, config: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_sender(kind, config)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, None), (201, None), (429, False), (500, False), (503, False), (408, False)]
    + [(code, True) for code in (400, 401, 403, 404, 422, 302)],
)
def test_classify_http(status: int, expected: bool | None) -> None:
    assert classify_http(status, None) is expected
