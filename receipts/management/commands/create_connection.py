from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from receipts.providers.registry import get_adapter, provider_choices
from receipts.services import connection_create


class Command(BaseCommand):
    help = "Create a provider connection and print its webhook URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--provider", required=True, choices=[kind for kind, _ in provider_choices()])
        parser.add_argument("--secret", action="append", default=[], help="Repeat for several (rotation).")
        parser.add_argument(
            "--generate-secret",
            action="store_true",
            help="Generate a secret (printed once) for schemes where we choose it.",
        )
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--public-url", default="", help="The webhook URL as the provider calls it, behind a proxy."
        )
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A provider option; VALUE is JSON, or a plain string (e.g. signature_method=sha256, "
            'topic_arns=["arn:aws:sns:eu-west-1:123456789012:sms-events"]). Repeatable.',
        )
        parser.add_argument(
            "--allow-ip", action="append", default=[], help="Allowed source network (CIDR). Repeatable."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        secrets = list(options["secret"])
        generated = ""
        if options["generate_secret"]:
            try:
                generated = get_adapter(options["provider"]).generate_secret()
            except ValueError as exc:  # providers that hand out their own keys (Telnyx)
                raise CommandError(str(exc)) from None
            secrets.append(generated)
        if not secrets:
            raise CommandError("give --secret (the provider's signing secret) or --generate-secret")
        try:
            connection = connection_create(
                options=parse_options(options["option"]),
                allowed_ips=options["allow_ip"],
                slug=options["slug"],
                provider=options["provider"],
                secrets=secrets,
                name=options["name"],
                public_url=options["public_url"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(f"Connection {connection.slug} ({connection.provider}) created.")
        self.stdout.write(
            f"Webhook URL: {connection.public_url or settings.PUBLIC_BASE_URL + connection.webhook_path()}"
        )
        if generated:
            self.stdout.write(f"Signing secret (shown once, configure it at the sender): {generated}")


def parse_options(pairs: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--option takes KEY=VALUE, got {pair!r}")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed
