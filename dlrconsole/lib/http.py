"""Who is calling: the caller's address behind the reverse proxies the deployment trusts, and
whether the path is a provider's webhook."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# Where providers post their receipts (dlrconsole/urls.py): a path machines call, which the
# pages' middleware and the webhooks' own handler (dlrconsole/webhook_lane.py) tell apart by it.
WEBHOOK_PREFIX = "/hooks/"

_warned_untrusted_forwarding = False


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind proxies listed in DLR_TRUSTED_PROXIES, the right-most
    X-Forwarded-For entry that is not one of them (entries left of it can be forged)."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = settings.DLR_TRUSTED_PROXIES
    if not trusted:
        if "HTTP_X_FORWARDED_FOR" in request.META:
            _warn_untrusted_forwarding()
        return address
    if not _in_networks(address, trusted):
        return address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _in_networks(hop, trusted):
            return hop
    return address


def _warn_untrusted_forwarding() -> None:
    # Once per process: behind a proxy every request says so. Then every caller has the
    # proxy's address, and sign-in lockouts keyed on it would lock accounts for everyone.
    global _warned_untrusted_forwarding
    if not _warned_untrusted_forwarding:
        _warned_untrusted_forwarding = True
        logger.warning(
            "requests carry X-Forwarded-For but DLR_TRUSTED_PROXIES is empty: if this console is behind a "
            "reverse proxy, set DLR_TRUSTED_PROXIES to its address, or all callers share the proxy's address"
        )


def _in_networks(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
