"""The API's schema and docs are for signed-in people and API keys, unless the deployment
publishes them (DLR_PUBLISH_API_SCHEMA)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dlrconsole import roles
from tests.factories import api_client_for, user_in_role

pytestmark = pytest.mark.django_db

DOCS = ["/api/v1/docs/", "/api/v1/redoc/"]


def test_anonymous_callers_get_no_schema():
    response = APIClient().get("/api/v1/schema/")
    assert response.status_code == 401
    assert "openapi" not in response.content.decode()


@pytest.mark.parametrize("page", DOCS)
def test_anonymous_visitors_of_the_docs_are_sent_to_sign_in(page):
    response = Client().get(page)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={page}"


def test_a_key_or_a_session_reads_the_schema_and_the_docs():
    assert api_client_for(user_in_role(roles.PRODUCT, "backend")).get("/api/v1/schema/").status_code == 200
    session = Client()
    session.force_login(user_in_role(roles.VIEWER, "bi"))
    assert session.get("/api/v1/schema/").status_code == 200
    for page in DOCS:
        assert session.get(page).status_code == 200


def test_a_deployment_can_publish_them(settings):
    settings.DLR_PUBLISH_API_SCHEMA = True
    assert APIClient().get("/api/v1/schema/").status_code == 200
    for page in DOCS:
        assert Client().get(page).status_code == 200
