"""API authentication by key: the caller becomes the key's user, so the API's permission
checks (dlrconsole/api/permissions.py) read the same `request.user` as for a session.

`Authorization: Api-Key <key>` is the header, as djangorestframework-api-key names it;
`Authorization: Token <key>` is what clients sent before keys were hashed and still works,
with old tokens and new keys alike.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from dlrconsole.accounts.keys import api_key_find, api_key_used

KEYWORD = "Api-Key"
ACCEPTED_KEYWORDS = (b"api-key", b"token")


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() not in ACCEPTED_KEYWORDS:
            return None  # not ours: another authentication may read it
        if len(words) != 2:
            raise AuthenticationFailed(f"Give the key as `Authorization: {KEYWORD} <key>`.")
        try:
            key = words[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API key.") from None
        api_key = api_key_find(key)
        # One answer for unknown and revoked keys: which keys existed is nobody's business.
        if api_key is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        if api_key.has_expired:
            raise AuthenticationFailed("This API key has expired.")
        if not api_key.user.is_active:
            raise AuthenticationFailed("This API key's user is deactivated.")
        api_key_used(api_key)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
