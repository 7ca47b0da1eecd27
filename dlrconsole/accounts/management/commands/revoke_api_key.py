"""revoke_api_key PREFIX"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dlrconsole.accounts.keys import api_key_revoke
from dlrconsole.accounts.models import UserAPIKey


class Command(BaseCommand):
    help = "Revoke an API key for good, named by its prefix (the part before the dot, as the admin lists it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            api_key = api_key_revoke(prefix=options["prefix"])
        except UserAPIKey.DoesNotExist:
            raise CommandError(f"no API key with prefix {options['prefix']!r}") from None
        self.stdout.write(f"revoked {api_key} of {api_key.user.get_username()}")
