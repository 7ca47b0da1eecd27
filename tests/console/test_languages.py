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

from dlrconsole.accounts.models import Profile
from receipts.models import Message
from tests.factories import MessageFactory

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
