"""How the API schema describes API keys (a drf-spectacular extension, loaded by the app)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "dlrconsole.accounts.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, a key from `create_api_key` or the admin "
            "(`Token <key>`, the header of keys made before they were hashed, is accepted too).",
        }
