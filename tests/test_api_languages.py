"""The API's texts for people follow Accept-Language (fr, es, en; fr-CA -> fr; anything else:
English); codes never change, and the schema documents the header. Providers' webhooks are
answered in no particular language."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation
from rest_framework.test import APIClient

from dlrconsole import roles
from dlrconsole.accounts.models import Profile
from receipts.models import Message
from retries.feed.services import feed_message_data
from tests.factories import MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


@pytest.fixture
def opted_out() -> Message:
    return MessageFactory(status="undelivered", error_code="21610", reason="opted_out", error_class="permanent",
                          catalog_class="permanent", class_source="catalog")  # fmt: skip


def _detail(api: APIClient, message: Message, language: str | None) -> tuple[dict, str]:
    headers = {"Accept-Language": language} if language else {}
    response = api.get(f"/api/v1/messages/{message.pk}/", headers=headers)
    assert response.status_code == 200
    return response.json(), response["Content-Language"]


def test_the_explanation_is_in_spanish_for_a_spanish_reader(api: APIClient, opted_out: Message) -> None:
    body, language = _detail(api, opted_out, "es")
    assert language == "es"
    assert body["explanation"] == (
        "Este número pidió no recibir nuestros mensajes. Responder START permitirá recibirlos de nuevo."
    )
    assert body["what_to_fix"].startswith("Añadir el número a la lista de exclusión")
    # The codes a program reads stay as they are.
    assert (body["status"], body["reason"], body["error_class"], body["retry_advice"]) == (
        "undelivered", "opted_out", "permanent", "never",
    )  # fmt: skip
    assert body["timeline"][0]["summary"].startswith("Enviado a ")


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("fr-CA", "fr"),  # a regional variant: its language
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,es;q=0.5", "es"),  # the first the console speaks, by weight
        ("de", "en"),  # a language the console does not speak: English
        ("*", "en"),
        (None, "en"),
    ],
)
def test_the_language_follows_accept_language_with_fallbacks(
    api: APIClient, opted_out: Message, accept_language: str | None, expected: str
) -> None:
    explanations = {
        "en": "This number asked not to receive our messages. Replying START will allow them again.",
        "fr": "Ce numéro a demandé à ne plus recevoir nos messages. "
        "Répondre START permettra de les recevoir à nouveau.",
        "es": "Este número pidió no recibir nuestros mensajes. Responder START permitirá recibirlos de nuevo.",
    }
    body, language = _detail(api, opted_out, accept_language)
    assert (language, body["explanation"]) == (expected, explanations[expected])


def test_the_api_ignores_the_console_language_of_the_keys_user(opted_out: Message) -> None:
    """A key serves a program: the person's console language is not the program's."""
    user = user_in_role(roles.PRODUCT, "backend")
    Profile.objects.create(user=get_user_model().objects.get(pk=user.pk), language="fr")
    body, language = _detail(api_client_for(user), opted_out, None)
    assert language == "en"
    assert body["explanation"].startswith("This number asked not to receive")


def test_a_standard_refusal_is_translated_too() -> None:
    response = APIClient().get("/api/v1/messages/", headers={"Accept-Language": "fr"})
    assert response.status_code == 401
    assert response["Content-Language"] == "fr"
    assert "authentification" in response.json()["detail"].lower()


def test_the_schema_documents_accept_language_on_every_operation(api: APIClient) -> None:
    schema = api.get("/api/v1/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()
    detail = schema["paths"]["/api/v1/messages/{id}/"]["get"]
    header = next(p for p in detail["parameters"] if p["name"] == "Accept-Language")
    assert header["in"] == "header"
    assert "fr-CA" in header["description"]
    # The API's operations; the providers' webhooks answer machines in no language.
    operations = [op for url, path in schema["paths"].items() if url.startswith("/api/") for op in path.values()]
    documented = [op for op in operations if any(p["name"] == "Accept-Language" for p in op.get("parameters", []))]
    assert len(documented) == len(operations)


def test_providers_webhooks_are_answered_without_choosing_a_language() -> None:
    """The hot path skips the language choice: machines post there (bench/locale_middleware.py)."""
    response = APIClient().post("/hooks/no-such-connection/", b"{}", content_type="application/json",
                                headers={"Accept-Language": "fr"})  # fmt: skip
    assert response.status_code == 404
    assert "Content-Language" not in response
    assert "Accept-Language" not in response.get("Vary", "")


def test_the_product_feed_keeps_the_deployments_language_whoever_recorded_the_event(opted_out: Message) -> None:
    """Feed events are stored and sent to a program: a French request recording one changes nothing."""
    with translation.override("fr"):
        data = feed_message_data(opted_out)
    assert data["explanation"].startswith("This number asked not to receive our messages.")
