"""create_api_key USERNAME [--name N] [--expires-in-days D] [--create-user] [--product]"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dlrconsole.accounts.keys import api_key_create
from dlrconsole.accounts.services import user_make_product_account


class Command(BaseCommand):
    help = (
        "Make a new API key acting as a user and print it: it is shown this once and stored only hashed. "
        "--product makes the user the sending product's service account: register, search and read messages "
        "with full numbers, read the feed. Revoke a key with revoke_api_key or in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", help="What the key is for, as lists show it (default: the username).")
        parser.add_argument("--expires-in-days", type=int, metavar="DAYS", help="Refused after this many days.")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist.")
        parser.add_argument(
            "--product", action="store_true", help="Grant the product's API permissions (the `product` group)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = options["username"]
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        name = options["name"] or username
        if len(name) > 50:
            raise CommandError("--name is at most 50 characters")
        user = User.objects.filter(username=username).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"no user {username!r}; pass --create-user to create one")
            user = User.objects.create_user(username=username)  # no password: API keys only
        if options["product"]:
            user_make_product_account(user=user)
        expires_at = timezone.now() + timedelta(days=days) if days else None
        api_key, key = api_key_create(user=user, name=name, expires_at=expires_at)
        self.stderr.write(f"API key {api_key.prefix}… for {username}, shown once; send `Authorization: Api-Key <key>`")
        self.stdout.write(key)
