"""Login throttling (django-axes): five failures for one username from one address pause
that pair's sign-in for 15 minutes, even with the right password."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dlrconsole import roles
from tests.factories import api_client_for, user_in_role

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def agent():
    return user_in_role(roles.SUPPORT, "agent", password=PASSWORD)


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client: Client, times: int, username: str = "agent", address: str = "192.0.2.10") -> None:
    for number in range(1, times + 1):
        # The failure that reaches the limit already answers with the lockout page.
        assert sign_in(client, username, "wrong", address).status_code == (429 if number >= 5 else 200)


def test_the_sixth_attempt_is_refused_even_with_the_right_password(client: Client, agent):
    fail(client, 5)
    response = sign_in(client, "agent", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Sign-in paused" in page
    assert "paused for 15 minutes" in page
    assert response["Retry-After"] == "900"


def test_the_fifth_failure_already_says_sign_in_is_paused(client: Client, agent):
    fail(client, 4)
    assert sign_in(client, "agent", "wrong").status_code == 429


def test_four_failures_do_not_lock(client: Client, agent):
    fail(client, 4)
    assert sign_in(client, "agent", PASSWORD).status_code == 302


def test_another_user_is_not_locked(client: Client, agent):
    user_in_role(roles.VIEWER, "bi", password=PASSWORD)
    fail(client, 5)
    assert sign_in(client, "bi", PASSWORD).status_code == 302


def test_the_same_user_from_another_address_is_not_locked(client: Client, agent):
    fail(client, 5)
    assert sign_in(client, "agent", PASSWORD, address="198.51.100.7").status_code == 302


def test_a_success_resets_the_count(client: Client, agent):
    fail(client, 4)
    assert sign_in(client, "agent", PASSWORD).status_code == 302
    client.post("/logout/")
    fail(client, 4)
    assert sign_in(client, "agent", PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(client: Client, agent, settings):
    from datetime import timedelta

    fail(client, 5)
    settings.AXES_COOLOFF_TIME = timedelta(seconds=0)
    assert sign_in(client, "agent", PASSWORD).status_code == 302


def test_the_admin_sign_in_is_throttled_too(client: Client, agent):
    fail(client, 5)
    response = client.post("/admin/login/", {"username": "agent", "password": PASSWORD}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 429


def test_api_keys_keep_working_for_a_locked_out_user(client: Client):
    product = user_in_role(roles.PRODUCT, "product", password=PASSWORD)
    api = api_client_for(product)
    fail(client, 5, username="product")
    assert sign_in(client, "product", PASSWORD).status_code == 429
    assert api.get("/api/v1/messages/", REMOTE_ADDR="192.0.2.10").status_code == 200


def test_a_wrong_api_key_is_a_401_and_locks_nobody(agent):
    anonymous = APIClient()
    anonymous.credentials(HTTP_AUTHORIZATION="Api-Key not-a-real.key")
    for _ in range(6):
        assert anonymous.get("/api/v1/messages/").status_code == 401
    assert sign_in(Client(), "agent", PASSWORD).status_code == 302


def test_an_admin_unlocks_a_user_early_in_the_admin(client: Client, agent):
    from axes.models import AccessAttempt

    fail(client, 5)
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    attempt = AccessAttempt.objects.get(username="agent")
    assert admin.get("/admin/axes/accessattempt/").status_code == 200
    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert sign_in(client, "agent", PASSWORD).status_code == 302


# Behind the documented reverse proxy: every request reaches Django from the proxy's address,
# the caller's own address is the one the proxy appends to X-Forwarded-For.
PROXY = "10.0.0.2"
ATTACKER, AGENT_AT_HOME = "198.51.100.66", "203.0.113.7"


@pytest.fixture
def behind_proxy(settings):
    import ipaddress

    settings.DLR_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]


def via_proxy(client: Client, username: str, password: str, forwarded_for: str, remote: str = PROXY):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded_for
    )


def test_behind_the_proxy_someone_elses_failures_do_not_lock_a_user_out(client: Client, agent, behind_proxy):
    for _ in range(6):
        via_proxy(client, "agent", "wrong", forwarded_for=ATTACKER)
    assert via_proxy(client, "agent", "wrong", forwarded_for=ATTACKER).status_code == 429
    assert via_proxy(Client(), "agent", PASSWORD, forwarded_for=AGENT_AT_HOME).status_code == 302


def test_a_forwarded_for_forged_in_front_of_the_proxy_counts_against_the_real_address(
    client: Client, agent, behind_proxy
):
    # The proxy appends the address it saw; whatever the caller wrote before it is not trusted.
    for _ in range(5):
        via_proxy(client, "agent", "wrong", forwarded_for=f"{AGENT_AT_HOME}, {ATTACKER}")
    assert via_proxy(Client(), "agent", PASSWORD, forwarded_for=AGENT_AT_HOME).status_code == 302
    assert via_proxy(Client(), "agent", PASSWORD, forwarded_for=ATTACKER).status_code == 429


def test_a_forwarded_for_from_outside_the_trusted_proxies_changes_nothing(client: Client, agent, behind_proxy):
    # Sent straight to the server, not through the proxy: the header is the caller's own words.
    for _ in range(5):
        via_proxy(client, "agent", "wrong", forwarded_for=AGENT_AT_HOME, remote=ATTACKER)
    assert via_proxy(Client(), "agent", PASSWORD, forwarded_for=AGENT_AT_HOME).status_code == 302
    assert sign_in(Client(), "agent", PASSWORD, address=ATTACKER).status_code == 429


def test_forwarded_requests_without_trusted_proxies_are_warned_about_once(client: Client, agent, caplog, monkeypatch):
    from dlrconsole.lib import http

    monkeypatch.setattr(http, "_warned_untrusted_forwarding", False)
    for _ in range(2):
        via_proxy(client, "agent", "wrong", forwarded_for=AGENT_AT_HOME)
    warnings = [r for r in caplog.records if "DLR_TRUSTED_PROXIES is empty" in r.getMessage()]
    assert len(warnings) == 1
