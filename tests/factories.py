"""factory_boy factories for the records tests need."""

from __future__ import annotations

import base64
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.utils import timezone
from rest_framework.test import APIClient

from dlrconsole import roles
from dlrconsole.accounts.keys import api_key_create
from receipts.models import Connection, Message
from retries.models import Rule, Step

GENERIC_SECRET = "whsec_" + base64.b64encode(b"generic-test-secret-0123456789ab").decode()
TWILIO_TOKEN = "twilio-test-auth-token-1234567890"


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    slug = factory.Sequence(lambda n: f"conn-{n}")
    provider = "standard-webhooks"
    secrets = factory.LazyFunction(lambda: [GENERIC_SECRET])


class TwilioConnectionFactory(ConnectionFactory):
    provider = "twilio"
    secrets = factory.LazyFunction(lambda: [TWILIO_TOKEN])


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    connection = factory.SubFactory(ConnectionFactory)
    provider_message_id = factory.Sequence(lambda n: f"msg-{n:06d}")
    recipient = factory.Sequence(lambda n: f"+336{n:08d}")
    country = "FR"
    flow = "login-otp"
    submitted_at = factory.LazyFunction(timezone.now)
    # What the product registers to make a resend possible (retries' steps skip without it).
    body = "Your code is 123456"


def user_in_role(role: str, username: str = "", *, password: str = "") -> AbstractUser:
    """A user in one of dlrconsole/roles.py's groups (support, admin, viewer or product)."""
    user = get_user_model().objects.create_user(username or f"{role}-user", password=password or None)
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no cached permissions


def api_key_for(user: AbstractUser, name: str = "tests") -> str:
    """A new API key acting as `user` (the clear key, as `create_api_key` prints it)."""
    return api_key_create(user=user, name=name)[1]


def api_client_for(user: AbstractUser) -> APIClient:
    """An API client that presents a new API key of the user, as the product does."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_for(user)}")
    return client


def product_token(username: str = "product") -> str:
    """An API key of the sending product's service account."""
    return api_key_for(user_in_role(roles.PRODUCT, username))


def rule_with_steps(name: str, *steps: dict[str, Any], position: int = 1, **conditions: Any) -> Rule:
    """A rule and its escalation: `steps` as dicts of Step fields, in order."""
    rule = Rule.objects.create(name=name, position=position, **conditions)
    for number, step in enumerate(steps, start=1):
        Step.objects.create(rule=rule, position=number, **step)
    return rule
