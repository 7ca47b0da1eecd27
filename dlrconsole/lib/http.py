"""Who is calling: the caller's address behind the reverse proxies the deployment trusts."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind proxies listed in DLR_TRUSTED_PROXIES, the right-most
    X-Forwarded-For entry that is not one of them (entries left of it can be forged)."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = settings.DLR_TRUSTED_PROXIES
    if not trusted or not _in_networks(address, trusted):
        return address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _in_networks(hop, trusted):
            return hop
    return address


def _in_networks(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
