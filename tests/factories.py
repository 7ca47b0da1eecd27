"""factory_boy factories for the records tests need."""

from __future__ import annotations

import base64

import factory
from django.utils import timezone

from receipts.models import Connection, Message

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
