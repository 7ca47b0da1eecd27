"""The console in the reader's language: chosen on their profile, else their browser's
(Accept-Language), else English; times stay in their own time zone whatever the language."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from dlrconsole import roles
from dlrconsole.accounts.models import Profile
from receipts.flows.models import Flow
from receipts.models import Connection, Message
from tests.factories import ConnectionFactory, MessageFactory, api_client_for, rule_with_steps, user_in_role

pytestmark = pytest.mark.django_db


def _signed_in(username: str) -> Client:
    """A fresh sign-in: the profile's zone and language are remembered in the session then."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _unknown_subscriber() -> Message:
    return MessageFactory(status="undelivered", error_code="1", reason="unknown_subscriber", error_class="permanent",
                          catalog_class="permanent", class_source="catalog")  # fmt: skip


def _page(client: Client, message: Message, **headers: str) -> str:
    response = client.get(reverse("console:message", args=[message.pk]), headers=headers)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_french_speaking_support_agent_reads_the_message_page_and_its_explanation_in_french(support: Client) -> None:
    user = get_user_model().objects.get(username="support-user")
    Profile.objects.create(user=user, time_zone="Europe/Paris", language="fr")
    with time_machine.travel(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC), tick=False):
        message = _unknown_subscriber()
        # Their profile wins over the browser's language.
        page = _page(_signed_in("support-user"), message, accept_language="es")
    assert '<html lang="fr">' in page
    assert "À dire à l'utilisateur\u00a0:" in page
    assert "Ce numéro de téléphone n'existe pas ou n'est plus en service. Veuillez vérifier le numéro." in page
    assert "Marquer le numéro comme invalide" in page  # what we must fix, from the catalog
    assert 'data-testid="status-badge">Non distribué<' in page
    assert "Numéro inconnu" in page  # the reason's label, capitalised
    # Times in their zone (Paris, an hour ahead of UTC in January), UTC on hover.
    assert 'title="2026-01-15 12:00:00 UTC">2026-01-15 13:00:00 <span class="tz">CET</span>' in page


def test_without_a_profile_choice_the_browsers_language_is_used_and_others_fall_back_to_english(
    support: Client,
) -> None:
    message = _unknown_subscriber()
    spanish = _page(support, message, accept_language="es-MX,es;q=0.9,en;q=0.5")
    assert '<html lang="es">' in spanish
    assert "Este número de teléfono no existe o ya no está en servicio." in spanish
    assert "Qué ha pasado" in spanish
    german = _page(support, message, accept_language="de-DE,de;q=0.9")
    assert '<html lang="en">' in german
    assert "This phone number does not exist or is no longer in service." in german


def test_a_person_chooses_their_language_beside_their_time_zone(support: Client) -> None:
    url = reverse("time-zone")
    page = support.get(url).content.decode()
    assert '<option value="fr" selected' not in page
    assert '<option value="" selected>' in page  # the browser's language until they choose
    assert support.post(url, {"time_zone": "Europe/Madrid", "language": "xx"}).status_code == 400
    assert not Profile.objects.exists()
    response = support.post(url, {"time_zone": "Europe/Madrid", "language": "es"}, follow=True)
    assert (Profile.objects.get().time_zone, Profile.objects.get().language) == ("Europe/Madrid", "es")
    page = response.content.decode()
    assert "Las horas se muestran ahora en la zona Europe/Madrid." in html.unescape(page)  # in the new language
    assert "Su zona horaria y su idioma" in page
    assert '<option value="es" selected lang="es">Español</option>' in page
    # Back to the browser's language: an English browser reads English again.
    support.post(url, {"time_zone": "Europe/Madrid", "language": ""})
    assert "Your time zone and language" in support.get(url, headers={"accept-language": "en"}).content.decode()


