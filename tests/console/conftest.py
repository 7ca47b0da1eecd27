"""Signed-in clients for each console role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from dlrconsole import roles


def client_as(role: str) -> Client:
    user = get_user_model().objects.create_user(username=f"{role}-user", password="unused-in-tests")
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db: None) -> Client:
    return client_as(roles.VIEWER)


@pytest.fixture
def support(db: None) -> Client:
    return client_as(roles.SUPPORT)


@pytest.fixture
def admin_client_role(db: None) -> Client:
    return client_as(roles.ADMIN)


HTMX = {"HTTP_HX_REQUEST": "true"}
