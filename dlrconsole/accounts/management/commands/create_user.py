"""create_user USERNAME --role support|admin|viewer [--email E] [--password-env VAR | --keep-password]"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dlrconsole.accounts.services import user_save_in_role
from dlrconsole.roles import ROLES


class Command(BaseCommand):
    help = (
        "Create or update a console user in one role (support, admin or viewer). The password is "
        "prompted for, or read from the environment variable named by --password-env; never from "
        "the command line, where other users and the shell history would see it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", help="Set the user's e-mail address.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-env", metavar="VAR", help="Read the password from this environment variable.")
        source.add_argument(
            "--keep-password", action="store_true", help="Keep an existing user's password (change the role only)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None if options["keep_password"] else self._password(options["password_env"])
        try:
            user, created = user_save_in_role(
                username=options["username"], role=options["role"], email=options["email"], password=password
            )
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from None
        action = "created" if created else "updated"
        staff = ", can open /admin/" if user.is_staff else ""
        self.stdout.write(f"{action} {user.username}: role {options['role']}{staff}")

    def _password(self, env_name: str | None) -> str:
        if env_name:
            value = os.environ.get(env_name, "")
            if not value:
                raise CommandError(f"environment variable {env_name} is not set or empty")
            return value
        if not sys.stdin.isatty():
            raise CommandError("no terminal to prompt for a password: pass --password-env VAR (or --keep-password)")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ")
        if not first:
            raise CommandError("empty password")
        return first
