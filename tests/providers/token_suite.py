"""One security suite for the providers that cannot sign (TokenAuthenticated): subclass it.

The connection's secret is a token the provider presents, as we configured it on its side: in
the URL path, an `X-DLR-Token` header, a Bearer token, or Basic credentials `user:password`. A
subclass (named `Test…`) sets `adapter` and `make_request`, a request carrying a real receipt
and no token; the suite pins, at the adapter level:

- the request is refused without a token, with a wrong one, or when the connection has none;
- the token is accepted wherever the provider can put it, and the request then parses;
- rotation: either of two configured tokens is accepted;
- the refusal never echoes a token, and no header carrying one is kept with the receipt.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import ClassVar

import pytest

from receipts.providers.base import ProviderAdapter, SignatureError, WebhookRequest

TOKEN = "tok-current-4f1c9a7e2b6d8053"
OTHER_TOKEN = "tok-previous-9e03b5d7c1a2f468"
BASIC_SECRET = "dlr-console:Zq8vN2r5Tg7wK1pX"


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def with_token(request: WebhookRequest, *, path: str = "", **headers: str) -> WebhookRequest:
    """`request` presenting a token in the path and/or in the given headers (lower-cased)."""
    return replace(request, path_token=path, headers={**request.headers, **headers})


class TokenProviderSecuritySuite:
    """Refusals every token-authenticated provider must make. Not collected itself: subclass it."""

    adapter: ClassVar[ProviderAdapter]

    def make_request(self) -> WebhookRequest:
        """A request carrying a real receipt of this provider and no token."""
        raise NotImplementedError

    @pytest.mark.parametrize(
        ("where", "secret"),
        [
            ({"path": TOKEN}, TOKEN),
            ({"x-dlr-token": TOKEN}, TOKEN),
            ({"authorization": f"Bearer {TOKEN}"}, TOKEN),
            ({"authorization": basic(BASIC_SECRET)}, BASIC_SECRET),
        ],
        ids=["path", "x-dlr-token", "bearer", "basic"],
    )
    def test_token_is_accepted_wherever_the_provider_puts_it_and_the_request_parses(
        self, where: dict[str, str], secret: str
    ) -> None:
        request = with_token(self.make_request(), **where)
        self.adapter.verify(request, [secret])
        assert self.adapter.parse(request)

    def test_request_without_token_is_refused(self) -> None:
        with pytest.raises(SignatureError, match="missing token"):
            self.adapter.verify(self.make_request(), [TOKEN])

    @pytest.mark.parametrize(
        "where",
        [
            {"path": OTHER_TOKEN},
            {"x-dlr-token": OTHER_TOKEN},
            {"authorization": f"Bearer {OTHER_TOKEN}"},
            {"authorization": basic(f"dlr-console:{OTHER_TOKEN}")},
            {"path": TOKEN[:-1]},
        ],
        ids=["path", "x-dlr-token", "bearer", "basic", "prefix"],
    )
    def test_wrong_token_is_refused(self, where: dict[str, str]) -> None:
        with pytest.raises(SignatureError, match="does not match"):
            self.adapter.verify(with_token(self.make_request(), **where), [TOKEN])

    def test_connection_without_token_refuses_even_a_presented_one(self) -> None:
        with pytest.raises(SignatureError):
            self.adapter.verify(with_token(self.make_request(), path=TOKEN), [])

    @pytest.mark.parametrize("presented", [TOKEN, OTHER_TOKEN])
    def test_rotated_tokens_are_both_accepted(self, presented: str) -> None:
        self.adapter.verify(with_token(self.make_request(), path=presented), [OTHER_TOKEN, TOKEN])

    def test_refusal_does_not_reveal_a_token(self) -> None:
        with pytest.raises(SignatureError) as refused:
            self.adapter.verify(with_token(self.make_request(), path=OTHER_TOKEN), [TOKEN])
        assert TOKEN not in str(refused.value)
        assert OTHER_TOKEN not in str(refused.value)

    def test_headers_carrying_a_token_are_not_kept_with_the_receipt(self) -> None:
        request = with_token(self.make_request(), **{"x-dlr-token": TOKEN, "authorization": f"Bearer {TOKEN}"})
        kept = self.adapter.headers_to_keep(request)
        assert "x-dlr-token" not in kept
        assert "authorization" not in kept