def test_a_french_speaking_admin_edits_policies_and_reads_alerts_in_french(admin_client_role: Client) -> None:
    user = get_user_model().objects.get(username="admin-user")
    Profile.objects.create(user=user, time_zone="Europe/Paris", language="fr")
    client = _signed_in("admin-user")
    rules = html.unescape(client.get(reverse("console:policies")).content.decode())
    assert "<h1>Politiques de relance</h1>" in rules
    assert "Quelle règle s'applique\u00a0?" in rules
    assert "Les règles sont essayées de haut en bas\u00a0;" in rules
    new_rule = html.unescape(client.get(reverse("console:rule-new")).content.decode())
    assert "Quels échecs (vide = tous)" in new_rule
    assert "Enregistrer la règle" in new_rule
    alerts = html.unescape(client.get(reverse("console:alerts")).content.decode())
    assert "<h1>Alertes</h1>" in alerts
    assert "Aucune alerte. Les règles d'alerte surveillent les taux de délivrance" in alerts
    assert "configurez-les" in alerts


def _speaking(username: str, language: str) -> Client:
    user = get_user_model().objects.get(username=username)
    Profile.objects.create(user=user, time_zone="Europe/Paris", language=language)
    return _signed_in(username)


def _read(client: Client, url: str, **params: str) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_french_speaking_admin_prepares_a_launch_in_french(admin_client_role: Client) -> None:
    ConnectionFactory(slug="fr-main")
    flow = Flow.objects.create(name="OTP", slug="login-otp", countries=["BE"], monthly_volume=1000, sla_seconds=60)
    flow.connections.set(Connection.objects.all())
    client = _speaking("admin-user", "fr")

    page = _read(client, reverse("console:flow", args=[flow.slug]))
    assert '<h2 id="about-heading">Le flux</h2>' in page
    assert '<h2 id="test-heading">Tester le repli</h2>' in page
    assert "1000 par mois" in page
    # The readiness items, built in Python, in the reader's language.
    assert "Aucun responsable technique." in page
    assert "BE par fr-main\u00a0: jamais testé." in page
    assert "Aucun KPI\u00a0: ajoutez-en au moins un (taux de délivrance, accusés manquants, délai" in page
    for english in ("The flow<", "Test the fallback", "Readiness", "No technical owner", "never tested"):
        assert english not in page

    checklist = _read(client, reverse("console:flow-checklist", args=[flow.slug]))
    assert "<h1>Liste de lancement\u00a0: OTP</h1>" in checklist
    assert "<h2>Décision de cette réunion</h2>" in checklist
    for english in ("Launch checklist", "Decision of this meeting"):
        assert english not in checklist


def test_a_spanish_speaking_admin_reads_route_trust_and_the_policies_summaries_in_spanish(
    admin_client_role: Client,
) -> None:
    ConnectionFactory(slug="grey")
    retry_twice = {"action": "retry_same", "count": 2, "delays": [30, 120]}
    rule_with_steps("Temporales", retry_twice, error_classes=["temporary"])
    client = _speaking("admin-user", "es")

    trust = _read(client, reverse("console:route-trust"), window="1h", connection="grey", country="FR")
    assert "<h1>Hasta qué punto se puede confiar en el «entregado» de esta ruta</h1>" in trust
    assert "Sin evaluar" in trust
    assert "No hay suficientes mensajes entregados para evaluar: 0, se necesitan al menos 20." in trust
    assert "<h2>En qué se basa</h2>" in trust
    for english in ("can be trusted", "What it stands on", "Not enough"):
        assert english not in trust

    rules = _read(client, reverse("console:policies"))
    assert "reintentar por la misma ruta, 2 intentos (30s, 2m)" in rules
    assert "retry on the same route" not in rules


def test_an_api_refusal_of_a_search_filter_follows_accept_language() -> None:
    api = api_client_for(user_in_role(roles.PRODUCT, "product"))
    response = api.get("/api/v1/messages/", {"country": "F1"}, headers={"Accept-Language": "fr"})
    assert response.status_code == 400
    assert response.json()["country"] == ["doit être un code ISO 3166 à deux lettres, par exemple FR"]
    spanish = api.get("/api/v1/messages/", {"country": "F1"}, headers={"Accept-Language": "es"})
    assert spanish.json()["country"] == ["debe ser un código ISO 3166 de dos letras, por ejemplo FR"]
