from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from dlrconsole.accounts.services import user_make_product_account


class Command(BaseCommand):
    help = (
        "Print the API token of a user, creating the user (and token) if asked. --product makes it the "
        "sending product's service account: register, search and read messages with full numbers, read the feed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist.")
        parser.add_argument(
            "--product", action="store_true", help="Grant the product's API permissions (the `product` group)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = options["username"]
        user = User.objects.filter(username=username).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"no user {username!r}; pass --create-user to create one")
            user = User.objects.create_user(username=username)  # no password: API token only
        if options["product"]:
            user_make_product_account(user=user)
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
